"""`python -m repo2docker_kce.runner` against a fake repo2docker (a script that does what its plan says)."""

import http.server
import json
import os
import re
import signal
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import adapter_env, pid_gone, wait_for

from repo2docker_kce import runner

SHA = "0123456789abcdef0123456789abcdef01234567"
URL = "https://git.example.org/owner/repo.git"
IMAGE = "registry.example:5000/binder/owner-repo:0123456789ab"
TIMEOUT = 120  # s for one runner: the machine is small and busy

# The fake repo2docker. Its plan (JSON in $FAKE_R2D_PLAN, which reaches it through the runner's environment):
# record: file for {argv, GIT_* env, pid, pgid, sid, checkout_existed}; on_term: file written on SIGTERM
# (then exit 143); ignore_term; leftover (+ leftover_delay): a process in a session of its own that, like the
# adapter's `kce rpc`, writes that file once its stdin ended and the delay passed (its pid to leftover_pid); stderr, stdout: lines to
# write; flood: [n, size] lines on both pipes at once; fill: bytes to write into the git_workdir it was given;
# ready: file to create before sleeping; sleep: s; self_kill: SIGKILL itself; exit: its status; connect: send a
# launch line to the warm engine at $KCE_RPC_SOCKET, as the adapter does.
FAKE_R2D = r'''
import json, os, signal, subprocess, sys, threading, time

plan = json.loads(os.environ["FAKE_R2D_PLAN"])
workdir = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--Repo2Docker.git_workdir="))


def write_json(path, value):
    with open(path + ".tmp", "w") as f:
        json.dump(value, f)
    os.replace(path + ".tmp", path)


if plan.get("on_term"):
    def on_term(signum, frame):
        with open(plan["on_term"], "w") as f:
            f.write(str(signum))
        os._exit(143)
    signal.signal(signal.SIGTERM, on_term)
if plan.get("ignore_term"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if plan.get("leftover"):
    code = "import sys, time; sys.stdin.read(); time.sleep(%r); open(%r, 'w').write('cleaned')" % (
        plan.get("leftover_delay", 1.0), plan["leftover"])
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    if plan.get("leftover_pid"):
        write_json(plan["leftover_pid"], child.pid)
if plan.get("record"):
    env = {k: v for k, v in os.environ.items() if k.startswith("GIT_") or k in ("PYTHONUNBUFFERED", "KCE_RPC_SOCKET", "KCE_MAX_CONTEXT_BYTES")}
    write_json(plan["record"], {"argv": sys.argv, "env": env, "pid": os.getpid(), "pgid": os.getpgid(0),
                                "sid": os.getsid(0), "checkout_existed": os.path.lexists(workdir)})
if plan.get("connect"):
    import socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(os.environ["KCE_RPC_SOCKET"])
        s.sendall(b'{"argv": ["rpc"], "env": {}}\n')
for line in plan.get("stderr", []):
    sys.stderr.write(line)
    sys.stderr.flush()
for line in plan.get("stdout", []):
    sys.stdout.write(line)
    sys.stdout.flush()
if plan.get("flood"):
    n, size = plan["flood"]
    def flood(stream, tag):
        for i in range(n):
            text = "%s %d %s" % (tag, i, "y" * size)
            stream.write((json.dumps({"message": text + "\n", "phase": "building"}) if tag == "err" else text) + "\n")
            stream.flush()
    threads = [threading.Thread(target=flood, args=(s, t)) for s, t in ((sys.stdout, "out"), (sys.stderr, "err"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
if plan.get("fill"):
    os.makedirs(workdir)
    written, i = 0, 0
    while written < plan["fill"]:
        with open(os.path.join(workdir, "f%d" % i), "wb") as f:
            f.write(b"x" * 65536)
        written, i = written + 65536, i + 1
if plan.get("ready"):
    open(plan["ready"], "w").close()
time.sleep(plan.get("sleep", 0))
if plan.get("self_kill"):
    os.kill(os.getpid(), signal.SIGKILL)
sys.exit(plan.get("exit", 0))
'''


def fake_repo2docker(tmp_path: Path, source: str = FAKE_R2D) -> Path:
    path = tmp_path / "fake-repo2docker"
    path.write_text(f"#!{sys.executable}\n{source}")
    path.chmod(0o755)
    return path


