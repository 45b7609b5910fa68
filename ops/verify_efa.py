"""`make verify-efa`: prove from the pods' NCCL logs that every rank talks over EFA.

NCCL names the network it chose at INFO level (subsystems INIT and NET, which the vLLM pods
set): with the aws-ofi-nccl plugin, `NET/OFI Selected provider is efa ...` and
`Using network Libfabric`; after a fallback to TCP, `NET/Socket : Using ...` and
`Using network Socket`. A pod PASSes only with the OFI plugin on the efa provider and no
socket line; any socket line FAILs it by name.

    python -m ops.verify_efa [--kubeconfig FILE]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from ops.cli import UsageExit, parse
from ops.kube import Kubectl, KubectlError, role, run_on_cluster
from ops.report import Check, failed, passed, warned

# aws-ofi-nccl src/nccl_ofi_net.cpp: "Selected provider is %s, fabric is %s (found %d nics)";
# releases before Feb 2025 printed "Selected Provider is %s (found %d nics)".
OFI_PROVIDER = re.compile(r"NET/OFI Selected [Pp]rovider is (?P<provider>[^\s,]+)")
# NVIDIA/nccl src/init.cc: INFO(NCCL_INIT, "Using network %s", comm->ncclNet->name).
NETWORK = re.compile(r"NCCL INFO Using network (?P<network>.+?)\s*$")
# NVIDIA/nccl src/transport/net_socket.cc "NET/Socket : Using", and channels "via NET/Socket".
SOCKET = re.compile(r"NET/Socket : Using|NCCL INFO Using network Socket|via NET/Socket")

SOCKET_FIX = (
    "check the pod requests vpc.amazonaws.com/efa, the EFA device plugin runs on its node "
    "(kubectl get ds -n kube-system), FI_PROVIDER=efa is set, and the EFA security group "
    "allows all traffic to itself; then restart the group: kubectl delete pod -n vllm vllm-0"
)


@dataclass(frozen=True)
class NcclNetwork:
    """What one pod's log says about NCCL's network choice."""

    providers: tuple[str, ...]
    networks: tuple[str, ...]
    socket_lines: tuple[str, ...]


def read_nccl_network(log: str) -> NcclNetwork:
    providers: list[str] = []
    networks: list[str] = []
    socket_lines: list[str] = []
    for line in log.splitlines():
        if match := OFI_PROVIDER.search(line):
            providers.append(match["provider"])
        if match := NETWORK.search(line):
            networks.append(match["network"])
        if SOCKET.search(line):
            socket_lines.append(line.strip())
    return NcclNetwork(tuple(providers), tuple(networks), tuple(socket_lines))


def verdict(pod: str, log: str) -> Check:
    """PASS only for NET/OFI on efa with no socket line; otherwise FAIL naming the pod."""
    subject = f"NCCL network of pod {pod}"
    network = read_nccl_network(log)
    if network.socket_lines:
        return failed(
            subject, f"NCCL fell back to TCP sockets: {network.socket_lines[0]}", SOCKET_FIX
        )
    other = sorted(set(network.providers) - {"efa"})
    if other:
        return failed(subject, f"NET/OFI selected provider {', '.join(other)}, not efa", SOCKET_FIX)
    if not network.providers:
        seen = f" (it says: Using network {network.networks[0]})" if network.networks else ""
        return failed(
            subject,
            f"no NET/OFI provider line in its log{seen}",
            "the pods need NCCL_DEBUG=INFO with NCCL_DEBUG_SUBSYS including INIT and NET "
            "(this app sets both); NCCL prints them once, at start: if the log was rotated "
            "or the pod restarted, restart the group and run this again",
        )
    networks = ", ".join(sorted(set(network.networks))) or "not printed"
    return passed(subject, f"NET/OFI with provider efa (network {networks})")


def checks(kubectl: Kubectl) -> Iterator[Check]:
    try:
        pods = kubectl.lws_pods()
    except KubectlError as error:
        yield failed("vLLM pods", str(error), "check cluster access: make verify-efa needs kubectl")
        return
    if not pods:
        yield failed("vLLM pods", "none found", "if the deployment is paused, run make resume")
        return
    if len(pods) == 1:
        yield warned("vLLM pods", "one pod only: NCCL never leaves the node, EFA is not exercised")
    for pod in pods:
        name = pod["metadata"]["name"]
        try:
            log = kubectl.run("logs", name, "--container", "vllm")
        except KubectlError as error:
            yield failed(f"NCCL network of pod {name}", f"{role(pod)}: {error}")
            continue
        yield verdict(f"{name} ({role(pod)})", log)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make verify-efa", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", help="use this kubeconfig instead of the stack outputs")
    try:
        args = parse(parser, argv)
    except UsageExit as usage:
        return usage.code
    return run_on_cluster(args.kubeconfig, checks)


if __name__ == "__main__":
    sys.exit(main())
