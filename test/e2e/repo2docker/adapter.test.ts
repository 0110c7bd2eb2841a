// The Python contract through the adapter, method by method, as repo2docker's buildpacks and tests call it:
// build from an in-memory tar (fileobj + custom_context), inspect_image / images, run, and every Container
// method (logs as bytes, streaming, timestamps, since; status, exitcode, reload, wait, stop, kill, remove).
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../../src/kube/client.js";
import { baseImage, deleteNamespace, expectNoLeftovers } from "../engine/helpers.js";
import { namespaceClient } from "../kube/helpers.js";
import { python, setupRepo2docker, type R2dEnvironment } from "./helpers.js";

let r2d: R2dEnvironment;
let admin: KubeClient;

beforeAll(async () => {
  r2d = await setupRepo2docker();
  admin = await namespaceClient("e2e-r2d-adapter");
}, 900_000);

afterAll(async () => {
  if (admin) await expectNoLeftovers(admin);
  await deleteNamespace(admin);
});

/** Runs `body` with `engine` (namespace set) and `check(cond, what)` that fails the script. */
async function script(body: string): Promise<string> {
  const { code, output } = await python(r2d, `
import io, json, sys, tarfile, time
from repo2docker.engine import BuildError, ContainerEngineException
from repo2docker_kce import KubernetesEngine
engine = KubernetesEngine(parent=None)
engine.namespace = ${JSON.stringify(admin.namespace)}
def check(cond, what):
    if not cond:
        print("CHECK FAILED:", what, flush=True)
        sys.exit(1)
${body}
print("OK", flush=True)
`, {}, 170_000);
  expect(code, output).toBe(0);
  expect(output).toContain("OK");
  return output;
}

describe("the adapter", () => {
  it("builds an in-memory tar as repo2docker's buildpacks pass it; inspect_image, images", async () => {
    const tag = `kce-e2e/r2d-tar:${randomBytes(4).toString("hex")}`;
    await script(`
dockerfile = b"""FROM ${baseImage()}
COPY --chown=1000:1000 hello.txt /srv/hello.txt
WORKDIR /srv
LABEL from.dockerfile=yes
CMD ["cat", "/srv/hello.txt"]
"""
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as tar:
    for name, data in (("Dockerfile", dockerfile), ("hello.txt", b"hello from a tar\\n")):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
buf.seek(0)
check(engine.inspect_image(${JSON.stringify(tag)}) is None, "inspect_image of a missing image is None")
lines = list(engine.build(fileobj=buf, custom_context=True, tag=${JSON.stringify(tag)}, buildargs={}, cache_from=[],
                          container_limits={}, platform="linux/amd64", push=False, load=True, unknown_extra=1))
check(all(isinstance(l, str) and l.endswith("\\n") for l in lines), "build lines are strings ending in newline")
image = engine.inspect_image(${JSON.stringify(tag)})
check(image is not None and image.config["WorkingDir"] == "/srv", f"WorkingDir: {image}")
check(image.config["Labels"].get("from.dockerfile") == "yes", f"labels: {image.config}")
names = [t for i in engine.images() for t in i.tags]
check(${JSON.stringify(tag)} in names, f"images() lists it: {names}")
container = engine.run(${JSON.stringify(tag)})
container.wait()
check(container.logs() == b"hello from a tar\\n", container.logs())
container.remove()
`);
  });

  it("a failing build raises BuildError", async () => {
    await script(`
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as tar:
    data = b"FROM ${baseImage()}\\nRUN echo about to fail && exit 3\\n"
    info = tarfile.TarInfo("Dockerfile")
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
buf.seek(0)
try:
    for line in engine.build(fileobj=buf, custom_context=True, tag="kce-e2e/r2d-fail:1"):
        pass
    check(False, "no BuildError")
except BuildError as e:
    print("BUILD ERROR", e, flush=True)
`);
  });

  it("Container: status, exitcode, logs (bytes, stream, timestamps, since), wait, reload, remove", async () => {
    const output = await script(`
c = engine.run("${baseImage()}", command=["sh", "-c", "echo first; sleep 2; echo second; echo third; exit 5"],
               environment=["A=1"], ports={}, publish_all_ports=False, remove=False, volumes={})
check(c.status in ("running", "exited"), c.status)
streamed = list(c.logs(stream=True, timestamps=True))
check(len(streamed) == 3 and all(isinstance(l, bytes) for l in streamed), streamed)
last_timestamp, text = streamed[1].decode().split(" ", 1)
check(text == "second\\n", text)
c.reload()
check(c.status == "exited" and c.exitcode == 5, (c.status, c.exitcode))
check(c.wait()["StatusCode"] == 5, "wait")
check(c.logs(since=last_timestamp) == b"second\\nthird\\n", c.logs(since=last_timestamp))
check(c.logs() == b"first\\nsecond\\nthird\\n", c.logs())
c.remove()
c.remove()  # idempotent
try:
    c.reload()
    check(False, "reload after remove")
except ContainerEngineException as e:
    print("RELOAD AFTER REMOVE", e, flush=True)
`);
    expect(output).toContain("RELOAD AFTER REMOVE ContainerNotFoundError");
  });

  it("Container: stop and kill keep the state and the logs readable", async () => {
    await script(`
c = engine.run("${baseImage()}", command=["sh", "-c", "echo up; exec sleep 600"])
check(c.status == "running", c.status)
c.stop(timeout=2)
check(c.status == "exited" and c.exitcode != 0, (c.status, c.exitcode))
check(b"up\\n" in c.logs(), c.logs())
c.remove()
k = engine.run("${baseImage()}", command=["sh", "-c", "echo up; exec sleep 600"])
k.kill()
check(k.status == "exited" and k.exitcode == 137, (k.status, k.exitcode))
check(k.logs() == b"up\\n", k.logs())
k.wait()
k.remove()
`);
  });

  it("a client path as a volume is refused with a clear message", async () => {
    const output = await script(`
try:
    engine.run("${baseImage()}", volumes={"/home/me/data": {"bind": "/data", "mode": "rw"}})
    check(False, "volumes accepted")
except ContainerEngineException as e:
    print("REFUSED", e, flush=True)
`);
    expect(output).toMatch(/REFUSED InvalidInputError: volume "\/home\/me\/data": a directory of this machine cannot be mounted/);
  });
});
