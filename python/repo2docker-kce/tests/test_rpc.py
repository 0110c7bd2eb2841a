"""repo2docker_kce._rpc against a fake `kce rpc` speaking the protocol of src/rpc/protocol.ts."""

import json
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import wait_for
from repo2docker.engine import BuildError, ContainerEngineException, ImageLoadError

from repo2docker_kce._rpc import KceProtocolError, RpcProcess, engine_error

# The fake `kce rpc`: one request per stdin line, answered by method (see below); every request line is logged to
# $FAKE_KCE_LOG. Like kce, it exits when its stdin ends.
#   echo {..}                      -> result: the params
#   lines {lines, progress, result} -> each progress, each line, then the result
#   error {error}                   -> final error: the given body
#   hold {line?}                    -> (a line, then) nothing until `release` or `cancel`
#   release {id, result}            -> result for the held request id; null for itself
#   cancel {id}                     -> CancelledError for the held id; null for itself
#   raw {text, result}              -> the text as a stdout line as it is, then the result
#   stderr {lines}                  -> the lines on stderr, then result null
#   die {stderr, code}              -> the lines on stderr, exit with code, no answer
#   deaf {}                         -> closes its stdin, result null, then sleeps
#   env {name}                      -> result: the variable's value, argv, whether it leads its own session
FAKE_KCE = r'''
import json, os, sys, time

log = open(os.environ["FAKE_KCE_LOG"], "a")
held = {}


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    log.write(line)
    log.flush()
    request = json.loads(line)
    rid, method, params = request["id"], request["method"], request.get("params", {})
    if method == "echo":
        send({"id": rid, "result": params})
    elif method == "lines":
        for progress in params.get("progress", []):
            send({"id": rid, "progress": progress})
        for text in params.get("lines", []):
            send({"id": rid, "line": text})
        send({"id": rid, "result": params.get("result")})
    elif method == "error":
        send({"id": rid, "error": params["error"]})
    elif method == "hold":
        held[rid] = True
        if "line" in params:
            send({"id": rid, "line": params["line"]})
    elif method == "release":
        del held[params["id"]]
        send({"id": params["id"], "result": params["result"]})
        send({"id": rid, "result": None})
    elif method == "cancel":
        if held.pop(params["id"], None):
            send({"id": params["id"], "error": {"type": "CancelledError", "types": ["CancelledError"], "message": "cancelled"}})
        send({"id": rid, "result": None})
    elif method == "raw":
        sys.stdout.write(params["text"] + "\n")
        sys.stdout.flush()
        send({"id": rid, "result": params["result"]})
    elif method == "stderr":
        for text in params["lines"]:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()
        send({"id": rid, "result": None})
    elif method == "die":
        for text in params["stderr"]:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()
        os._exit(params["code"])
    elif method == "deaf":
        os.close(0)
        send({"id": rid, "result": None})
        time.sleep(120)
        os._exit(0)
    elif method == "env":
        send({"id": rid, "result": {"value": os.environ.get(params["name"]), "argv": sys.argv[1:],
                                    "session_leader": os.getsid(0) == os.getpid()}})
    else:
        send({"id": rid, "error": {"type": "RpcError", "types": ["RpcError"], "message": "unknown method " + method}})
'''

TIMEOUT = 60  # s: nothing here may take long; a hang fails the test instead of blocking the run


class Log:
    """The `log` RpcProcess writes kce's stderr to."""

    def __init__(self):
        self.warnings = []

    def warning(self, text):
        self.warnings.append(text)


