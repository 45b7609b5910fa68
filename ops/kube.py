"""kubectl for the operator commands, pointed at the deployed cluster.

The kubeconfig is the one `aws eks update-kubeconfig` writes for the cluster named in the
WorkloadStack outputs (into a file of its own, never the user's ~/.kube/config), or the file
passed with --kubeconfig, which needs no AWS at all.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.aws import AWS_ERRORS, AwsUnavailable, error_text, find_output, session, stack_outputs
from ops.report import Check, failed, print_report

WORKLOAD_STACK = "VllmWorkloadStack"
NAMESPACE = "vllm"
LWS_NAME = "vllm"
# Labels the LeaderWorkerSet controller puts on every pod it creates
# (kubernetes-sigs/lws api/leaderworkerset/v1/leaderworkerset_types.go).
LWS_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"
WORKER_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/worker-index"
KUBECTL_TIMEOUT_SECONDS = 120
POLL_SECONDS = 10
# Where the vLLM pods run (constructs/cluster_controllers.py; a test keeps the two equal).
GPU_NODE_SELECTOR = {"workload-class": "gpu"}
GPU_TOLERATIONS = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


class KubectlError(Exception):
    """kubectl is missing or a call failed: one line for the report, no traceback."""


@dataclass(frozen=True)
class Kubectl:
    kubeconfig: str | None = None
    namespace: str = NAMESPACE

    def run(self, *args: str, stdin: str | None = None, timeout: int | None = None) -> str:
        binary = shutil.which("kubectl")
        if binary is None:
            raise KubectlError("kubectl is not on PATH: install kubectl (within one minor version)")
        command = [binary]
        if self.kubeconfig:
            command += ["--kubeconfig", self.kubeconfig]
        command += ["--namespace", self.namespace, *args]
        try:
            result = subprocess.run(
                command,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=timeout or KUBECTL_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise KubectlError(f"kubectl {' '.join(args)} timed out") from error
        if result.returncode != 0:
            message = result.stderr.strip().splitlines()[-1:] or [f"exit {result.returncode}"]
            raise KubectlError(f"kubectl {' '.join(args[:2])}: {message[0]}")
        return result.stdout

    def get_json(self, *args: str) -> dict[str, Any]:
        return json.loads(self.run("get", *args, "--output", "json"))

    def apply(self, objects: list[dict[str, Any]]) -> str:
        documents = {"apiVersion": "v1", "kind": "List", "items": objects}
        return self.run("apply", "--filename", "-", stdin=json.dumps(documents))

    def delete(self, kind: str, name: str) -> str:
        return self.run("delete", kind, name, "--ignore-not-found", "--wait=false")

    def wait_for_job(self, name: str, timeout_seconds: int) -> str | None:
        """None once the Job succeeded, else why it did not."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            status = self.get_json("job", name).get("status", {})
            if status.get("succeeded"):
                return None
            if status.get("failed"):
                return "the Job failed"
            if time.monotonic() > deadline:
                return f"still running after {timeout_seconds} s"
            time.sleep(POLL_SECONDS)

    def lws_pods(self) -> list[dict[str, Any]]:
        """The vLLM pods, leader (worker index 0) first, then workers by index."""
        pods = self.get_json("pods", "--selector", f"{LWS_NAME_LABEL}={LWS_NAME}")["items"]
        return sorted(pods, key=lambda pod: (_group(pod), _worker_index(pod)))

    def deployed_image(self) -> str:
        """The image the LeaderWorkerSet runs: the region's DLC, or the configured vllmImage."""
        lws = self.get_json("leaderworkerset", LWS_NAME)
        return lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0][
            "image"
        ]


def _group(pod: dict[str, Any]) -> str:
    return pod["metadata"].get("labels", {}).get("leaderworkerset.sigs.k8s.io/group-index", "")


def _worker_index(pod: dict[str, Any]) -> int:
    return int(pod["metadata"].get("labels", {}).get(WORKER_INDEX_LABEL, "0"))


def role(pod: dict[str, Any]) -> str:
    return "leader" if _worker_index(pod) == 0 else "worker"


def run_on_cluster(kubeconfig: str | None, checks: Callable[[Kubectl], Iterable[Check]]) -> int:
    """Connect, run the checks and print them; no cluster access is one FAIL line."""
    try:
        kubectl = connect(kubeconfig)
    except (AwsUnavailable, KubectlError) as error:
        return print_report([failed("cluster access", str(error))])
    return print_report(checks(kubectl))


def connect(kubeconfig: str | None) -> Kubectl:
    """kubectl for the given kubeconfig, else for the cluster in the stack outputs."""
    if kubeconfig:
        return Kubectl(kubeconfig=kubeconfig)
    aws = session()
    try:
        outputs = stack_outputs(aws, [WORKLOAD_STACK])[WORKLOAD_STACK]
    except AWS_ERRORS as error:
        raise KubectlError(f"cannot read {WORKLOAD_STACK} outputs: {error_text(error)}") from error
    cluster = find_output(outputs, "ClusterName")
    if cluster is None:
        raise KubectlError(f"{WORKLOAD_STACK} has no ClusterName output: deploy it first")
    if shutil.which("aws") is None:
        raise KubectlError("the aws CLI is not on PATH; or pass --kubeconfig <file>")
    path = str(Path(tempfile.mkdtemp(prefix="vllm-ops-")) / "kubeconfig")
    result = subprocess.run(
        [
            "aws",
            "eks",
            "update-kubeconfig",
            "--name",
            cluster,
            "--region",
            aws.region_name,
            "--kubeconfig",
            path,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise KubectlError(f"aws eks update-kubeconfig: {result.stderr.strip()}")
    return Kubectl(kubeconfig=path)
