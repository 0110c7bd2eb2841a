"""A warm runner's wait for its build (assignment.py): the annotation, the retry logic, and the real HTTPS
GET + watch against a local TLS server that plays the API server for one pod."""

import json
import os
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from repo2docker_kce.assignment import ANNOTATION, AssignmentError, PodApi, assignment_of, parse_assignment, wait_for_assignment
from repo2docker_kce.runner import main

ARGS = ["--repo", "https://example.org/r.git", "--ref", "a" * 40, "--image", "reg/x:1"]


def pod(version, args=None):
    annotations = {ANNOTATION: json.dumps(args)} if args is not None else {}
    return {"metadata": {"name": "spare", "resourceVersion": str(version), "annotations": annotations}}


def test_parse_assignment():
    assert parse_assignment(json.dumps(ARGS)) == ARGS
    for bad in ["not json", "{}", '["a", 1]', '"x"']:
        with pytest.raises(AssignmentError):
            parse_assignment(bad)
    assert assignment_of(pod(1)) is None
    assert assignment_of({"metadata": {}}) is None
    assert assignment_of(pod(1, ARGS)) == ARGS


class FakeApi:
    """get() and watch() answers given in advance; records the resource versions watched from."""

    def __init__(self, gets, watches):
        self.gets, self.watches, self.watched = list(gets), list(watches), []

    def get(self):
        answer = self.gets.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def watch(self, version, timeout):
        self.watched.append(version)
        answer = self.watches.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, s):
        self.now += s


def test_an_assignment_already_there_is_taken_without_watching():
    api = FakeApi([pod(5, ARGS)], [])
    assert wait_for_assignment(api, 60) == ARGS
    assert api.watched == []


def test_watches_from_the_pods_version_and_resumes_after_a_quiet_end():
    api = FakeApi([pod(5)], [(None, "7"), (pod(9, ARGS), "9")])
    assert wait_for_assignment(api, 60) == ARGS
    assert api.watched == ["5", "7"]


def test_starts_over_with_a_get_after_a_connection_error():
    clock = Clock()
    api = FakeApi([pod(5), pod(8)], [OSError("reset"), (pod(9, ARGS), "9")])
    assert wait_for_assignment(api, 60, clock=clock, sleep=clock.sleep) == ARGS
    assert api.watched == ["5", "8"]
    assert clock.now > 0  # backed off once


def test_starts_over_with_a_get_after_an_expired_version():
    api = FakeApi([pod(5), pod(12, ARGS)], [(None, "")])  # the watch's ERROR event (410 Gone)
    assert wait_for_assignment(api, 60) == ARGS
    assert api.watched == ["5"]


def test_gives_up_silently_after_max_wait():
    clock = Clock()

    class Quiet(FakeApi):
        def watch(self, version, timeout):
            clock.now += timeout
            return None, version

    assert wait_for_assignment(Quiet([pod(1)], []), 30, clock=clock, sleep=clock.sleep) is None


def test_an_api_refusal_is_fatal():
    api = FakeApi([AssignmentError("HTTP 403")], [])
    with pytest.raises(AssignmentError):
        wait_for_assignment(api, 60)


# ---- the real client against a local TLS "API server" ------------------------------------------------------


@pytest.fixture()
def api_server(tmp_path):
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "ca.crt")],
        check=True, capture_output=True,
    )
    (tmp_path / "token").write_text("the-token\n")
    state = {"requests": [], "pod": pod(3), "events": [json.dumps({"type": "MODIFIED", "object": pod(4)}),
                                                       json.dumps({"type": "MODIFIED", "object": pod(6, ARGS)})]}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            state["requests"].append((self.path, self.headers.get("Authorization")))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            if "watch=1" in self.path:
                for e in state["events"]:
                    self.wfile.write(e.encode() + b"\n")
                    self.wfile.flush()
            else:
                self.wfile.write(json.dumps(state["pod"]).encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(tmp_path / "ca.crt"), str(tmp_path / "key.pem"))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], str(tmp_path), state
    server.shutdown()


def test_pod_api_gets_then_watches_with_the_token(api_server):
    port, account_dir, state = api_server
    api = PodApi("ns 1", "spare", host="127.0.0.1", port=port, account_dir=account_dir)
    assert wait_for_assignment(api, 30) == ARGS
    (get_path, auth), (watch_path, _) = state["requests"]
    assert get_path == "/api/v1/namespaces/ns%201/pods/spare"
    assert auth == "Bearer the-token"
    assert "fieldSelector=metadata.name%3Dspare" in watch_path and "resourceVersion=3" in watch_path


def test_without_pod_name_the_spare_fails_quietly(capfd, monkeypatch):
    monkeypatch.delenv("POD_NAME", raising=False)
    assert main(["--wait-for-assignment"]) == 1
    out, err = capfd.readouterr()
    assert out == ""  # stdout is the build's log: nothing before an assignment
    assert "POD_NAME" in err


def test_an_assigned_spare_runs_the_assigned_build(monkeypatch, capfd):
    import repo2docker_kce.runner as runner

    monkeypatch.setattr(runner, "assigned_arguments", lambda argv: ["--repo", "file:///etc", "--ref", "a" * 40, "--image", "x"])
    assert main(["--wait-for-assignment"]) == 2  # the assigned (invalid) request is validated like any other
    out, _ = capfd.readouterr()
    assert json.loads(out.splitlines()[-1])["phase"] == "failed"