def runner_argv(tmp_path, *options, repo=URL, ref=SHA, extra=(), constants=None, fake=None):
    """argv of the runner (`-m`, or `-c` with module constants changed) with the fake repo2docker."""
    if constants:
        sets = "; ".join(f"r.{name} = {value!r}" for name, value in constants.items())
        head = [sys.executable, "-c", f"import sys, repo2docker_kce.runner as r; {sets}; sys.exit(r.main())"]
    else:
        head = [sys.executable, "-m", "repo2docker_kce.runner"]
    fake = fake or fake_repo2docker(tmp_path)
    argv = [*head, "--repo", repo, "--ref", ref, "--image", IMAGE, "--workdir", str(tmp_path / "work"), "--repo2docker", str(fake), *options]
    return argv + (["--", *extra] if extra else [])


def run_runner(tmp_path, plan, *options, env=None, **kwargs):
    argv = runner_argv(tmp_path, *options, **kwargs)
    environment = adapter_env(FAKE_R2D_PLAN=json.dumps(plan), **(env or {}))
    return subprocess.run(argv, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT, cwd=tmp_path)


def start_runner(tmp_path, plan, *options, **kwargs):
    argv = runner_argv(tmp_path, *options, **kwargs)
    environment = adapter_env(FAKE_R2D_PLAN=json.dumps(plan))
    return subprocess.Popen(argv, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)


def events(stdout: bytes):
    """The runner's stdout as events; fails unless every line is exactly one JSON object."""
    text = stdout.decode("utf-8")
    assert text.endswith("\n"), f"stdout does not end with a newline: {text[-200:]!r}"
    parsed = []
    for line in text.split("\n")[:-1]:
        value = json.loads(line)
        assert isinstance(value, dict), f"not a JSON object: {line!r}"
        parsed.append(value)
    return parsed


def read_json(path: Path):
    return json.loads(path.read_text())


FETCHING = {"phase": "fetching", "message": f"Fetching {URL} at {SHA}\n"}


# ---- output protocol --------------------------------------------------------------------------------------


def test_passes_json_objects_through_and_wraps_other_lines(tmp_path):
    stderr = [
        '{"message": "Picked Git content provider.\\n"}\n',
        '{"message": "Step 1/3\\n", "phase": "building", "extra": {"n": 1}}\n',
        "[1, 2, 3]\n",  # JSON, but not an object: text
        "NaN\n",  # accepted by Python's json, not JSON: text
        "a plain stderr line\n",
        "\n",
        '{"message": "no newline at the end"}',
    ]
    stdout = ["FROM buildpack-deps\r\n", "   \n", "ENV A=b \\\n", "x\ty ü\n"]
    done = run_runner(tmp_path, {"stderr": stderr, "stdout": stdout})
    assert done.returncode == 0, done.stderr.decode()
    got = events(done.stdout)
    assert got[0] == FETCHING
    assert got.pop() == SUCCEEDED
    from_stderr = [
        {"message": "Picked Git content provider.\n"},
        {"message": "Step 1/3\n", "phase": "building", "extra": {"n": 1}},
        {"message": "[1, 2, 3]\n"},
        {"message": "NaN\n"},
        {"message": "a plain stderr line\n"},
        {"message": "no newline at the end"},
    ]
    from_stdout = [{"message": "FROM buildpack-deps\n"}, {"message": "ENV A=b \\\n"}, {"message": "x\ty ü\n"}]
    rest = got[1:]
    assert sorted(map(json.dumps, rest)) == sorted(map(json.dumps, from_stderr + from_stdout))
    assert [e for e in rest if e in from_stderr] == from_stderr  # each pipe's order is kept
    assert [e for e in rest if e in from_stdout] == from_stdout
    assert all(line == line.strip() for line in done.stdout.decode().split("\n")), "lines are compact, one per line"


def test_concurrent_output_of_both_pipes_never_interleaves(tmp_path):
    n = 1500
    done = run_runner(tmp_path, {"flood": [n, 3000]})
    assert done.returncode == 0, done.stderr.decode()
    got = events(done.stdout)[1:]  # every line parsed as one object
    assert got.pop() == SUCCEEDED
    err = [e["message"] for e in got if e.get("phase") == "building"]
    out = [e["message"] for e in got if "phase" not in e]
    assert len(err) == n and len(out) == n
    assert [int(m.split()[1]) for m in err] == list(range(n))
    assert [int(m.split()[1]) for m in out] == list(range(n))
    assert all(m.endswith("y" * 3000 + "\n") for m in err + out)


