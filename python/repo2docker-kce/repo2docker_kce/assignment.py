"""A warm build runner's wait for its build: `python -m repo2docker_kce.runner --wait-for-assignment`.

`kce serve` keeps a spare runner pod started ahead of demand, so a build does not wait for a pod to be
scheduled and started. The spare writes nothing on stdout (its log becomes the build's event stream) and
watches its own pod through the Kubernetes API until the service claims it: the service sets the annotation
`kube-container-engine/assignment` to a JSON list, the runner's command-line arguments for the build
(`["--repo", URL, "--ref", SHA, ...]`), in the same update that labels the pod as that build's. The runner
then runs the build as if started with those arguments.

The pod's ServiceAccount must be allowed to get and watch pods in its namespace (the engine's Role allows it).
Without an assignment within `max_wait` seconds the spare exits 0 silently (the service replaces it).
Standard library only.
"""

import http.client
import json
import os
import ssl
import time
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import quote

ANNOTATION = "kube-container-engine/assignment"
SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


class AssignmentError(Exception):
    """The assignment cannot be read (a bad annotation, no API access)."""


def parse_assignment(value: str) -> List[str]:
    """The runner's arguments from the annotation's value: a JSON list of strings."""
    try:
        args = json.loads(value)
    except ValueError as e:
        raise AssignmentError(f"the assignment annotation is not JSON: {e}") from None
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise AssignmentError("the assignment annotation must be a JSON list of strings")
    return args


def assignment_of(pod: Dict[str, Any]) -> Optional[List[str]]:
    """The pod's assignment, or None while it has none."""
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
    return None if value is None else parse_assignment(value)


class PodApi:
    """GET and watch of one pod over the in-cluster API (token and CA of the pod's ServiceAccount)."""

    def __init__(self, namespace: str, name: str, host: Optional[str] = None, port: Optional[int] = None,
                 account_dir: str = SERVICE_ACCOUNT) -> None:
        self.namespace = namespace
        self.name = name
        self.host = host or os.environ.get("KUBERNETES_SERVICE_HOST", "")
        self.port = port or int(os.environ.get("KUBERNETES_SERVICE_PORT", "443"))
        self.account_dir = account_dir
        if not self.host:
            raise AssignmentError("not in a pod: KUBERNETES_SERVICE_HOST is not set")

    def _connection(self, timeout: float) -> http.client.HTTPSConnection:
        context = ssl.create_default_context(cafile=os.path.join(self.account_dir, "ca.crt"))
        return http.client.HTTPSConnection(self.host, self.port, context=context, timeout=timeout)

    def _headers(self) -> Dict[str, str]:
        # Re-read every time: the kubelet rotates projected tokens.
        with open(os.path.join(self.account_dir, "token"), encoding="utf-8") as f:
            return {"Authorization": f"Bearer {f.read().strip()}", "Accept": "application/json"}

    def _path(self, query: str = "") -> str:
        base = f"/api/v1/namespaces/{quote(self.namespace, safe='')}/pods"
        return f"{base}?{query}" if query else f"{base}/{quote(self.name, safe='')}"

    def get(self) -> Dict[str, Any]:
        conn = self._connection(30)
        try:
            conn.request("GET", self._path(), headers=self._headers())
            res = conn.getresponse()
            body = res.read()
            if res.status != 200:
                raise AssignmentError(f"GET of pod {self.name}: HTTP {res.status}: {body[:300]!r}")
            return json.loads(body)
        finally:
            conn.close()

    def watch(self, resource_version: str, timeout_seconds: int) -> Tuple[Optional[Dict[str, Any]], str]:
        """Watches the pod until an event carries an assignment (→ that pod) or the watch ends (→ None)."""
        query = (f"fieldSelector=metadata.name%3D{quote(self.name, safe='')}&watch=1"
                 f"&resourceVersion={quote(resource_version, safe='')}&timeoutSeconds={timeout_seconds}")
        conn = self._connection(timeout_seconds + 30)
        try:
            conn.request("GET", self._path(query), headers=self._headers())
            res = conn.getresponse()
            if res.status != 200:
                raise AssignmentError(f"watch of pod {self.name}: HTTP {res.status}: {res.read()[:300]!r}")
            for line in res:
                event = json.loads(line)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    return None, ""  # e.g. 410 Gone: start over with a fresh GET
                version = (obj.get("metadata") or {}).get("resourceVersion") or resource_version
                if event.get("type") in ("ADDED", "MODIFIED") and assignment_of(obj) is not None:
                    return obj, version
                resource_version = version
            return None, resource_version
        finally:
            conn.close()


def wait_for_assignment(api: PodApi, max_wait: float, clock=time.monotonic, sleep=time.sleep) -> Optional[List[str]]:
    """The runner arguments the service assigned, or None when `max_wait` passed without one."""
    deadline = clock() + max_wait
    failures = 0
    version = ""
    while clock() < deadline:
        try:
            if not version:
                pod = api.get()
                found = assignment_of(pod)
                if found is not None:
                    return found
                version = (pod.get("metadata") or {}).get("resourceVersion") or ""
            left = max(1, int(deadline - clock()))
            pod, version = api.watch(version, min(left, 300))
            if pod is not None:
                return assignment_of(pod)
            failures = 0
        except AssignmentError:
            raise
        except (OSError, ValueError, http.client.HTTPException):
            failures += 1
            version = ""
            sleep(min(0.2 * 2 ** failures, 5))
    return None
