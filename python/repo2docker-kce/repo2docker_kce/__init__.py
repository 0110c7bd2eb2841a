"""repo2docker's container engine on Kubernetes: `repo2docker --engine kubernetes …`.

A translation layer only. Every call goes to kube-container-engine's TypeScript engine through `kce rpc`
(line-delimited JSON on stdin/stdout, see _rpc.py); the Python contract's names and shapes are mapped
onto the engine's and back. Nothing else is decided here.
"""

import json
import os
import shlex
import shutil
import tempfile

from repo2docker.engine import BuildError, Container, ContainerEngine, Image, ImageLoadError
from traitlets import Bool, CaselessStrEnum, List, Unicode, default

from ._rpc import KceProtocolError, RpcProcess
from ._sizes import MAX_CONTEXT_ENV, tree_bytes

__all__ = ["KubernetesEngine", "KubernetesContainer", "KceProtocolError"]
__version__ = "0.1.0"

# One `kce rpc` per configuration and Python process: repo2docker constructs the engine several times per
# invocation, and a container must be served by the process that ran it.
_processes = {}


def _mapped(stream, convert):
    """Yields convert(item) for each item of the generator `stream`; returns its return value."""
    try:
        while True:
            try:
                item = next(stream)
            except StopIteration as done:
                return done.value
            yield convert(item)
    finally:
        stream.close()


def _context_bytes(path):
    """Bytes of a context: a tar file's size, or the files under a directory."""
    return tree_bytes(path) if os.path.isdir(path) else os.path.getsize(path)


def _check_context_size(path):
    """Refuses (BuildError) a context over $KCE_MAX_CONTEXT_BYTES, set by the build service's runner: nothing
    is sent and no builder is started for a repository the service would not build."""
    limit = os.environ.get(MAX_CONTEXT_ENV, "")
    if not limit.isdigit():
        return
    size = _context_bytes(path)
    if size > int(limit):
        raise BuildError(f"the build context is {size} bytes, larger than the limit of {limit} bytes ({MAX_CONTEXT_ENV})")