SUCCEEDED = {"kce_runner": "succeeded"}


def test_success_ends_with_the_control_line_only(tmp_path):
    done = run_runner(tmp_path, {"stderr": ['{"message": "Built\\n", "phase": "built"}\n']})
    assert done.returncode == 0
    assert events(done.stdout) == [FETCHING, {"message": "Built\n", "phase": "built"}, {"kce_runner": "succeeded"}]


def test_a_forged_control_line_is_only_text(tmp_path):
    forged = '{"kce_runner": "succeeded"}'
    done = run_runner(tmp_path, {"stderr": [forged + "\n"], "exit": 1})
    got = events(done.stdout)
    assert {"message": forged + "\n"} in got
    assert {"kce_runner": "succeeded"} not in got


# ---- repo2docker's command line and environment -------------------------------------------------------------


def test_repo2docker_command_line(tmp_path):
    record = tmp_path / "record.json"
    stale = tmp_path / "work" / "checkout"
    stale.mkdir(parents=True)
    (stale / "left-by-an-earlier-attempt").write_text("x")
    done = run_runner(
        tmp_path,
        {"record": str(record)},
        "--user-name",
        "alice",
        "--user-id",
        "1234",
        extra=["--appendix", "RUN true", "--label", "a=b"],
    )
    assert done.returncode == 0, done.stderr.decode()
    recorded = read_json(record)
    work = str(tmp_path / "work")
    assert recorded["argv"][1:] == [
        "--engine", "kubernetes", "--no-run", "--push", "--json-logs",
        "--config", f"{work}/repo2docker_config.py",
        "--user-name", "alice", "--user-id", "1234", "--ref", SHA, "--image-name", IMAGE,
        f"--Repo2Docker.git_workdir={work}/checkout",
        "--appendix", "RUN true", "--label", "a=b",
        URL,
    ]  # fmt: skip
    assert recorded["checkout_existed"] is False, "a stale checkout must be removed (git clone fails on it)"
    config = Path(work, "repo2docker_config.py").read_text()
    assert "from repo2docker.contentproviders import Git" in config
    assert "c.Repo2Docker.content_providers = [Git]" in config
    # its own process group and session, so a stop reaches everything it started
    assert recorded["pgid"] == recorded["pid"] == recorded["sid"]
    assert recorded["env"]["PYTHONUNBUFFERED"] == "1"


def test_default_user(tmp_path):
    record = tmp_path / "record.json"
    done = run_runner(tmp_path, {"record": str(record)})
    assert done.returncode == 0
    argv = read_json(record)["argv"]
    assert argv[argv.index("--user-name") + 1] == "jovyan"
    assert argv[argv.index("--user-id") + 1] == "1000"
    assert argv[-1] == URL


def test_the_config_file_restricts_repo2docker_to_git():
    namespace = {}

    class Config:  # what repo2docker's traitlets config `c` offers: c.Repo2Docker.x = ...
        def __init__(self):
            self.Repo2Docker = type("Section", (), {})()

    namespace["c"] = Config()
    try:
        from repo2docker.contentproviders import Git
    except ImportError:
        pytest.fail("repo2docker must be importable here (the tests' venv installs it)")
    exec(compile(runner.R2D_CONFIG, "repo2docker_config.py", "exec"), namespace)
    assert namespace["c"].Repo2Docker.content_providers == [Git]


def test_git_environment(tmp_path):
    record = tmp_path / "record.json"
    env = {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "user.name",
        "GIT_CONFIG_VALUE_0": "kept",
        "GIT_ALLOW_PROTOCOL": "file:ssh",
        "GIT_TERMINAL_PROMPT": "1",
    }
    done = run_runner(
        tmp_path,
        {"record": str(record)},
        "--resolve",
        "git.example.org:443:192.0.2.10",
        "--resolve",
        "[2001:db8::1]:8443:[2001:db8::2]",
        env=env,
    )
    assert done.returncode == 0, done.stderr.decode()
    got = read_json(record)["env"]
    pairs = [(got[f"GIT_CONFIG_KEY_{i}"], got[f"GIT_CONFIG_VALUE_{i}"]) for i in range(int(got["GIT_CONFIG_COUNT"]))]
    assert pairs == [
        ("user.name", "kept"),
        ("http.followRedirects", "false"),
        ("protocol.allow", "never"),
        ("protocol.http.allow", "always"),
        ("protocol.https.allow", "always"),
        ("http.curloptResolve", "git.example.org:443:192.0.2.10"),
        ("http.curloptResolve", "[2001:db8::1]:8443:[2001:db8::2]"),
    ]
    assert got["GIT_TERMINAL_PROMPT"] == "0"
    assert got["GIT_ALLOW_PROTOCOL"] == "http:https"


