"""`make nccl-test` (disruptive): all-reduce bandwidth across all GPU nodes, vs the EFA line rate.

Scales vLLM to zero (the GPUs must be free), runs an Indexed Job with one torchrun per GPU
node and the deployed vLLM image (PyTorch's NCCL through aws-ofi-nccl), prints bus bandwidth
by message size, compares the best with the instance's EFA line rate, checks from the pods'
NCCL logs that they used EFA, then puts vLLM back as it was.

    python -m ops.nccl_test [--kubeconfig FILE] [-c key=value ...]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import manifests
from config.errors import ConfigError
from config.settings import Config, load_config_from_cli
from ops import kube
from ops.cli import UsageExit, parse
from ops.kube import Kubectl, KubectlError, run_on_cluster
from ops.report import EXIT_USAGE, Check, failed, passed, warned
from ops.verify_efa import verdict
from planning.catalog import InstanceSpec

MIB = 1024**2
SIZES = tuple(MIB * 4**step for step in range(6))  # 1 MiB ... 1 GiB
MASTER_PORT = 29500
RESULT = re.compile(
    r"NCCL-TEST size=(?P<size>\d+) ranks=(?P<ranks>\d+) time_us=(?P<time_us>[\d.]+) "
    r"algbw_GBps=(?P<algbw>[\d.]+) busbw_GBps=(?P<busbw>[\d.]+)"
)
# Far below the line rate means another path than EFA (TCP gives a few GB/s at best).
LOW_SHARE = 0.25


@dataclass(frozen=True)
class Sample:
    size: int
    ranks: int
    time_us: float
    busbw_gbps: float  # GB/s


def render(
    config: Config, *, image: str, run_id: str, deadline_seconds: int = 1800
) -> list[dict[str, Any]]:
    """ConfigMap (the script), headless Service and Indexed Job for one run."""
    instance = config.instance
    accelerators = {"nvidia.com/gpu": instance.gpus}
    env = [
        {"name": "NCCL_DEBUG", "value": "INFO"},
        {"name": "NCCL_DEBUG_SUBSYS", "value": "INIT,NET"},
        {"name": "SIZES", "value": " ".join(str(size) for size in SIZES)},
        {"name": "WARMUP", "value": "5"},
        {"name": "ITERATIONS", "value": "20"},
    ]
    if instance.efa_interfaces:
        accelerators["vpc.amazonaws.com/efa"] = instance.efa_interfaces
        env.insert(0, {"name": "FI_PROVIDER", "value": "efa"})
    memory = f"{instance.memory_gib // 2}Gi"
    return manifests.render(
        "nccl-test",
        name=f"nccl-test-{run_id}",
        namespace=kube.NAMESPACE,
        allreduce_py=manifests.read_text("nccl-allreduce.py"),
        master_port=MASTER_PORT,
        nodes=config.gpu_node_count,
        gpus_per_node=instance.gpus,
        deadline_seconds=deadline_seconds,
        node_selector={**kube.GPU_NODE_SELECTOR, "node.kubernetes.io/instance-type": instance.name},
        tolerations=kube.GPU_TOLERATIONS,
        image=image,
        env=env,
        resources={
            "requests": {"cpu": str(instance.vcpus // 2), "memory": memory, **accelerators},
            "limits": {"memory": memory, **accelerators},
        },
        shm_size=f"{min(256, instance.memory_gib // 8)}Gi",
    )


def parse_samples(log: str) -> list[Sample]:
    return [
        Sample(int(m["size"]), int(m["ranks"]), float(m["time_us"]), float(m["busbw"]))
        for m in map(RESULT.search, log.splitlines())
        if m
    ]


def _size(size: int) -> str:
    return f"{size / 1024**3:g} GiB" if size >= 1024**3 else f"{size // MIB} MiB"


def compare(samples: list[Sample], instance: InstanceSpec) -> Iterator[Check]:
    """One line per size, then the best bus bandwidth against the EFA line rate."""
    for sample in samples:
        yield passed(
            f"all-reduce {_size(sample.size):>8} over {sample.ranks} ranks",
            f"bus bandwidth {sample.busbw_gbps:7.2f} GB/s ({sample.time_us:,.0f} us)",
        )
    best = max(samples, key=lambda sample: sample.busbw_gbps)
    if not instance.efa_gbps:
        yield warned("EFA line rate", f"{instance.name} has no EFA line rate in the catalog")
        return
    line_rate = instance.efa_gbps / 8  # Gbit/s -> GB/s
    share = best.busbw_gbps / line_rate
    detail = (
        f"best {best.busbw_gbps:.1f} GB/s at {_size(best.size)} = {share:.0%} of "
        f"{instance.name}'s EFA line rate {line_rate:g} GB/s "
        f"({instance.efa_interfaces} interfaces, {instance.efa_gbps} Gbit/s)"
    )
    if share < LOW_SHARE:
        yield warned("bus bandwidth vs EFA", detail, "run make verify-efa; see README")
    else:
        yield passed("bus bandwidth vs EFA", detail)


def run(kubectl: Kubectl, config: Config, run_id: str, timeout: int) -> Iterator[Check]:
    try:
        lws = kubectl.get_json("leaderworkerset", kube.LWS_NAME)
    except KubectlError as error:
        yield failed("vLLM LeaderWorkerSet", str(error))
        return
    replicas = int(lws["spec"].get("replicas", 1))
    image = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["image"]
    objects = render(config, image=image, run_id=run_id, deadline_seconds=timeout)
    name = objects[-1]["metadata"]["name"]
    try:
        kubectl.run("scale", "leaderworkerset", kube.LWS_NAME, "--replicas=0")
        yield passed("vLLM scaled to 0", f"was {replicas} replica(s); restored at the end")
        yield from _test(kubectl, config, objects, name, timeout)
    except KubectlError as error:
        yield failed(f"Job {name}", str(error))
    finally:
        try:
            kubectl.run("scale", "leaderworkerset", kube.LWS_NAME, f"--replicas={replicas}")
            restored = passed("vLLM restored", f"{replicas} replica(s); loading takes minutes")
        except KubectlError as error:
            restored = failed(
                "vLLM restored",
                str(error),
                f"kubectl scale leaderworkerset {kube.LWS_NAME} -n {kube.NAMESPACE} "
                f"--replicas={replicas}",
            )
    yield restored


def _test(
    kubectl: Kubectl, config: Config, objects: list[dict[str, Any]], name: str, timeout: int
) -> Iterator[Check]:
    kubectl.apply(objects)
    problem = kubectl.wait_for_job(name, timeout)
    pods = kubectl.get_json("pods", "--selector", f"batch.kubernetes.io/job-name={name}")["items"]
    logs = {pod["metadata"]["name"]: kubectl.run("logs", pod["metadata"]["name"]) for pod in pods}
    for pod_name, log in sorted(logs.items()):
        yield verdict(pod_name, log)
    samples = [sample for log in logs.values() for sample in parse_samples(log)]
    if problem or not samples:
        yield failed(
            f"Job {name}", problem or "printed no result", f"kubectl logs -n vllm job/{name}"
        )
        return
    yield from compare(samples, config.instance)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make nccl-test", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", help="use this kubeconfig instead of the stack outputs")
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds")
    parser.add_argument("--run-id", default=datetime.now(UTC).strftime("%Y%m%d-%H%M%S"))
    try:
        args = parse(parser, argv)
        config = load_config_from_cli([word for pair in args.context for word in ("-c", pair)])
    except UsageExit as usage:
        return usage.code
    except ConfigError as error:
        print(f"make nccl-test: invalid configuration\n{error}", file=sys.stderr)
        return EXIT_USAGE
    return run_on_cluster(
        args.kubeconfig, lambda kubectl: run(kubectl, config, args.run_id, args.timeout)
    )


if __name__ == "__main__":
    sys.exit(main())
