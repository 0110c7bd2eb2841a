"""A client of `kce rpc`: line-delimited JSON requests on its stdin, replies on its stdout.

The protocol is documented in kube-container-engine's src/rpc/protocol.ts. Replies are read by a
background thread into one queue per request, so streams can be abandoned and requests interleaved. When
the process ends (crash, kill), every request waiting for a reply fails with KceProtocolError at once.

With $KCE_RPC_SOCKET naming the socket of a warm `kce rpc --listen` (a warm build runner of `kce serve`
starts one while it waits), the client connects there instead of starting kce: the process already paid
Node's start-up. It serves one client; when it is gone or taken, kce is started as usual.
"""

import atexit
import collections
import itertools
import json
import os
import queue
import socket
import subprocess
import threading

from repo2docker.engine import BuildError, ContainerEngineException, ImageLoadError

_CLASSES = {"BuildError": BuildError, "ImageLoadError": ImageLoadError}


class KceProtocolError(ContainerEngineException):
    """`kce rpc` died or could not be started: the request has no answer."""


def engine_error(error, default=ContainerEngineException):
    """The Python exception for a protocol error body: BuildError/ImageLoadError when the engine said so."""
    for name in error.get("types") or [error.get("type")]:
        if name in _CLASSES:
            return _CLASSES[name](error.get("message", ""))
    return default(f"{error.get('type', 'Error')}: {error.get('message', '')}")


class _WarmConnection:
    """The connection to a warm `kce rpc --listen`, with a subprocess' stdin/stdout/wait."""

    def __init__(self, path, rpc_argv, env):
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.connect(path)
            self._sock.sendall((json.dumps({"argv": rpc_argv, "env": env}) + "\n").encode("utf-8"))
        except OSError:
            self._sock.close()
            raise
        self.stdin = self._sock.makefile("wb")
        self.stdout = self._sock.makefile("rb")
        self.pid = f"warm, {path}"

    def close_input(self):
        self.stdin.close()
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class RpcProcess:
    """One `kce rpc` process and the requests in flight to it."""

    def __init__(self, argv, env, log, rpc_argv=None):
        self._argv = argv
        self._log = log
        self._stderr_tail = collections.deque(maxlen=20)
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._queues = {}
        self._ended = None
        warm = env.get("KCE_RPC_SOCKET")
        self._proc = None
        self._stderr_thread = None  # a warm kce's stderr arrives on its connection
        if warm and rpc_argv is not None:
            try:
                self._proc = _WarmConnection(warm, rpc_argv, {k: v for k, v in env.items() if k != "KCE_RPC_SOCKET"})
                self._log.debug(f"kce: using the warm engine at {warm}\n")
            except OSError as e:  # gone, or taken by another engine of this process: start our own
                self._log.debug(f"kce: no warm engine at {warm} ({e}), starting {' '.join(argv)}\n")
        if self._proc is None:
            self._spawn(argv, env)
        threading.Thread(target=self._read_stdout, daemon=True).start()
        atexit.register(self.close)

    def _spawn(self, argv, env):
        try:
            # A new session: Ctrl-C reaches repo2docker, which then still talks to us to clean up.
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except OSError as e:
            raise KceProtocolError(
                f"cannot start {' '.join(argv)!r}: {e}. Install kube-container-engine (`kce` on PATH) "
                "or set KCE_BIN / --KubernetesEngine.kce_command"
            ) from e
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._queues = {}
        self._ended = None
        self._stderr_tail = collections.deque(maxlen=20)
        self._stderr_thread = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_thread.start()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        atexit.register(self.close)

    @property
    def alive(self):
        return self._ended is None

    def close(self):
        """Ends the process: it cancels what is still in flight and exits."""
        try:
            if isinstance(self._proc, _WarmConnection):
                self._proc.close_input()
            else:
                self._proc.stdin.close()
        except OSError:
            pass

    def call(self, method, params, error_class=ContainerEngineException):
        """Sends a request and returns its result (for methods without output lines)."""
        stream = self.stream(method, params, error_class)
        while True:
            try:
                next(stream)
            except StopIteration as done:
                return done.value

    def stream(self, method, params, error_class=ContainerEngineException, on_progress=None):
        """Yields the request's output lines (str); returns its result. Closing the generator cancels it."""
        replies = queue.Queue()
        with self._lock:
            if self._ended:
                raise self._dead(method)
            request_id = next(self._ids)
            self._queues[request_id] = replies
        finished = False
        try:
            self._send({"id": request_id, "method": method, "params": params}, method)
            while True:
                reply = replies.get()
                if reply is None:
                    finished = True
                    raise self._dead(method)
                if "line" in reply:
                    yield reply["line"]
                elif "progress" in reply:
                    if on_progress:
                        on_progress(reply["progress"])
                elif "error" in reply:
                    finished = True
                    raise engine_error(reply["error"], error_class)
                elif "result" in reply:
                    finished = True
                    return reply["result"]
        finally:
            with self._lock:
                self._queues.pop(request_id, None)
            if not finished and self.alive:
                try:
                    self._send({"id": next(self._ids), "method": "cancel", "params": {"id": request_id}}, "cancel")
                except KceProtocolError:
                    pass

    def _send(self, request, method):
        data = (json.dumps(request, default=str) + "\n").encode("utf-8")
        with self._write_lock:
            try:
                self._proc.stdin.write(data)
                self._proc.stdin.flush()
            except (OSError, ValueError) as e:
                raise self._dead(method) from e

    def _read_stdout(self):
        try:
            for raw in self._proc.stdout:
                try:
                    reply = json.loads(raw)
                    if isinstance(reply, dict) and "stderr" in reply and "id" not in reply:  # a warm kce's stderr
                        self._on_stderr(str(reply["stderr"]))
                        continue
                    replies = self._queues.get(reply.get("id"))
                except (ValueError, AttributeError, TypeError):  # not JSON, not an object, an unhashable id
                    self._stderr_tail.append(f"(not a protocol line on stdout: {raw[:200]!r})")
                    continue
                if replies is not None:
                    replies.put(reply)
        except OSError:  # the warm kce's connection was reset
            pass
        finally:
            state = self._end_state()
            with self._lock:
                self._ended = state
                for replies in self._queues.values():
                    replies.put(None)

    def _read_stderr(self):
        for raw in self._proc.stderr:
            self._on_stderr(raw.decode("utf-8", "replace"))

    def _on_stderr(self, text):
        for line in text.rstrip("\n").split("\n"):
            self._stderr_tail.append(line)
            self._log.warning(line + "\n")  # repo2docker's messages carry their newline

    def _end_state(self, timeout=None):
        if isinstance(self._proc, _WarmConnection):
            return "closed the connection"
        return f"exited with code {self._proc.wait(timeout=timeout)}"

    def _dead(self, method):
        try:
            state = self._end_state(timeout=5)
        except subprocess.TimeoutExpired:
            state = "stopped answering"
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=2)  # its last words
        tail = "\n".join(self._stderr_tail)
        return KceProtocolError(
            f"`{' '.join(self._argv)}` (pid {self._proc.pid}) {state} during {method}"
            + (f"; its last messages:\n{tail}" if tail else "")
        )