@pytest.mark.parametrize("count", [None, "", "bogus", "-3"])
def test_git_environment_without_a_usable_count_starts_at_zero(count):
    base = {} if count is None else {"GIT_CONFIG_COUNT": count}
    env = runner.git_environment(base, ["h:80:127.0.0.1"])
    assert env["GIT_CONFIG_COUNT"] == "5"
    assert (env["GIT_CONFIG_KEY_0"], env["GIT_CONFIG_VALUE_0"]) == ("http.followRedirects", "false")
    assert (env["GIT_CONFIG_KEY_4"], env["GIT_CONFIG_VALUE_4"]) == ("http.curloptResolve", "h:80:127.0.0.1")


def test_default_repo2docker_is_the_one_beside_python(tmp_path, monkeypatch):
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "elsewhere"))
    assert runner.default_repo2docker() == "repo2docker"  # neither beside Python nor on PATH
    (tmp_path / "elsewhere").mkdir()
    on_path = tmp_path / "elsewhere" / "repo2docker"
    on_path.write_text("#!/bin/sh\n")
    on_path.chmod(0o755)
    assert runner.default_repo2docker() == str(on_path)
    beside = bin_dir / "repo2docker"
    beside.write_text("#!/bin/sh\n")
    beside.chmod(0o755)
    assert runner.default_repo2docker() == str(beside)


# ---- real git honours that environment (git >= 2.37 for http.curloptResolve) ---------------------------------

# A fake repo2docker that runs `git ls-remote` on the URL it is given (or on $FAKE_GIT_URL) and relays git's output.
FAKE_GIT = r'''
import os, subprocess, sys
url = os.environ.get("FAKE_GIT_URL") or sys.argv[-1]
done = subprocess.run(["git", "ls-remote", url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
sys.stdout.write(done.stdout)
sys.exit(done.returncode)
'''


@pytest.fixture(scope="module")
def git_server(tmp_path_factory):
    """A repository over git's dumb HTTP on 127.0.0.1, and /moved/repo.git answering 301 to it."""
    root = tmp_path_factory.mktemp("git-http")
    work = root / "work"
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    (work / "README").write_text("hello\n")
    git = ["git", "-C", str(work), "-c", "user.email=t@example.org", "-c", "user.name=t"]
    subprocess.run([*git, "add", "README"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    sha = subprocess.run([*git, "rev-parse", "HEAD"], check=True, stdout=subprocess.PIPE, text=True).stdout.strip()
    served = root / "served"
    served.mkdir()
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(served / "repo.git")], check=True)
    subprocess.run(["git", "-C", str(served / "repo.git"), "update-server-info"], check=True)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def do_GET(self):
            if self.path.startswith("/moved/"):
                self.send_response(301)
                self.send_header("Location", self.path[len("/moved") :])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, *args):
            pass

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"port": server.server_address[1], "sha": sha, "path": served / "repo.git"}
    server.shutdown()
    server.server_close()


PINNED = "git.kce-test.invalid"  # .invalid never resolves: only the pin makes it reachable


def test_git_reaches_a_pinned_host(tmp_path, git_server):
    port = git_server["port"]
    url = f"http://{PINNED}:{port}/repo.git"
    fake = fake_repo2docker(tmp_path, FAKE_GIT)
    done = run_runner(tmp_path, {}, "--resolve", f"{PINNED}:{port}:127.0.0.1", repo=url, fake=fake)
    assert done.returncode == 0, done.stdout.decode()
    assert {"message": f"{git_server['sha']}\tHEAD\n"} in events(done.stdout)


def test_git_does_not_resolve_without_the_pin(tmp_path, git_server):
    url = f"http://{PINNED}:{git_server['port']}/repo.git"
    done = run_runner(tmp_path, {}, repo=url, fake=fake_repo2docker(tmp_path, FAKE_GIT))
    assert done.returncode != 0
    assert "Could not resolve host" in done.stdout.decode()