class KubernetesEngine(ContainerEngine):
    """Builds in Kaniko/BuildKit pods into the cluster's registry; runs containers as pods."""

    namespace = Unicode(None, allow_none=True, config=True, help="Namespace (default: $KCE_NAMESPACE, else the kubeconfig context's, else default).")
    registry = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Registry host[:port] for image names without a host, as nodes pull it (default: $KCE_REGISTRY, "
        "else the cluster's kube-public/local-registry-hosting ConfigMap).",
    )
    registry_push = Unicode(None, allow_none=True, config=True, help="The registry as builder pods reach it, when different ($KCE_REGISTRY_PUSH).")
    registry_insecure = Bool(None, allow_none=True, config=True, help="The registry is plain HTTP or self-signed ($KCE_REGISTRY_INSECURE).")
    insecure_registries = List(
        Unicode(),
        config=True,
        help="Other registries (host:port) reached over plain HTTP or unverified TLS, e.g. a push target ($KCE_INSECURE_REGISTRIES).",
    )
    builder = CaselessStrEnum(["kaniko", "buildkit", "buildkit-pool"], None, allow_none=True, config=True, help="Builder (default: $KCE_BUILDER, else kaniko; buildkit-pool: warm BuildKit daemons, KCE_POOL_* settings).")
    kubeconfig = Unicode(None, allow_none=True, config=True, help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster).")
    kube_context = Unicode(None, allow_none=True, config=True, help="Kubeconfig context (default: the current one).")
    kce_command = List(Unicode(), config=True, help="The kce command (default: $KCE_BIN, else `kce` on PATH); `rpc` is appended.")

    @default("kce_command")
    def _kce_command_default(self):
        return shlex.split(os.environ.get("KCE_BIN", "")) or ["kce"]

    def _rpc(self):
        argv = [*self.kce_command, "rpc"]
        for flag, value in (("--namespace", self.namespace), ("--builder", self.builder), ("--kubeconfig", self.kubeconfig), ("--context", self.kube_context)):
            if value:
                argv += [flag, value]
        env = dict(os.environ)
        for name, value in (("KCE_REGISTRY", self.registry), ("KCE_REGISTRY_PUSH", self.registry_push)):
            if value:
                env[name] = value
        if self.insecure_registries:
            env["KCE_INSECURE_REGISTRIES"] = ",".join(self.insecure_registries)
        if self.registry_insecure is not None:
            env["KCE_REGISTRY_INSECURE"] = "true" if self.registry_insecure else "false"
        credentials = getattr(self, "registry_credentials", None)  # repo2docker >= 2023.06
        if credentials:
            env["CONTAINER_ENGINE_REGISTRY_CREDENTIALS"] = json.dumps(credentials)
        key = (tuple(argv), tuple(sorted((k, v) for k, v in env.items() if k.startswith(("KCE_", "CONTAINER_ENGINE_", "KUBECONFIG")))))
        process = _processes.get(key)
        if process is None or not process.alive:
            process = _processes[key] = RpcProcess(argv, env, self.log, rpc_argv=argv[len(self.kce_command):])
        return process

    def build(
        self,
        *,
        push=False,
        load=False,
        buildargs=None,
        cache_from=None,
        container_limits=None,
        tag="",
        custom_context=False,
        dockerfile="",
        fileobj=None,
        path="",
        labels=None,
        platform=None,
        **kwargs,
    ):
        params = {
            "tag": tag,
            "buildArgs": buildargs or {},
            "cacheFrom": cache_from or [],
            "containerLimits": container_limits or {},
            "labels": labels or {},
            "platform": platform,
            "push": push,
            # Legacy repo2docker never passes push/load, and `--no-run` passes both False: either way it
            # expects to find the image later (Docker keeps it in its image store). Ours is the registry.
            "load": bool(load or not push),
            **kwargs,
        }
        if dockerfile:
            params["dockerfile"] = dockerfile
        context_file = None
        if fileobj is not None:
            if not custom_context:
                raise BuildError("fileobj without custom_context (a bare Dockerfile) is not supported: pass a tar")
            with tempfile.NamedTemporaryFile(prefix="repo2docker-kce-", suffix=".tar", delete=False) as f:
                shutil.copyfileobj(fileobj, f)
            params["contextFile"] = context_file = f.name
        else:
            params["path"] = os.path.abspath(path or ".")
        try:
            _check_context_size(context_file or params["path"])
            yield from self._rpc().stream("build", params, BuildError, self._progress)
        except (BuildError, KceProtocolError) as e:
            self.log.error(f"{e}\n")  # repo2docker prints a BuildError only with --debug
            raise
        finally:
            if context_file:
                os.unlink(context_file)

    def _progress(self, progress):
        if progress.get("kind") == "phase":
            self.log.debug(f"kce: {progress.get('message')}\n")

    def images(self):
        return [Image(tags=i["tags"], config=i["config"]) for i in self._rpc().call("images", {})]

    def inspect_image(self, image):
        found = self._rpc().call("inspectImage", {"ref": image})
        return Image(tags=found["tags"], config=found["config"]) if found else None

    def push(self, image_spec):
        try:
            yield from self._rpc().stream("push", {"ref": image_spec}, ImageLoadError)
        except (ImageLoadError, KceProtocolError) as e:
            self.log.error(f"{e}\n")
            raise

    def run(
        self,
        image_spec,
        *,
        command=None,
        environment=None,
        ports=None,
        publish_all_ports=False,
        remove=False,
        volumes=None,
        **kwargs,
    ):
        params = {
            "ref": image_spec,
            "command": command or None,
            "environment": environment or [],
            "ports": ports or {},
            "publishAllPorts": publish_all_ports,
            "remove": remove,
            "volumes": volumes or {},
            **kwargs,  # e.g. user; the engine warns about names it does not know
        }
        rpc = self._rpc()
        return KubernetesContainer(rpc, rpc.call("run", params))


class KubernetesContainer(Container):
    """A container (pod) served by the `kce rpc` process that ran it; `status` and `exitcode` are snapshots."""

    def __init__(self, rpc, snapshot):
        self._rpc = rpc
        self._snapshot = snapshot

    def _call(self, method, **params):
        return self._rpc.call(f"container.{method}", {"container": self.id, **params})

    @property
    def id(self):
        return self._snapshot["id"]

    @property
    def status(self):
        return self._snapshot["status"]

    @property
    def exitcode(self):
        return self._snapshot["exitcode"]

    @property
    def reason(self):
        """Why the container ended when it did not simply exit (e.g. ImagePullBackOff), else None."""
        return self._snapshot.get("reason")

    @property
    def ports(self):
        """{"8888/tcp": {"host": "127.0.0.1", "port": 8888}}: where each container port is forwarded."""
        return self._snapshot.get("ports") or {}

    def reload(self):
        self._snapshot = self._call("reload")

    def logs(self, *, stream=False, timestamps=False, since=None):
        params = {"container": self.id, "timestamps": timestamps, "since": since}
        if stream:
            return self._stream_logs(params)
        return self._rpc.call("container.logs", params).encode("utf-8")

    def _stream_logs(self, params):
        self._snapshot = yield from _mapped(self._rpc.stream("container.streamLogs", params), lambda line: line.encode("utf-8"))

    def kill(self, *, signal="KILL"):
        self._snapshot = self._call("kill", signal=signal)

    def stop(self, *, timeout=10):
        self._snapshot = self._call("stop", timeout=timeout)

    def wait(self):
        waited = self._call("wait")
        self._snapshot = waited["container"]
        return {"StatusCode": waited["exitCode"], "Error": None}

    def remove(self):
        self._snapshot = self._call("remove")
