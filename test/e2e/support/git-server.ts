// The tests' own git server: bare repositories served over git's "dumb" HTTP protocol (static files after
// `git update-server-info`), on the node's address so that pods reach it too. Clone and ls-remote work;
// every request is counted, so a test can tell that a refused URL was never fetched.
import { execFile } from "node:child_process";
import { createReadStream, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, normalize } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: "kce e2e",
  GIT_AUTHOR_EMAIL: "e2e@kce.invalid",
  GIT_COMMITTER_NAME: "kce e2e",
  GIT_COMMITTER_EMAIL: "e2e@kce.invalid",
};

async function git(cwd: string, ...args: string[]): Promise<string> {
  return (await run("git", args, { cwd, env: GIT_ENV, maxBuffer: 64 * 1024 * 1024 })).stdout.trim();
}

export interface Pushed {
  /** Clone URL, e.g. http://192.0.2.2:41234/repo-a.git */
  url: string;
  /** The commit now at the branch's tip. */
  commit: string;
}

export class GitServer {
  private readonly root = mkdtempSync(join(tmpdir(), "kce-git-"));
  private readonly server: http.Server;
  private base = "";
  /** Paths requested so far (without the query). */
  readonly requests: string[] = [];

  constructor(private readonly host: string) {
    this.server = http.createServer((req, res) => {
      const path = decodeURIComponent((req.url ?? "/").split("?")[0] ?? "/");
      this.requests.push(path);
      const file = normalize(join(this.root, path));
      if (!file.startsWith(this.root) || !existsSync(file) || !statSync(file).isFile()) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { "content-type": "application/octet-stream" });
      createReadStream(file).pipe(res);
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, this.host, resolve));
    const address = this.server.address();
    if (typeof address !== "object" || address === null) throw new Error("git server has no address");
    this.base = `http://${this.host}:${address.port}`;
    return this.base;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.root, { recursive: true, force: true });
  }

  /** Requests for one repository's files (to prove it was, or was not, fetched). */
  requestsFor(name: string): string[] {
    return this.requests.filter((p) => p.startsWith(`/${name}.git/`));
  }

  /**
   * Commits `files` (path → content; Buffers for binary) to `branch` of repository `name` (created when new)
   * and publishes it. Returns the clone URL and the new commit.
   */
  async push(name: string, files: Record<string, string | Buffer>, branch = "main"): Promise<Pushed> {
    const bare = join(this.root, `${name}.git`);
    const work = join(this.root, ".work", name);
    if (!existsSync(bare)) {
      mkdirSync(bare, { recursive: true });
      await git(bare, "init", "-q", "--bare", "-b", branch);
      mkdirSync(work, { recursive: true });
      await git(work, "init", "-q", "-b", branch);
      await git(work, "remote", "add", "origin", bare);
    }
    for (const [path, content] of Object.entries(files)) {
      const full = join(work, path);
      mkdirSync(dirname(full), { recursive: true });
      writeFileSync(full, content);
    }
    await git(work, "add", "-A");
    await git(work, "commit", "-q", "--allow-empty", "-m", `commit ${Date.now()}`);
    await git(work, "push", "-q", "origin", `HEAD:refs/heads/${branch}`);
    await git(bare, "symbolic-ref", "HEAD", `refs/heads/${branch}`);
    await git(bare, "update-server-info");
    return { url: `${this.base}/${name}.git`, commit: await git(work, "rev-parse", "HEAD") };
  }
}
