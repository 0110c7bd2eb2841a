"""The build runner of `kce serve`: one repo2docker build, reported as one JSON object per line on stdout.

    python -m repo2docker_kce.runner --repo URL --ref SHA --image IMAGE_NAME [--max-repo-bytes N]
        [--resolve HOST:PORT:IP]... [--user-name jovyan] [--user-id 1000] [--workdir /work]
        [--repo2docker CMD] [-- EXTRA repo2docker ARGS...]

`kce serve` runs this module in a Kubernetes Job per build and turns every line of the pod's log into an event
for its clients. So stdout is a protocol: every line is exactly one JSON object, nothing else is ever written
there (Python tracebacks and diagnostics go to stderr). The objects are BinderHub's build events, as
`repo2docker --json-logs` writes them: a "message" (a string, usually ending in "\\n") and usually a "phase"
("fetching", "building", "pushing", "failed", ...); repo2docker may add fields (e.g. "exc_info").

- The first line is {"phase": "fetching", "message": "Fetching <url> at <sha>\\n"}.
- Then repo2docker's output, from both its stderr (where --json-logs writes) and its stdout: a line that is a
  JSON object is passed on as it is (re-serialised compactly); any other non-empty line becomes
  {"message": "<the line>\\n"}.
- Failures the runner itself detects end with one {"phase": "failed", "message": "...\\n"} line:
  invalid input (exit 2), the repository exceeding --max-repo-bytes (exit 3), SIGTERM/SIGINT (exit 143),
  repo2docker exiting non-zero without having reported "failed" last (its status), the runner's own error
  (exit 1). On success (exit 0) the last line is the runner's control line {"kce_runner": "succeeded"}: not an
  event for clients; the service reports the build as soon as it sees it and finds the image in the registry.
  A line of repo2docker's that carries the "kce_runner" key is passed on as text, so it cannot forge one.

repo2docker runs as `REPO2DOCKER --engine kubernetes --no-run --push --json-logs --config <workdir>/
repo2docker_config.py --user-name NAME --user-id ID --ref SHA --image-name IMAGE
--Repo2Docker.git_workdir=<workdir>/checkout EXTRA... URL`, in a process group of its own. The config file
limits repo2docker to its Git content provider: the others contact hosts of their own while detecting (the
Dataverse one fetches a list from the Internet for every URL, the CKAN one requests <url>/api/3/...), which
neither the URL check of the service nor the Git settings below cover. An EXTRA `--config` replaces it.

git_workdir: repo2docker 2026.4.0 clones straight into it (`git clone --no-checkout URL <git_workdir>`, which
creates missing parents but fails on a non-empty directory) and deletes it when the build ends, successful or
not (`shutil.rmtree`, even when it existed before). So it is a directory of its own, `<workdir>/checkout`,
removed by the runner beforehand when a previous attempt left it behind.

Git, for repo2docker and everything it runs, is configured by environment variables (GIT_CONFIG_COUNT/
GIT_CONFIG_KEY_n/GIT_CONFIG_VALUE_n, appended after any the environment already has): only http and https
(protocol.allow=never, protocol.http.allow=always, protocol.https.allow=always; GIT_ALLOW_PROTOCOL=http:https),
no redirects (http.followRedirects=false), no prompts (GIT_TERMINAL_PROMPT=0), and one
http.curloptResolve=HOST:PORT:IP per --resolve, which pins the host names to the addresses the service checked.

A warm runner (`--wait-for-assignment`) also starts the engine ahead of its build: `kce rpc --listen
/tmp/kce-rpc.sock` (its output to /tmp/kce-rpc.log), named to repo2docker's adapter by KCE_RPC_SOCKET, so
the ≈ 0.5 s of Node's start-up are paid while waiting. Without it (kce missing, the process died) the adapter
starts kce as usual.

The runner is a child subreaper (Linux): processes that repo2docker leaves behind (the adapter's `kce rpc`,
which deletes its builder pod when repo2docker goes away) are waited for, within a bounded time, before the
runner exits and the container with them ends.
"""

import argparse
import ctypes
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from typing import IO, Any, Dict, List, Mapping, Optional, Sequence
from urllib.parse import urlsplit

from ._sizes import MAX_CONTEXT_ENV, tree_bytes

EXIT_ERROR = 1
EXIT_INVALID = 2
EXIT_TOO_LARGE = 3
EXIT_STOPPED = 143