def test_git_follows_no_redirect(tmp_path, git_server):
    port = git_server["port"]
    moved = f"http://{PINNED}:{port}/moved/repo.git"
    fake = fake_repo2docker(tmp_path, FAKE_GIT)
    done = run_runner(tmp_path, {}, "--resolve", f"{PINNED}:{port}:127.0.0.1", repo=moved, fake=fake)
    assert done.returncode != 0, done.stdout.decode()
    assert git_server["sha"] not in done.stdout.decode()
    # the same request without the runner's settings follows the redirect (git's default: "initial")
    direct = subprocess.run(
        ["git", "-c", f"http.curloptResolve={PINNED}:{port}:127.0.0.1", "ls-remote", moved],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=adapter_env(GIT_TERMINAL_PROMPT="0"),
        timeout=TIMEOUT,
    )
    assert git_server["sha"] in direct.stdout, direct.stdout


def test_git_refuses_other_protocols(tmp_path, git_server):
    local = f"file://{git_server['path']}"
    fake = fake_repo2docker(tmp_path, FAKE_GIT)
    done = run_runner(tmp_path, {}, env={"FAKE_GIT_URL": local}, fake=fake)
    assert done.returncode != 0
    assert "transport 'file' not allowed" in done.stdout.decode()
    assert git_server["sha"] not in done.stdout.decode()
    direct = subprocess.run(["git", "ls-remote", local], stdout=subprocess.PIPE, text=True, env=adapter_env(), timeout=TIMEOUT)
    assert git_server["sha"] in direct.stdout  # reachable at all: the refusal is the runner's doing


# ---- failures ---------------------------------------------------------------------------------------------


def test_nonzero_exit_adds_a_failed_event(tmp_path):
    done = run_runner(tmp_path, {"stderr": ['{"message": "Building\\n", "phase": "building"}\n'], "exit": 5})
    assert done.returncode == 5
    got = events(done.stdout)
    assert got[-1] == {"phase": "failed", "message": "repo2docker exited with status 5\n"}
    assert got[-2] == {"message": "Building\n", "phase": "building"}


def test_nonzero_exit_after_a_failed_event_adds_nothing(tmp_path):
    failed = {"message": "Error during build: boom", "exc_info": "Traceback ...", "phase": "failed"}
    done = run_runner(tmp_path, {"stderr": [json.dumps(failed) + "\n", "a last plain line\n"], "exit": 1})
    assert done.returncode == 1
    got = events(done.stdout)
    assert got == [FETCHING, failed, {"message": "a last plain line\n"}]


def test_repo2docker_killed_by_a_signal(tmp_path):
    done = run_runner(tmp_path, {"self_kill": True})
    assert done.returncode == 128 + signal.SIGKILL
    assert events(done.stdout)[-1] == {"phase": "failed", "message": "repo2docker exited with signal SIGKILL\n"}


def test_repo2docker_missing(tmp_path):
    done = run_runner(tmp_path, {}, fake=tmp_path / "no-such-repo2docker")
    assert done.returncode == 1
    got = events(done.stdout)
    assert got[0] == FETCHING
    assert got[-1]["phase"] == "failed" and got[-1]["message"].startswith("Cannot start repo2docker: ")


def test_an_error_of_the_runner_is_an_event_not_a_traceback(tmp_path):
    (tmp_path / "work").write_text("a file where the workdir should be")
    record = tmp_path / "record.json"
    done = run_runner(tmp_path, {"record": str(record)})
    assert done.returncode == 1
    got = events(done.stdout)  # a traceback would not parse
    assert got[-1]["phase"] == "failed"
    assert got[-1]["message"].startswith("The build runner failed: FileExistsError")
    assert "Traceback" in done.stderr.decode()
    assert not record.exists()


@pytest.mark.parametrize(
    "repo, ref, reason",
    [
        ("file:///srv/repo.git", SHA, "must use http or https, not 'file'"),
        ("ssh://git.example.org/repo.git", SHA, "must use http or https, not 'ssh'"),
        ("git.example.org:repo.git", SHA, "must use http or https"),
        ("https://user:s3cret-pw@git.example.org/repo.git", SHA, "must not contain credentials"),
        ("https://ghp_s3cret-pw@git.example.org/repo.git", SHA, "must not contain credentials"),
        ("https:///repo.git", SHA, "has no host"),
        ("https://git.example.org/re po.git", SHA, "spaces or control characters"),
        (URL, SHA[:7], "40 lowercase hex digits"),
        (URL, SHA.upper(), "40 lowercase hex digits"),
        (URL, "main", "40 lowercase hex digits"),
        (URL, SHA + "0", "40 lowercase hex digits"),
    ],
)
def test_invalid_requests_are_refused_before_repo2docker_starts(tmp_path, repo, ref, reason):
    record = tmp_path / "record.json"
    done = run_runner(tmp_path, {"record": str(record)}, repo=repo, ref=ref)
    assert done.returncode == 2
    got = events(done.stdout)
    assert len(got) == 1 and got[0]["phase"] == "failed"
    assert reason in got[0]["message"] and got[0]["message"].endswith("\n")
    assert "s3cret-pw" not in done.stdout.decode() + done.stderr.decode()
    assert not record.exists(), "repo2docker must not have been started"


