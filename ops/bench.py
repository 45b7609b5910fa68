"""`make bench`: load-test the deployed model from inside the cluster with `vllm bench serve`.

A Job with the deployed vLLM image asks the leader Service for random prompts (input 1024,
output 256 tokens) at concurrency 1, 8 and 32, keeps each result JSON on FSx beside the
models, copies it to ./bench-results/<run>/ and prints requests/s, output tokens/s, TTFT and
inter-token latency p50/p99.

    python -m ops.bench [--kubeconfig FILE] [--concurrency 1 8 32] [--input-len 1024] ...
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import manifests
from ops.cli import UsageExit, parse
from ops.kube import (
    GPU_NODE_SELECTOR,
    GPU_TOLERATIONS,
    LWS_NAME,
    NAMESPACE,
    Kubectl,
    KubectlError,
    run_on_cluster,
)
from ops.report import Check, failed, passed

# Names the workload uses (constructs/vllm_service.py, constructs/model_staging.py).
LEADER_SERVICE = f"{LWS_NAME}-leader"
PORT = 8000
API_KEY_SECRET = f"{LWS_NAME}-api-key"
API_KEY_KEY = "api-key"
FSX_MOUNT_PATH = "/fsx"
RESULT_MARKER = "BENCH-RESULT "


@dataclass(frozen=True)
class Served:
    """What the deployed LeaderWorkerSet runs: its image, model directory and served name."""

    image: str
    model_dir: str
    served_model_name: str
    replicas: int
    claim_name: str


def served_from_lws(lws: dict[str, Any]) -> Served:
    container = lws["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]
    args = container["args"]
    volumes = lws["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["volumes"]
    return Served(
        image=container["image"],
        # `vllm serve <model dir> ...`: the first argument (constructs/vllm_service.serve_args).
        model_dir=args[0],
        served_model_name=args[args.index("--served-model-name") + 1],
        replicas=int(lws["spec"].get("replicas", 1)),
        # Named after the file system's generation (constructs/model_staging.py).
        claim_name=next(
            volume["persistentVolumeClaim"]["claimName"]
            for volume in volumes
            if "persistentVolumeClaim" in volume
        ),
    )


def render_job(
    served: Served,
    *,
    run_id: str,
    concurrencies: tuple[int, ...] = (1, 8, 32),
    input_len: int = 1024,
    output_len: int = 256,
    prompts_per_concurrency: int = 10,
    deadline_seconds: int = 3 * 3600,
) -> dict[str, Any]:
    model_name = Path(served.model_dir).name
    (job,) = manifests.render(
        "bench-job",
        name=f"vllm-bench-{run_id}",
        namespace=NAMESPACE,
        deadline_seconds=deadline_seconds,
        node_selector=GPU_NODE_SELECTOR,
        tolerations=GPU_TOLERATIONS,
        image=served.image,
        script=manifests.read_text("bench.sh"),
        base_url=f"http://{LEADER_SERVICE}.{NAMESPACE}.svc.cluster.local:{PORT}",
        model=served.served_model_name,
        tokenizer=served.model_dir,
        # Environment values are strings (the Kubernetes schema refuses numbers).
        input_len=str(input_len),
        output_len=str(output_len),
        concurrencies=" ".join(str(c) for c in concurrencies),
        prompts_per_concurrency=str(prompts_per_concurrency),
        result_dir=f"{FSX_MOUNT_PATH}/bench/{model_name}/{run_id}",
        api_key_secret=API_KEY_SECRET,
        api_key_key=API_KEY_KEY,
        mount_path=FSX_MOUNT_PATH,
        claim_name=served.claim_name,
    )
    return job


def results_from_log(log: str) -> dict[str, dict[str, Any]]:
    """File name -> result JSON, from the marked lines the Job prints."""
    results = {}
    for line in log.splitlines():
        if line.startswith(RESULT_MARKER):
            name, _, payload = line.removeprefix(RESULT_MARKER).partition(" ")
            results[name] = json.loads(payload)
    return results


def summary(result: dict[str, Any]) -> Check:
    """One line per run, from the keys vllm/benchmarks/serve.py writes."""
    concurrency = result.get("max_concurrency")
    subject = f"concurrency {concurrency}"
    completed, failures = result.get("completed", 0), result.get("failed", 0)
    if not completed:
        return failed(subject, f"no request completed ({failures} failed)", "kubectl logs job/...")
    line = (
        f"{result['request_throughput']:.2f} req/s, "
        f"{result['output_throughput']:.1f} output tok/s, "
        f"TTFT p50 {result['p50_ttft_ms']:.0f} ms p99 {result['p99_ttft_ms']:.0f} ms, "
        f"ITL p50 {result['p50_itl_ms']:.1f} ms p99 {result['p99_itl_ms']:.1f} ms "
        f"({completed} requests)"
    )
    if failures:
        return failed(subject, f"{line}; {failures} requests failed")
    return passed(subject, line)


def run(kubectl: Kubectl, args: argparse.Namespace) -> Iterator[Check]:
    try:
        served = served_from_lws(kubectl.get_json("leaderworkerset", LWS_NAME))
    except KubectlError as error:
        yield failed("vLLM LeaderWorkerSet", str(error))
        return
    if served.replicas == 0:
        yield failed("vLLM LeaderWorkerSet", "0 replicas (paused)", "make resume")
        return
    job = render_job(
        served,
        run_id=args.run_id,
        concurrencies=tuple(args.concurrency),
        input_len=args.input_len,
        output_len=args.output_len,
        prompts_per_concurrency=args.prompts_per_concurrency,
        deadline_seconds=args.timeout,
    )
    name = job["metadata"]["name"]
    try:
        kubectl.apply([job])
        yield passed(f"Job {name}", f"started against {LEADER_SERVICE}:{PORT}")
        problem = kubectl.wait_for_job(name, args.timeout)
        log = kubectl.run("logs", f"job/{name}", "--container", "bench")
    except KubectlError as error:
        yield failed(f"Job {name}", str(error))
        return
    results = results_from_log(log)
    if problem or not results:
        yield failed(
            f"Job {name}", problem or "printed no result", f"kubectl logs -n vllm job/{name}"
        )
        return
    output_dir = Path(args.output_dir) / args.run_id
    output_dir.mkdir(parents=True, exist_ok=True)
    for file_name, result in sorted(results.items(), key=lambda item: item[1]["max_concurrency"]):
        (output_dir / file_name).write_text(json.dumps(result, indent=2) + "\n")
        yield summary(result)
    result_dir = job["spec"]["template"]["spec"]["containers"][0]["env"]
    on_fsx = next(item["value"] for item in result_dir if item["name"] == "RESULT_DIR")
    yield passed("results", f"{output_dir}/ and on FSx {on_fsx}/")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", help="use this kubeconfig instead of the stack outputs")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--input-len", type=int, default=1024)
    parser.add_argument("--output-len", type=int, default=256)
    parser.add_argument("--prompts-per-concurrency", type=int, default=10)
    parser.add_argument("--timeout", type=int, default=3 * 3600, help="seconds")
    parser.add_argument("--output-dir", default="bench-results")
    parser.add_argument("--run-id", default=datetime.now(UTC).strftime("%Y%m%d-%H%M%S"))
    try:
        args = parse(parser, argv)
    except UsageExit as usage:
        return usage.code
    return run_on_cluster(args.kubeconfig, lambda kubectl: run(kubectl, args))


if __name__ == "__main__":
    sys.exit(main())