MIB = 1024 * 1024
SIZE_INTERVAL = 0.5  # s between two measurements of the checkout
KILL_AFTER_LIMIT = 10.0  # s from SIGTERM to SIGKILL when the repository is too large
KILL_AFTER_STOP = 20.0  # s from SIGTERM to SIGKILL when the runner is stopped
STOP_BUDGET = 25.0  # s from a stop signal to the runner's exit (the Job's terminationGracePeriodSeconds is 30)
LINGER = 20.0  # s to wait for processes repo2docker left behind, after a build that was not stopped
READER_JOIN = 5.0  # s to wait for the pipes' last lines once repo2docker exited
WARM_ENGINE_SOCKET = "/tmp/kce-rpc.sock"
WARM_ENGINE_LOG = "/tmp/kce-rpc.log"
WARM_ENGINE_WAIT = 1.0  # s to wait for a warm engine that is still starting up

GIT_CONFIG = (
    ("http.followRedirects", "false"),
    ("protocol.allow", "never"),
    ("protocol.http.allow", "always"),
    ("protocol.https.allow", "always"),
)

# Written to <workdir> and passed with --config: repo2docker's Git content provider only.
R2D_CONFIG = """\
# Written by repo2docker_kce.runner: only the Git content provider (the others contact hosts while detecting).
from repo2docker.contentproviders import Git

c.Repo2Docker.content_providers = [Git]
"""

_SHA = re.compile(r"[0-9a-f]{40}")
_RESOLVE = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+):([0-9]{1,5}):([^\s]+)")


class UsageError(Exception):
    """Invalid command line: reported as a failed event, exit status 2."""


# The key of the runner's own control lines (never a BinderHub event; the service consumes them).
CONTROL_KEY = "kce_runner"


class Events:
    """stdout as the protocol: one compact JSON object per line, flushed, never interleaved."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._closed = False
        self.last_phase: Optional[str] = None  # of the lines passed on from repo2docker

    def emit(self, event: Mapping[str, Any]) -> None:
        line = json.dumps(event, separators=(",", ":"), allow_nan=False) + "\n"
        with self._lock:
            if self._closed:
                return
            try:
                self._stream.write(line)
                self._stream.flush()
            except (BrokenPipeError, ValueError):  # nobody reads any more: nothing else to do
                self._closed = True

    def failed(self, message: str) -> None:
        self.emit({"phase": "failed", "message": message if message.endswith("\n") else message + "\n"})

    def relay(self, raw: bytes) -> None:
        """Passes on one line of repo2docker's output."""
        event = to_event(raw)
        if event is None:
            return
        phase = event.get("phase")
        if isinstance(phase, str):
            self.last_phase = phase
        self.emit(event)

    def close(self) -> None:
        """Nothing is written after this (lines of stray processes still holding the pipes)."""
        with self._lock:
            self._closed = True


def _no_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def to_event(raw: bytes) -> Optional[Dict[str, Any]]:
    """The event for one output line: the JSON object it is, else {"message": line}; None for a blank line."""
    text = raw.decode("utf-8", "replace").rstrip("\r\n")
    if not text.strip():
        return None
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except ValueError:
        value = None
    if isinstance(value, dict) and CONTROL_KEY not in value:
        return value
    # A line that looks like the runner's own control line did not come from the runner: it is only text.
    return {"message": text.rstrip("\r") + "\n"}


class Parser(argparse.ArgumentParser):
    """argparse whose errors are UsageError (a failed event) and whose help goes to stderr, never stdout."""

    def error(self, message: str) -> Any:
        raise UsageError(message)

    def print_help(self, file: Optional[IO[str]] = None) -> None:
        super().print_help(file or sys.stderr)