@pytest.mark.parametrize(
    "options, reason",
    [
        (["--resolve", "git.example.org:443"], "--resolve must be HOST:PORT:ADDRESS"),
        (["--resolve", "git.example.org:https:192.0.2.1"], "--resolve must be HOST:PORT:ADDRESS"),
        (["--max-repo-bytes", "0"], "--max-repo-bytes must be positive"),
        (["--max-repo-bytes", "lots"], "invalid int value"),
        (["--no-such-option"], "unrecognized arguments"),
    ],
)
def test_invalid_options_are_refused(tmp_path, options, reason):
    record = tmp_path / "record.json"
    done = run_runner(tmp_path, {"record": str(record)}, *options)
    assert done.returncode == 2
    got = events(done.stdout)
    assert len(got) == 1 and got[0]["phase"] == "failed" and reason in got[0]["message"]
    assert not record.exists()


def test_missing_options_are_an_event_too(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "repo2docker_kce.runner", "--ref", SHA],
        env=adapter_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=TIMEOUT,
    )
    assert done.returncode == 2
    got = events(done.stdout)
    assert len(got) == 1 and got[0]["phase"] == "failed"
    assert "--repo" in got[0]["message"] and "--image" in got[0]["message"]


# ---- the size limit ------------------------------------------------------------------------------------------


def test_a_repository_over_the_limit_stops_the_build(tmp_path):
    record, termed = tmp_path / "record.json", tmp_path / "termed"
    plan = {"record": str(record), "on_term": str(termed), "fill": 2 * 1024 * 1024, "sleep": 300}
    started = time.monotonic()
    done = run_runner(tmp_path, plan, "--max-repo-bytes", str(1024 * 1024))
    assert done.returncode == 3, done.stderr.decode()
    assert time.monotonic() - started < 60
    last = events(done.stdout)[-1]
    assert last["phase"] == "failed"
    assert re.fullmatch(
        r"The repository is larger than the limit of 1 MiB \((1\.\d|2) MiB fetched\); the build was stopped\.\n", last["message"]
    ), last["message"]
    assert termed.read_text() == str(int(signal.SIGTERM)), "repo2docker gets SIGTERM first"
    assert pid_gone(read_json(record)["pid"])


def test_a_repository_over_the_limit_is_killed_when_it_ignores_sigterm(tmp_path):
    record = tmp_path / "record.json"
    plan = {"record": str(record), "ignore_term": True, "fill": 1024 * 1024, "sleep": 300}
    done = run_runner(tmp_path, plan, "--max-repo-bytes", "500000", constants={"KILL_AFTER_LIMIT": 1.0})
    assert done.returncode == 3, done.stderr.decode()
    assert "larger than the limit of 500000 bytes" in events(done.stdout)[-1]["message"]
    assert pid_gone(read_json(record)["pid"])


def test_a_fetch_over_the_limit_that_ends_between_two_measurements_is_still_reported_as_too_large(tmp_path):
    # repo2docker's adapter refused the context (KCE_MAX_CONTEXT_BYTES) before the runner measured the checkout.
    record = tmp_path / "record.json"
    plan = {"record": str(record), "fill": 2 * 1024 * 1024, "exit": 1}
    done = run_runner(tmp_path, plan, "--max-repo-bytes", str(1024 * 1024), constants={"SIZE_INTERVAL": 60.0})
    assert done.returncode == 3, done.stderr.decode()
    assert read_json(record)["env"]["KCE_MAX_CONTEXT_BYTES"] == str(1024 * 1024)
    assert "The repository is larger than the limit of 1 MiB" in events(done.stdout)[-1]["message"]


