"""Shared helpers: the adapter is imported from this source tree (PYTHONPATH), never from an installed copy."""

import os
import sys
import time
from pathlib import Path

ADAPTER = Path(__file__).resolve().parents[1]

# The tests must exercise this tree's code, also in the subprocesses they start.
if str(ADAPTER) not in sys.path:
    sys.path.insert(0, str(ADAPTER))


def adapter_env(**extra):
    """The environment for a `python -m repo2docker_kce...` subprocess: this tree first on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ADAPTER), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    for name in [n for n in env if n.startswith("GIT_CONFIG_") or n == "GIT_ALLOW_PROTOCOL"]:
        del env[name]
    env.update(extra)
    return env


def wait_for(predicate, timeout=60.0, what="a condition"):
    """Polls `predicate` until it returns a true value (returned); fails the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def pid_gone(pid):
    """True when no process `pid` exists (a zombie counts as existing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False