def _parser() -> Parser:
    p = Parser(prog="python -m repo2docker_kce.runner", description="Runs one repo2docker build; JSON events on stdout.")
    p.add_argument("--repo", required=True, help="the repository's http(s) URL (no credentials)")
    p.add_argument("--ref", required=True, help="the commit: 40 lowercase hex digits")
    p.add_argument("--image", required=True, help="the image to build and push (repo2docker's --image-name)")
    p.add_argument("--max-repo-bytes", type=int, default=None, help="stop the build when the checkout grows past this")
    p.add_argument("--resolve", action="append", default=[], metavar="HOST:PORT:IP", help="pin a host name for git (repeatable)")
    p.add_argument("--user-name", default="jovyan")
    p.add_argument("--user-id", type=int, default=1000)
    p.add_argument("--workdir", default="/work", help="scratch directory (the checkout goes to <workdir>/checkout)")
    p.add_argument("--repo2docker", default=None, help="the repo2docker executable (default: next to this Python, else on PATH)")
    return p


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Options before `--`; what follows `--` is passed to repo2docker (options.extra). Raises UsageError."""
    argv = list(argv)
    extra: List[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, extra = argv[:split], argv[split + 1 :]
    options = _parser().parse_args(argv)
    options.extra = extra
    validate(options)
    return options


def validate(options: argparse.Namespace) -> None:
    """Raises UsageError for what the runner refuses to build. Never quotes credentials."""
    try:
        url = urlsplit(options.repo)
        host = url.hostname
        url.port  # noqa: B018 (raises ValueError for an invalid port)
    except ValueError:
        raise UsageError("the repository URL is not a valid URL") from None
    if url.scheme.lower() not in ("http", "https"):
        raise UsageError(f"the repository URL must use http or https, not {url.scheme or 'no scheme'!r}")
    if "@" in url.netloc:
        raise UsageError("the repository URL must not contain credentials (user:password@)")
    if not host:
        raise UsageError("the repository URL has no host")
    if any(ord(ch) <= 32 or ord(ch) == 127 for ch in options.repo):
        raise UsageError("the repository URL must not contain spaces or control characters")
    if not _SHA.fullmatch(options.ref):
        raise UsageError(f"--ref must be a commit SHA (40 lowercase hex digits), not {options.ref!r}")
    if not options.image.strip() or options.image.startswith("-"):
        raise UsageError(f"--image is not an image name: {options.image!r}")
    for pin in options.resolve:
        if not _RESOLVE.fullmatch(pin):
            raise UsageError(f"--resolve must be HOST:PORT:ADDRESS, not {pin!r}")
    if options.max_repo_bytes is not None and options.max_repo_bytes <= 0:
        raise UsageError("--max-repo-bytes must be positive")


def git_environment(base: Mapping[str, str], resolve: Sequence[str]) -> Dict[str, str]:
    """`base` plus the runner's Git settings, appended after the GIT_CONFIG_* entries `base` already has."""
    env = dict(base)
    try:
        count = max(0, int(env.get("GIT_CONFIG_COUNT") or 0))
    except ValueError:
        count = 0  # git would refuse it anyway ("bogus count")
    for key, value in [*GIT_CONFIG, *(("http.curloptResolve", pin) for pin in resolve)]:
        env[f"GIT_CONFIG_KEY_{count}"] = key
        env[f"GIT_CONFIG_VALUE_{count}"] = value
        count += 1
    env["GIT_CONFIG_COUNT"] = str(count)
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_ALLOW_PROTOCOL"] = "http:https"  # else an inherited one would override protocol.*.allow
    return env