def test_a_repository_under_the_limit_builds(tmp_path):
    plan = {"fill": 512 * 1024, "sleep": 1.5, "exit": 0}  # measured at least twice meanwhile
    done = run_runner(tmp_path, plan, "--max-repo-bytes", str(1024 * 1024))
    assert done.returncode == 0, done.stdout.decode()
    assert events(done.stdout) == [FETCHING, SUCCEEDED]


def test_tree_bytes(tmp_path):
    assert runner.tree_bytes(str(tmp_path / "missing")) == 0
    (tmp_path / "a").write_bytes(b"x" * 1000)
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "e" / "b").write_bytes(b"y" * 234)
    big = tmp_path.parent / f"{tmp_path.name}-outside"
    big.write_bytes(b"z" * 100_000)
    (tmp_path / "d" / "link").symlink_to(big)
    link_size = os.lstat(tmp_path / "d" / "link").st_size
    assert runner.tree_bytes(str(tmp_path)) == 1234 + link_size  # the link, not its target
    assert runner.tree_bytes(str(tmp_path / "a")) == 0  # a file is not a tree


def test_size_text():
    assert runner.size_text(1024 * 1024) == "1 MiB"
    assert runner.size_text(3 * 1024 * 1024 + 512 * 1024) == "3.5 MiB"
    assert runner.size_text(1000) == "1000 bytes"


# ---- stopping the runner ------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_runner_stops_repo2docker(tmp_path, signum):
    record, termed, ready = tmp_path / "record.json", tmp_path / "termed", tmp_path / "ready"
    plan = {"record": str(record), "on_term": str(termed), "ready": str(ready), "sleep": 300}
    proc = start_runner(tmp_path, plan)
    try:
        wait_for(ready.exists, what="the fake repo2docker to start")
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
    assert proc.returncode == 143, stderr.decode()
    assert events(stdout)[-1] == {"phase": "failed", "message": f"The build runner was stopped ({signum.name}).\n"}
    assert termed.read_text() == str(int(signal.SIGTERM)), "SIGTERM is what repo2docker gets"
    assert pid_gone(read_json(record)["pid"])


def test_a_stopped_runner_kills_a_repo2docker_that_ignores_sigterm(tmp_path):
    record, ready = tmp_path / "record.json", tmp_path / "ready"
    plan = {"record": str(record), "ignore_term": True, "ready": str(ready), "sleep": 300}
    proc = start_runner(tmp_path, plan, constants={"KILL_AFTER_STOP": 1.0})
    try:
        wait_for(ready.exists, what="the fake repo2docker to start")
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
    assert proc.returncode == 143
    assert events(stdout)[-1]["message"] == "The build runner was stopped (SIGTERM).\n"
    assert pid_gone(read_json(record)["pid"])


def test_a_stopped_runner_waits_for_what_repo2docker_left_behind(tmp_path):
    """Like `kce rpc` deleting its builder pod once repo2docker is gone: the container must not end before."""
    ready, cleaned = tmp_path / "ready", tmp_path / "cleaned"
    plan = {"on_term": str(tmp_path / "termed"), "leftover": str(cleaned), "leftover_delay": 2.0, "ready": str(ready), "sleep": 300}
    proc = start_runner(tmp_path, plan)
    try:
        wait_for(ready.exists, what="the fake repo2docker to start")
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
    assert proc.returncode == 143
    assert cleaned.exists(), "the runner exited before the process left behind had finished"
    assert events(stdout)[-1]["message"] == "The build runner was stopped (SIGTERM).\n"


def test_a_finished_build_waits_for_what_repo2docker_left_behind(tmp_path):
    cleaned = tmp_path / "cleaned"
    done = run_runner(tmp_path, {"leftover": str(cleaned), "leftover_delay": 2.0, "exit": 0})
    assert done.returncode == 0
    assert cleaned.exists(), "the runner exited before the process left behind had finished"


