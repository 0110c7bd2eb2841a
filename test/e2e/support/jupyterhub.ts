// A real JupyterHub for the e2e tests: jupyterhub and jupyterhub-kubespawner from PyPI in a cached virtualenv,
// configurable-http-proxy from npm, running as processes on the node (hub API and proxy on the node's
// address, so pods reach them), KubeSpawner starting users' servers as pods of the local cluster. The dummy
// authenticator logs users in; `kce serve` is registered as the hub service `binder`.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export const JUPYTERHUB_VERSION = "6.1.1";
export const KUBESPAWNER_VERSION = "7.1.0";
export const CHP_VERSION = "5.3.0";

const home = (): string => process.env.KCE_HOME ?? join(homedir(), ".cache", "kce");
const key = (...parts: string[]): string => createHash("sha256").update(parts.join(" ")).digest("hex").slice(0, 10);

/** The hub's virtualenv ($KCE_HOME/venv-hub-<hash>), created from PyPI once. */
async function hubVenv(): Promise<string> {
  const venv = join(home(), `venv-hub-${key(JUPYTERHUB_VERSION, KUBESPAWNER_VERSION)}`);
  if (!existsSync(join(venv, ".complete"))) {
    rmSync(venv, { recursive: true, force: true });
    await run("python3", ["-m", "venv", venv], { timeout: 120_000 });
    await run(join(venv, "bin", "pip"), ["install", "-q", `jupyterhub==${JUPYTERHUB_VERSION}`, `jupyterhub-kubespawner==${KUBESPAWNER_VERSION}`], {
      timeout: 900_000,
    });
    writeFileSync(join(venv, ".complete"), "");
  }
  return venv;
}

/** configurable-http-proxy from npm ($KCE_HOME/chp-<version>), installed once. */
async function proxyCommand(): Promise<string> {
  const dir = join(home(), `chp-${CHP_VERSION}`);
  const bin = join(dir, "node_modules", ".bin", "configurable-http-proxy");
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    await run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", dir, `configurable-http-proxy@${CHP_VERSION}`], {
      timeout: 600_000,
    });
  }
  return bin;
}

/**
 * Wheels for a user image that a JupyterHub can start (jupyterhub-singleuser + jupyter_server) for Debian 12's
 * Python 3.11, downloaded from PyPI once ($KCE_HOME/wheels/singleuser-<hash>): the test puts them into the
 * repository, so the builder pod needs no network.
 */
export async function singleuserWheels(): Promise<Map<string, Buffer>> {
  const dir = join(home(), "wheels", `singleuser-${key(JUPYTERHUB_VERSION, "jupyter_server", "cp311")}`);
  if (!existsSync(join(dir, ".complete"))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const venv = await hubVenv();
    const platforms = ["manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_36_x86_64"].flatMap((p) => ["--platform", p]);
    await run(
      join(venv, "bin", "pip"),
      ["download", "-q", "-d", dir, "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", ...platforms, `jupyterhub==${JUPYTERHUB_VERSION}`, "jupyter_server"],
      { timeout: 900_000 },
    );
    writeFileSync(join(dir, ".complete"), "");
  }
  return new Map(readdirSync(dir).filter((f) => f.endsWith(".whl")).map((f) => [f, readFileSync(join(dir, f))]));
}

/** A repository whose image JupyterHub can start: Debian + Python (the cluster's base) + jupyterhub-singleuser. */
export async function singleuserRepo(baseImage: string, marker: string): Promise<Record<string, string | Buffer>> {
  const files: Record<string, string | Buffer> = {
    Dockerfile:
      `FROM ${baseImage}\n` +
      "COPY wheels /tmp/wheels\n" +
      "RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-index --no-cache-dir --find-links /tmp/wheels jupyterhub jupyter_server && rm -rf /tmp/wheels\n" +
      "RUN useradd -m -u 1000 -s /bin/bash jovyan\n" +
      `RUN echo ${marker} > /etc/kce-marker\n` +
      "ENV PATH=/opt/venv/bin:$PATH\n" +
      "USER 1000\n" +
      "WORKDIR /home/jovyan\n" +
      'CMD ["jupyterhub-singleuser"]\n',
  };
  for (const [name, content] of await singleuserWheels()) files[`wheels/${name}`] = content;
  return files;
}

export interface HubOptions {
  /** The node's address: the hub API and the proxy listen there (pods reach them). */
  nodeIp: string;
  /** Namespace of the users' server pods (must exist). */
  namespace: string;
  /** The build service's URL (its Service's ClusterIP), registered as hub service `binder`. */
  serviceUrl: string;
  /** Images the users' servers may run (prefix of `user_options.image`). */
  imagePrefix: string;
}

/** A running JupyterHub (restartable: its database and secrets stay in its directory). */
export class JupyterHub {
  readonly dir = mkdtempSync(join(tmpdir(), "kce-hub-"));
  readonly serviceToken = randomBytes(24).toString("hex");
  readonly adminToken = randomBytes(24).toString("hex");
  readonly password = randomBytes(8).toString("hex");
  proxyPort = 0;
  hubPort = 0;
  private child: ChildProcess | null = null;
  private log = "";

  /** `serviceUrl` may be set after construction (the service is deployed with the hub's ports first). */
  constructor(readonly options: HubOptions) {}

  /** Where users reach the hub (the proxy). */
  get publicUrl(): string {
    return `http://${this.options.nodeIp}:${this.proxyPort}/`;
  }