def default_repo2docker() -> str:
    """The `repo2docker` console script next to this Python (its venv), else the one on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "repo2docker")
    if os.path.isfile(beside) and os.access(beside, os.X_OK):
        return beside
    return shutil.which("repo2docker") or "repo2docker"


def checkout_dir(options: argparse.Namespace) -> str:
    return os.path.join(os.path.abspath(options.workdir), "checkout")


def repo2docker_argv(options: argparse.Namespace, config_file: str) -> List[str]:
    return [
        options.repo2docker or default_repo2docker(),
        "--engine",
        "kubernetes",
        "--no-run",
        "--push",
        "--json-logs",
        "--config",
        config_file,
        "--user-name",
        options.user_name,
        "--user-id",
        str(options.user_id),
        "--ref",
        options.ref,
        "--image-name",
        options.image,
        f"--Repo2Docker.git_workdir={checkout_dir(options)}",
        *options.extra,
        options.repo,
    ]


def size_text(n: int) -> str:
    if n % MIB == 0:
        return f"{n // MIB} MiB"
    if n >= MIB:
        return f"{n / MIB:.1f} MiB"
    return f"{n} bytes"


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


def become_subreaper() -> bool:
    """Orphans of our descendants become our children (Linux ≥ 3.4), so they can be waited for."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def reap_children(deadline: float) -> None:
    """Waits, until `deadline` (time.monotonic()), for every remaining child; the subprocess is reaped already."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # none left
        if pid == 0:
            if time.monotonic() >= deadline:
                return
            time.sleep(0.1)


class Build:
    """repo2docker in its own process group, its output relayed, its checkout measured, stop signals forwarded."""

    def __init__(self, options: argparse.Namespace, events: Events, warm_engine: Optional["WarmEngine"] = None) -> None:
        self.options = options
        self.events = events
        self.warm_engine = warm_engine
        self.proc: Optional["subprocess.Popen[bytes]"] = None
        self.stop_signal: Optional[int] = None
        self.stopped_at = 0.0
        self.too_large: Optional[int] = None
        self.kill_at: Optional[float] = None

    def run(self) -> int:
        options = self.options
        self.events.emit({"phase": "fetching", "message": f"Fetching {options.repo} at {options.ref}\n"})
        config_file = self.prepare()
        become_subreaper()
        self.install_signal_handlers()
        env = git_environment(os.environ, options.resolve)
        env["PYTHONUNBUFFERED"] = "1"  # repo2docker's stdout lines as they come
        if self.options.max_repo_bytes is not None:
            # The checkout is measured every SIZE_INTERVAL; a fetch that ends between two measurements would reach
            # the build: the adapter refuses a context over the limit before any builder is created.
            env[MAX_CONTEXT_ENV] = str(self.options.max_repo_bytes)
        # A spare claimed right after it started may still be starting it: that is still sooner than a new one.
        if self.warm_engine is not None and self.warm_engine.ready(wait=WARM_ENGINE_WAIT):
            env["KCE_RPC_SOCKET"] = self.warm_engine.socket
        try:
            self.proc = subprocess.Popen(
                repo2docker_argv(options, config_file),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except OSError as e:
            self.events.failed(f"Cannot start repo2docker: {e}")
            return EXIT_ERROR
        if self.stop_signal is not None:  # arrived while starting
            self.signal_group(signal.SIGTERM)
        readers = [self.relay(self.proc.stdout), self.relay(self.proc.stderr)]
        code = self.supervise()
        for reader in readers:
            reader.join(READER_JOIN)
        return self.finish(code)

    def prepare(self) -> str:
        """Creates the workdir (and $TMPDIR, which may live in it), removes a checkout left by a previous
        attempt, writes repo2docker's config."""
        workdir = os.path.abspath(self.options.workdir)
        os.makedirs(workdir, exist_ok=True)
        # The adapter spools the build context (the whole repository) into a temporary file: the Job points
        # TMPDIR into the work volume, which is sized for it; a missing TMPDIR would silently fall back to /tmp.
        tmpdir = os.environ.get("TMPDIR")
        if tmpdir:
            os.makedirs(tmpdir, exist_ok=True)
        checkout = checkout_dir(self.options)
        if os.path.lexists(checkout):
            if os.path.isdir(checkout) and not os.path.islink(checkout):
                shutil.rmtree(checkout)
            else:
                os.unlink(checkout)
        config_file = os.path.join(workdir, "repo2docker_config.py")
        with open(config_file, "w", encoding="utf-8") as f:
            f.write(R2D_CONFIG)
        return config_file

    def relay(self, pipe: Optional[IO[bytes]]) -> threading.Thread:
        def read() -> None:
            assert pipe is not None
            for raw in pipe:
                self.events.relay(raw)

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        return thread

    def install_signal_handlers(self) -> None:
        def on_signal(signum: int, frame: Any) -> None:
            if self.stop_signal is None:
                self.stop_signal = signum
                self.stopped_at = time.monotonic()
                self.kill_at = self.stopped_at + KILL_AFTER_STOP
                self.signal_group(signal.SIGTERM)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def signal_group(self, signum: int) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        try:
            os.killpg(self.proc.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def supervise(self) -> int:
        """Waits for repo2docker, measuring its checkout; returns its exit status."""
        assert self.proc is not None
        limit = self.options.max_repo_bytes
        checkout = checkout_dir(self.options)
        while True:
            try:
                return self.proc.wait(timeout=SIZE_INTERVAL)
            except subprocess.TimeoutExpired:
                pass
            if limit is not None and self.too_large is None and self.stop_signal is None:
                size = tree_bytes(checkout)
                if size > limit:
                    self.too_large = size
                    self.kill_at = time.monotonic() + KILL_AFTER_LIMIT
                    self.signal_group(signal.SIGTERM)
            if self.kill_at is not None and time.monotonic() >= self.kill_at:
                self.signal_group(signal.SIGKILL)
                self.kill_at = None

    def finish(self, code: int) -> int:
        """The final event (when there is one) and the exit status, after the processes left behind ended."""
        if self.warm_engine is not None:  # before waiting for leftovers: an unused one would be waited for
            self.warm_engine.stop_unused()
        if self.stop_signal is not None:
            self.final(f"The build runner was stopped ({signal_name(self.stop_signal)}).")
            reap_children(self.stopped_at + STOP_BUDGET)
            return EXIT_STOPPED
        limit = self.options.max_repo_bytes
        if code != 0 and self.too_large is None and limit is not None:
            size = tree_bytes(checkout_dir(self.options))  # refused by the adapter before the next measurement
            if size > limit:
                self.too_large = size
        if self.too_large is not None:
            self.final(
                f"The repository is larger than the limit of {size_text(limit)} "
                f"({size_text(self.too_large)} fetched); the build was stopped."
            )
            reap_children(time.monotonic() + LINGER)
            return EXIT_TOO_LARGE
        if code != 0 and self.events.last_phase != "failed":
            status = f"status {code}" if code > 0 else f"signal {signal_name(-code)}"
            self.final(f"repo2docker exited with {status}")
        else:
            if code == 0:
                # Lets the service report the build at once (it confirms the image in the registry) instead of
                # waiting for the kubelet to report the container's end.
                self.events.emit({CONTROL_KEY: "succeeded"})
            self.events.close()
        reap_children(time.monotonic() + LINGER)
        return code if code >= 0 else 128 - code

    def final(self, message: str) -> None:
        self.events.failed(message)
        self.events.close()

    def abort(self) -> None:
        """After an error of the runner itself: repo2docker must not go on without it."""
        self.signal_group(signal.SIGKILL)


class WarmEngine:
    """`kce rpc --listen`, started while a warm runner waits; its one client is the build's repo2docker."""

    def __init__(self, socket: Optional[str] = None, log: Optional[str] = None) -> None:
        self.socket = socket or WARM_ENGINE_SOCKET
        log = log or WARM_ENGINE_LOG
        self.proc: Optional["subprocess.Popen[bytes]"] = None
        kce = shlex.split(os.environ.get("KCE_BIN", "")) or ["kce"]
        try:
            with open(log, "ab") as out:
                self.proc = subprocess.Popen(
                    [*kce, "rpc", "--listen", self.socket], stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
                )
        except OSError as e:  # no kce here: the adapter will say so when it tries
            print(f"no warm engine: {e}", file=sys.stderr)

    def ready(self, wait: float = 0.0) -> bool:
        """Whether a client can connect (the process listens), waiting up to `wait` s while it starts up."""
        deadline = time.monotonic() + wait
        while self.proc is not None and self.proc.poll() is None:
            if os.path.exists(self.socket):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return False

    def stop_unused(self) -> None:
        """Stops the process unless it ended: nobody took it (it may even still be starting up), or the client
        that took it is done (it ends with its client anyway)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def assigned_arguments(argv: Sequence[str]) -> Optional[List[str]]:
    """`--wait-for-assignment [--max-wait S]`: a warm runner waits (silently) for the build the service assigns
    it (assignment.py); None when none came in time. Raises UsageError / AssignmentError."""
    from .assignment import PodApi, wait_for_assignment

    p = Parser(prog="python -m repo2docker_kce.runner --wait-for-assignment")
    p.add_argument("--wait-for-assignment", action="store_true", required=True)
    p.add_argument("--max-wait", type=float, default=600.0, help="exit 0 after this many seconds without a build")
    options = p.parse_args(list(argv))
    name = os.environ.get("POD_NAME", "")
    namespace = os.environ.get("POD_NAMESPACE") or os.environ.get("KCE_NAMESPACE", "")
    if not name or not namespace:
        raise UsageError("--wait-for-assignment needs POD_NAME and POD_NAMESPACE (or KCE_NAMESPACE) from the downward API")
    return wait_for_assignment(PodApi(namespace, name), options.max_wait)


def main(argv: Optional[Sequence[str]] = None) -> int:
    events = Events(sys.stdout)
    argv = list(sys.argv[1:] if argv is None else argv)
    warm_engine: Optional[WarmEngine] = None
    try:
        if argv[:1] == ["--wait-for-assignment"]:
            warm_engine = WarmEngine()
            try:
                assigned = assigned_arguments(argv)
            except Exception as e:  # nothing was assigned: stdout stays silent (it is no build's log yet)
                traceback.print_exc(file=sys.stderr)
                print(f"waiting for an assignment failed: {e}", file=sys.stderr)
                return EXIT_ERROR
            if assigned is None:
                return 0
            argv = assigned
        return run_build(argv, events, warm_engine)
    finally:
        if warm_engine is not None:
            warm_engine.stop_unused()


def run_build(argv: Sequence[str], events: Events, warm_engine: Optional[WarmEngine]) -> int:
    """Validates the request and runs the build; every failure is an event, never a traceback on stdout."""
    try:
        options = parse_args(argv)
    except UsageError as e:
        events.failed(f"Invalid build request: {e}")
        return EXIT_INVALID
    build = Build(options, events, warm_engine)
    try:
        return build.run()
    except Exception as e:  # never a traceback on stdout
        traceback.print_exc(file=sys.stderr)
        build.abort()
        events.failed(f"The build runner failed: {type(e).__name__}: {e}")
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