def test_a_stopped_runner_gives_up_on_leftovers_within_its_budget(tmp_path):
    ready, cleaned, leftover = tmp_path / "ready", tmp_path / "cleaned", tmp_path / "leftover.json"
    plan = {"leftover": str(cleaned), "leftover_delay": 300.0, "leftover_pid": str(leftover), "ready": str(ready), "sleep": 300}
    proc = start_runner(tmp_path, plan, constants={"STOP_BUDGET": 2.0})
    try:
        wait_for(ready.exists, what="the fake repo2docker to start")
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        stdout, _ = proc.communicate(timeout=TIMEOUT)
        waited = time.monotonic() - started
    finally:
        proc.kill()
        if leftover.exists():
            try:
                os.kill(read_json(leftover), signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert proc.returncode == 143
    assert 1.5 < waited < 60, waited
    assert not cleaned.exists()
    assert events(stdout)[-1]["message"] == "The build runner was stopped (SIGTERM).\n"


# ---- a warm runner's engine ----------------------------------------------------------------------------------

# A fake `kce rpc --listen SOCKET`: writes its pid, listens, records the launch line of its one client.
FAKE_WARM_KCE = r'''
import json, os, socket, sys, time
path = sys.argv[sys.argv.index("--listen") + 1]
record = os.environ["FAKE_KCE_RECORD"]
with open(record + ".pid", "w") as f:
    f.write(str(os.getpid()))
time.sleep(float(os.environ.get("FAKE_KCE_LISTEN_DELAY", "0")))  # a slow start-up
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(1)
conn, _ = server.accept()
os.unlink(path)
launch = conn.makefile("rb").readline()
with open(record, "w") as f:
    f.write(launch.decode())
'''


def run_spare(tmp_path, plan, kce, **extra_env):
    """The runner in spare mode, assigned a build at once (no API), with `kce` as its engine command."""
    work = tmp_path / "work"
    args = ["--repo", URL, "--ref", SHA, "--image", IMAGE, "--workdir", str(work), "--repo2docker", str(fake_repo2docker(tmp_path))]
    code = (
        "import sys, repo2docker_kce.runner as r; "
        f"r.WARM_ENGINE_SOCKET = {str(tmp_path / 'kce.sock')!r}; r.WARM_ENGINE_LOG = {str(tmp_path / 'kce.log')!r}; "
        f"r.assigned_arguments = lambda argv: {args!r}; "
        "sys.exit(r.main(['--wait-for-assignment']))"
    )
    env = adapter_env(FAKE_R2D_PLAN=json.dumps(plan), KCE_BIN=str(kce), FAKE_KCE_RECORD=str(tmp_path / "launch.json"), **extra_env)
    return subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT, cwd=tmp_path)


def fake_warm_kce(tmp_path):
    path = tmp_path / "fake-kce"
    path.write_text(f"#!{sys.executable}\n{FAKE_WARM_KCE}")
    path.chmod(0o755)
    return path


def test_a_spare_starts_its_engine_ahead_and_names_it_to_repo2docker(tmp_path):
    record = tmp_path / "r2d.json"
    done = run_spare(tmp_path, {"record": str(record), "connect": True}, fake_warm_kce(tmp_path))
    assert done.returncode == 0, done.stderr.decode()
    assert read_json(record)["env"]["KCE_RPC_SOCKET"] == str(tmp_path / "kce.sock")
    assert json.loads((tmp_path / "launch.json").read_text()) == {"argv": ["rpc"], "env": {}}
    assert events(done.stdout)[-1] == {"kce_runner": "succeeded"}


def test_a_warm_engine_nobody_took_is_stopped_with_the_build(tmp_path):
    done = run_spare(tmp_path, {"exit": 0}, fake_warm_kce(tmp_path))
    assert done.returncode == 0, done.stderr.decode()
    pid = int((tmp_path / "launch.json.pid").read_text())
    wait_for(lambda: pid_gone(pid), 10, "the unused warm engine to be stopped")
    assert not (tmp_path / "launch.json").exists()


def test_a_warm_engine_still_starting_when_the_build_ends_is_stopped_too(tmp_path):
    record = tmp_path / "r2d.json"
    done = run_spare(tmp_path, {"record": str(record)}, fake_warm_kce(tmp_path), FAKE_KCE_LISTEN_DELAY="60")
    assert done.returncode == 0, done.stderr.decode()
    assert "KCE_RPC_SOCKET" not in read_json(record)["env"]  # not listening yet: the build started its own
    pid = int((tmp_path / "launch.json.pid").read_text())
    wait_for(lambda: pid_gone(pid), 10, "the warm engine that never listened to be stopped")


def test_without_kce_a_spare_builds_as_a_runner_does(tmp_path):
    record = tmp_path / "r2d.json"
    done = run_spare(tmp_path, {"record": str(record)}, tmp_path / "no-such-kce")
    assert done.returncode == 0, done.stderr.decode()
    assert "KCE_RPC_SOCKET" not in read_json(record)["env"]
    assert b"no warm engine" in done.stderr
