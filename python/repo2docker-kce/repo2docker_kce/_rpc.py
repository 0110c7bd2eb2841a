"""A client of `kce rpc`: line-delimited JSON requests on its stdin, replies on its stdout.

The protocol is documented in kube-container-engine's src/rpc/protocol.ts. Replies are read by a
background thread into one queue per request, so streams can be abandoned and requests interleaved. When
the process ends (crash, kill), every request waiting for a reply fails with KceProtocolError at once.
"""

import atexit
import collections
import itertools
import json
import queue
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


class RpcProcess:
    """One `kce rpc` process and the requests in flight to it."""

    def __init__(self, argv, env, log):
        self._argv = argv
        self._log = log
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
                    replies = self._queues.get(reply.get("id"))
                except (ValueError, AttributeError, TypeError):  # not JSON, not an object, an unhashable id
                    self._stderr_tail.append(f"(not a protocol line on stdout: {raw[:200]!r})")
                    continue
                if replies is not None:
                    replies.put(reply)
        finally:
            code = self._proc.wait()
            with self._lock:
                self._ended = f"exited with code {code}"
                for replies in self._queues.values():
                    replies.put(None)

    def _read_stderr(self):
        for raw in self._proc.stderr:
            text = raw.decode("utf-8", "replace").rstrip("\n")
            self._stderr_tail.append(text)
            self._log.warning(text + "\n")  # repo2docker's messages carry their newline

    def _dead(self, method):
        try:
            state = f"exited with code {self._proc.wait(timeout=5)}"
        except subprocess.TimeoutExpired:
            state = "stopped answering"
        self._stderr_thread.join(timeout=2)  # its last words
        tail = "\n".join(self._stderr_tail)
        return KceProtocolError(
            f"`{' '.join(self._argv)}` (pid {self._proc.pid}) {state} during {method}"
            + (f"; its last messages:\n{tail}" if tail else "")
        )