  /** The hub's REST API as pods reach it. */
  get apiUrl(): string {
    return `http://${this.options.nodeIp}:${this.hubPort}/hub/api`;
  }

  private config(chp: string): string {
    const o = this.options;
    return `# generated by test/e2e/support/jupyterhub.ts
c = get_config()  # noqa
c.JupyterHub.bind_url = "http://${o.nodeIp}:${this.proxyPort}"
c.JupyterHub.hub_bind_url = "http://${o.nodeIp}:${this.hubPort}"
c.JupyterHub.db_url = "sqlite:///${this.dir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "${this.dir}/cookie_secret"
c.ConfigurableHTTPProxy.command = ["${chp}"]
c.ConfigurableHTTPProxy.pid_file = "${this.dir}/proxy.pid"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:${this.proxyPort + 1}"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = "${this.password}"
c.Authenticator.allow_all = True
c.JupyterHub.allow_named_servers = True
c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
c.KubeSpawner.namespace = "${o.namespace}"
c.KubeSpawner.cmd = ["jupyterhub-singleuser"]
c.KubeSpawner.image_pull_policy = "IfNotPresent"
c.KubeSpawner.start_timeout = 240
c.KubeSpawner.http_timeout = 120
c.KubeSpawner.uid = 1000
c.KubeSpawner.fs_gid = 1000

# The image comes from the build service (user_options.image), and only from its registry prefix.
ALLOWED_PREFIX = "${o.imagePrefix}"
def use_built_image(spawner):
    image = (spawner.user_options or {}).get("image")
    if image:
        if not image.startswith(ALLOWED_PREFIX):
            raise ValueError(f"image {image} is not one the build service built")
        spawner.image = image
c.KubeSpawner.pre_spawn_hook = use_built_image

c.JupyterHub.services = [
    {"name": "binder", "url": "${o.serviceUrl}", "api_token": "${this.serviceToken}", "oauth_no_confirm": True},
    {"name": "e2e-admin", "api_token": "${this.adminToken}"},
]
c.JupyterHub.load_roles = [
    # kce serve: start users' servers and hand out a token for each (BinderHub's launcher needs the same).
    {"name": "binder-service", "services": ["binder"], "scopes": ["servers", "tokens", "read:users"]},
    {"name": "user", "scopes": ["self", "access:services!service=binder"]},
    {"name": "e2e-admin", "services": ["e2e-admin"], "scopes": ["admin:users", "admin:servers", "tokens", "read:users"]},
]
`;
  }

  async start(): Promise<void> {
    const venv = await hubVenv();
    const chp = await proxyCommand();
    if (this.proxyPort === 0) {
      this.proxyPort = 18000 + Math.floor(Math.random() * 1000) * 2;
      this.hubPort = this.proxyPort + 10_000;
    }
    writeFileSync(join(this.dir, "jupyterhub_config.py"), this.config(chp));
    this.child = spawn(join(venv, "bin", "jupyterhub"), ["-f", join(this.dir, "jupyterhub_config.py")], {
      cwd: this.dir,
      env: { ...process.env, PATH: `${join(venv, "bin")}:${process.env.PATH ?? ""}` },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child.stdout?.on("data", (d: Buffer) => (this.log = (this.log + d.toString()).slice(-20_000)));
    this.child.stderr?.on("data", (d: Buffer) => (this.log = (this.log + d.toString()).slice(-20_000)));
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`jupyterhub exited ${this.child.exitCode}:\n${this.log}`);
      try {
        const res = await fetch(`${this.publicUrl}hub/health`, { signal: AbortSignal.timeout(2_000) });
        if (res.ok) return;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) throw new Error(`jupyterhub did not answer within 120 s:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** Stops the hub (and the proxy it started); its database stays for a restart. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    await exited;
    clearTimeout(timer);
    this.child = null;
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The last lines the hub wrote (for failure messages). */
  output(): string {
    return this.log;
  }

  /**
   * Logs `user` in with their password (the dummy authenticator) and returns a token of theirs: POST
   * /hub/api/users/<u>/tokens authenticated by the credentials in the body — JupyterHub's login for a client
   * without a browser. The user is created first by the tests' admin service, as an admin would add them.
   */
  async login(user: string): Promise<string> {
    const created = await this.api(`/users/${user}`, this.adminToken, { method: "POST" });
    if (created.status !== 201 && created.status !== 409) throw new Error(`creating user ${user}: HTTP ${created.status} ${await created.text()}`);
    const res = await fetch(`${this.publicUrl}hub/api/users/${user}/tokens`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ auth: { username: user, password: this.password }, note: "e2e login" }),
    });
    if (!res.ok) throw new Error(`login of ${user}: HTTP ${res.status} ${await res.text()}\n${this.output().slice(-3000)}`);
    return ((await res.json()) as { token: string }).token;
  }

  /** A wrong password is refused (the login is real). */
  async loginStatus(user: string, password: string): Promise<number> {
    const res = await fetch(`${this.publicUrl}hub/api/users/${user}/tokens`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ auth: { username: user, password } }),
    });
    return res.status;
  }

  /** A hub API call with a given token. */
  api(path: string, token: string, init: RequestInit = {}): Promise<Response> {
    return fetch(`${this.publicUrl}hub/api${path}`, { ...init, headers: { ...(init.headers ?? {}), authorization: `token ${token}` } });
  }
}