def within(fn, timeout=TIMEOUT):
    """fn() in a thread: its result, or its exception raised here; fails the test when it does not finish."""
    outcome = {}

    def target():
        try:
            outcome["value"] = fn()
        except BaseException as e:  # noqa: B036 (handed to the test)
            outcome["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"hung for {timeout} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class Fake:
    def __init__(self, tmp_path: Path):
        self.script = tmp_path / "fake-kce"
        self.script.write_text(FAKE_KCE)
        self.log_file = tmp_path / "requests.log"
        self.log_file.touch()
        self.env = {"FAKE_KCE_LOG": str(self.log_file), "PATH": "/usr/bin:/bin", "MARK": "marked"}
        self.log = Log()
        self.processes = []

    def start(self, *args):
        process = RpcProcess([sys.executable, str(self.script), "rpc", *args], self.env, self.log)
        self.processes.append(process)
        return process

    def requests(self):
        return [json.loads(line) for line in self.log_file.read_text().splitlines()]


@pytest.fixture
def fake(tmp_path):
    f = Fake(tmp_path)
    yield f
    for process in f.processes:
        process.close()
        process._proc.kill()
        process._proc.wait(TIMEOUT)


def test_call_returns_the_result(fake):
    rpc = fake.start()
    params = {"ref": "name:tag", "nested": {"list": [1, 2.5, None, True]}, "text": "ü ✓"}
    assert within(lambda: rpc.call("echo", params)) == params
    assert rpc.alive
    request = fake.requests()[0]
    assert request == {"id": request["id"], "method": "echo", "params": params}


def test_request_ids_are_unique(fake):
    rpc = fake.start()
    for i in range(5):
        assert within(lambda: rpc.call("echo", {"i": i})) == {"i": i}
    ids = [r["id"] for r in fake.requests()]
    assert len(set(ids)) == 5


def test_params_that_json_cannot_encode_are_sent_as_text(fake):
    rpc = fake.start()
    assert within(lambda: rpc.call("echo", {"path": Path("/a/b")})) == {"path": "/a/b"}


def test_stream_yields_lines_and_returns_the_result(fake):
    rpc = fake.start()
    progress = []
    stream = rpc.stream("lines", {"lines": ["a\n", "b\n", "c"], "progress": [{"kind": "phase", "message": "p"}], "result": {"image": "x"}}, on_progress=progress.append)

    def drain():
        lines = []
        while True:
            try:
                lines.append(next(stream))
            except StopIteration as done:
                return lines, done.value

    assert within(drain) == (["a\n", "b\n", "c"], {"image": "x"})
    assert progress == [{"kind": "phase", "message": "p"}]


def test_call_skips_lines_and_progress(fake):
    rpc = fake.start()
    assert within(lambda: rpc.call("lines", {"lines": ["x\n"], "progress": [{"kind": "phase"}], "result": 42})) == 42


def test_progress_without_a_handler_is_ignored(fake):
    rpc = fake.start()
    assert within(lambda: list(rpc.stream("lines", {"lines": ["x\n"], "progress": [{"kind": "phase"}]}))) == ["x\n"]


@pytest.mark.parametrize(
    "body, error_class, expected_class, message",
    [
        ({"type": "BuildError", "types": ["BuildError", "ContainerEngineError", "Error"], "message": "no"}, ContainerEngineException, BuildError, "no"),
        ({"type": "ImageLoadError", "types": ["ImageLoadError", "Error"], "message": "pull"}, ContainerEngineException, ImageLoadError, "pull"),
        # a subclass the adapter does not know: the nearest known class of its chain
        ({"type": "BuilderTimeout", "types": ["BuilderTimeout", "BuildError", "Error"], "message": "late"}, ContainerEngineException, BuildError, "late"),
        ({"type": "BuildError", "message": "old server without types"}, ContainerEngineException, BuildError, "old server without types"),
        ({"type": "RegistryError", "types": ["RegistryError", "Error"], "message": "401"}, ContainerEngineException, ContainerEngineException, "RegistryError: 401"),
        ({"type": "RegistryError", "types": ["RegistryError", "Error"], "message": "401"}, ImageLoadError, ImageLoadError, "RegistryError: 401"),
        ({"types": [], "message": "bare"}, BuildError, BuildError, "Error: bare"),
    ],
)
def test_errors_become_engine_exceptions(fake, body, error_class, expected_class, message):
    rpc = fake.start()
    with pytest.raises(ContainerEngineException) as raised:
        within(lambda: rpc.call("error", {"error": body}, error_class))
    assert type(raised.value) is expected_class
    assert str(raised.value) == message
    assert rpc.alive, "an error reply ends the request, not the process"
    assert within(lambda: rpc.call("echo", {"after": 1})) == {"after": 1}


def test_engine_error_without_a_process():
    error = engine_error({"type": "CancelledError", "types": ["CancelledError"], "message": "stop"})
    assert type(error) is ContainerEngineException and str(error) == "CancelledError: stop"
    assert type(engine_error({"type": "X", "message": "m"}, KceProtocolError)) is KceProtocolError
    assert issubclass(KceProtocolError, ContainerEngineException)


def test_requests_interleave(fake):
    rpc = fake.start()
    held = {}
    thread = threading.Thread(target=lambda: held.update(result=rpc.call("hold", {})), daemon=True)
    thread.start()
    wait_for(lambda: any(r["method"] == "hold" for r in fake.requests()), TIMEOUT, "the held request")
    held_id = next(r["id"] for r in fake.requests() if r["method"] == "hold")
    # answered while the first one waits
    assert within(lambda: rpc.call("echo", {"second": True})) == {"second": True}
    assert thread.is_alive() and not held
    assert within(lambda: rpc.call("release", {"id": held_id, "result": "first"})) is None
    thread.join(TIMEOUT)
    assert held == {"result": "first"}


def test_closing_a_stream_cancels_its_request(fake):
    rpc = fake.start()
    stream = rpc.stream("hold", {"line": "started\n"})
    assert within(lambda: next(stream)) == "started\n"
    held_id = next(r["id"] for r in fake.requests() if r["method"] == "hold")
    stream.close()
    cancel = wait_for(lambda: [r for r in fake.requests() if r["method"] == "cancel"], TIMEOUT, "the cancel request")
    assert cancel[0]["params"] == {"id": held_id}
    assert cancel[0]["id"] != held_id
    assert rpc.alive
    assert within(lambda: rpc.call("echo", {"still": "served"})) == {"still": "served"}


def test_a_stream_that_finished_sends_no_cancel(fake):
    rpc = fake.start()
    assert within(lambda: list(rpc.stream("lines", {"lines": ["a\n"]}))) == ["a\n"]
    with pytest.raises(BuildError):
        within(lambda: rpc.call("error", {"error": {"type": "BuildError", "types": ["BuildError"], "message": "x"}}))
    assert within(lambda: rpc.call("echo", {})) == {}
    assert [r["method"] for r in fake.requests()] == ["lines", "error", "echo"]


def test_a_dying_kce_fails_every_waiting_request_with_its_last_words(fake):
    rpc = fake.start()
    outcomes = []

    def wait_held():
        try:
            rpc.call("hold", {})
        except Exception as e:  # noqa: BLE001 (checked below)
            outcomes.append(e)

    threads = [threading.Thread(target=wait_held, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    wait_for(lambda: sum(r["method"] == "hold" for r in fake.requests()) == 2, TIMEOUT, "two held requests")
    with pytest.raises(KceProtocolError) as raised:
        within(lambda: rpc.call("die", {"stderr": ["first words", "Error: out of memory"], "code": 3}))
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "a waiting request hung after kce died"
    message = str(raised.value)
    assert "exited with code 3 during die" in message
    assert "its last messages:" in message and "first words\nError: out of memory" in message
    assert len(outcomes) == 2 and all(type(e) is KceProtocolError for e in outcomes)
    assert all("exited with code 3 during hold" in str(e) and "Error: out of memory" in str(e) for e in outcomes)
    assert not rpc.alive


def test_requests_after_death_fail_at_once(fake):
    rpc = fake.start()
    with pytest.raises(KceProtocolError):
        within(lambda: rpc.call("die", {"stderr": [], "code": 0}))
    started = time.monotonic()
    with pytest.raises(KceProtocolError) as raised:
        within(lambda: rpc.call("echo", {}))
    assert time.monotonic() - started < 10
    assert "exited with code 0 during echo" in str(raised.value)
    assert "its last messages" not in str(raised.value)  # it said nothing


def test_a_kce_that_cannot_start(tmp_path):
    with pytest.raises(KceProtocolError) as raised:
        RpcProcess([str(tmp_path / "no-such-kce"), "rpc"], {}, Log())
    assert "cannot start" in str(raised.value) and "KCE_BIN" in str(raised.value)


def test_kce_stderr_is_logged_and_kept_for_errors(fake):
    rpc = fake.start()
    assert within(lambda: rpc.call("stderr", {"lines": ["warning: one", "warning: two"]})) is None
    wait_for(lambda: len(fake.log.warnings) >= 2, TIMEOUT, "the warnings")
    assert fake.log.warnings == ["warning: one\n", "warning: two\n"]
    with pytest.raises(KceProtocolError) as raised:
        within(lambda: rpc.call("die", {"stderr": ["the end"], "code": 1}))
    assert "warning: one\nwarning: two\nthe end" in str(raised.value)


def test_lines_that_are_not_protocol_messages_are_skipped(fake):
    rpc = fake.start()
    for text in ["not json at all", "[1, 2]", '"a string"', '{"id": [1], "result": "unhashable id"}', '{"id": 999999, "result": "nobody asked"}']:
        assert within(lambda: rpc.call("raw", {"text": text, "result": "after"})) == "after", text
    with pytest.raises(KceProtocolError) as raised:
        within(lambda: rpc.call("die", {"stderr": [], "code": 2}))
    assert "(not a protocol line on stdout: b'not json at all\\n')" in str(raised.value)


def test_close_ends_kce(fake):
    rpc = fake.start()
    assert within(lambda: rpc.call("echo", {})) == {}
    rpc.close()
    wait_for(lambda: not rpc.alive, TIMEOUT, "kce to exit after its stdin closed")
    assert rpc._proc.returncode == 0
    with pytest.raises(KceProtocolError):
        within(lambda: rpc.call("echo", {}))
    rpc.close()  # twice is fine


def test_a_kce_that_stops_reading_fails_the_request(fake):
    rpc = fake.start()
    assert within(lambda: rpc.call("deaf", {})) is None
    with pytest.raises(KceProtocolError) as raised:
        within(lambda: rpc.call("echo", {}))  # nobody reads its stdin any more: the write fails
    assert "stopped answering during echo" in str(raised.value)
    assert rpc._proc.poll() is None  # it did not exit: it stopped answering


def test_argv_env_and_session(fake):
    rpc = fake.start("--namespace", "ns")
    got = within(lambda: rpc.call("env", {"name": "MARK"}))
    assert got["value"] == "marked"
    assert got["argv"] == ["rpc", "--namespace", "ns"]
    assert got["session_leader"] is True, "kce runs in a session of its own (Ctrl-C reaches repo2docker only)"


class WarmKce:
    """A fake warm `kce rpc --listen`: one client; records its launch line; echoes requests, sends `stderr`
    messages for method "stderr", closes the connection for "hangup"."""

    def __init__(self, path):
        import socket

        self.path = str(path)
        self.launch = None
        self.requests = []
        self.ended = threading.Event()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.path)
        self._server.listen(1)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        import os

        conn, _ = self._server.accept()
        os.unlink(self.path)  # one client, like kce
        self._server.close()
        with conn, conn.makefile("rb") as lines:
            def send(message):
                conn.sendall((json.dumps(message) + "\n").encode())

            for n, raw in enumerate(lines):
                message = json.loads(raw)
                if n == 0:
                    self.launch = message
                    continue
                self.requests.append(message)
                if message["method"] == "stderr":
                    send({"stderr": "".join(text + "\n" for text in message["params"]["lines"])})
                    send({"id": message["id"], "result": None})
                elif message["method"] == "hangup":
                    break
                else:
                    send({"id": message["id"], "result": message.get("params")})
        self.ended.set()


class DebugLog(Log):
    def __init__(self):
        super().__init__()
        self.debugs = []

    def debug(self, text):
        self.debugs.append(text)


def test_a_warm_kce_named_by_kce_rpc_socket_is_used_instead_of_starting_one(tmp_path):
    warm = WarmKce(tmp_path / "kce.sock")
    env = {"KCE_RPC_SOCKET": warm.path, "KCE_REGISTRY": "r.example:5000", "PATH": "/usr/bin:/bin"}
    log = DebugLog()
    # the kce command does not exist: starting it would raise "cannot start"
    rpc = RpcProcess([str(tmp_path / "no-such-kce"), "rpc", "--namespace", "ns"], env, log, rpc_argv=["rpc", "--namespace", "ns"])
    assert within(lambda: rpc.call("echo", {"a": 1})) == {"a": 1}
    assert warm.launch == {"argv": ["rpc", "--namespace", "ns"], "env": {"KCE_REGISTRY": "r.example:5000", "PATH": "/usr/bin:/bin"}}
    assert any("using the warm engine" in d for d in log.debugs)
    # its stderr arrives as messages and is logged and kept like a started kce's
    assert within(lambda: rpc.call("stderr", {"lines": ["kce: one", "kce: two"]})) is None
    wait_for(lambda: len(log.warnings) >= 2, TIMEOUT, "the warnings")
    assert log.warnings == ["kce: one\n", "kce: two\n"]
    # closing ends the connection (the warm kce cancels what is in flight and exits)
    rpc.close()
    assert warm.ended.wait(TIMEOUT)
    wait_for(lambda: not rpc.alive, TIMEOUT, "the client to see the end")


def test_a_warm_kce_that_hangs_up_fails_the_request_with_its_last_words(tmp_path):
    warm = WarmKce(tmp_path / "kce.sock")
    rpc = RpcProcess(["kce", "rpc"], {"KCE_RPC_SOCKET": warm.path}, DebugLog(), rpc_argv=["rpc"])
    assert within(lambda: rpc.call("stderr", {"lines": ["kce: about to go"]})) is None
    with pytest.raises(KceProtocolError) as raised:
        within(lambda: rpc.call("hangup", {}))
    assert "closed the connection during hangup" in str(raised.value)
    assert "kce: about to go" in str(raised.value)


def test_without_a_warm_kce_at_the_socket_kce_is_started(fake, tmp_path):
    fake.env["KCE_RPC_SOCKET"] = str(tmp_path / "nobody-listens.sock")
    log = DebugLog()
    rpc = RpcProcess([sys.executable, str(fake.script), "rpc"], fake.env, log, rpc_argv=["rpc"])
    fake.processes.append(rpc)
    got = within(lambda: rpc.call("env", {"name": "KCE_RPC_SOCKET"}))
    assert got["argv"] == ["rpc"]
    assert any("no warm engine at" in d for d in log.debugs)
