"""`make plan`: what a configuration will run, whether it fits, what it costs, how long it takes.

Run as `python -m config.plan_report -c gpuNodeCount=1 ...`; it reads cdk.json and the same
`-c key=value` overrides as `cdk synth`, and never touches AWS.
"""

from __future__ import annotations

import sys
import textwrap
from datetime import date
from typing import Any

from config.catalog import GIB
from config.errors import ConfigError
from config.prices import CHECKED, HOURS_PER_MONTH, REGION, hourly_cost
from config.settings import load_config_from_cli

# Deploy durations in minutes from the seed's README (DESIGN section 9).
CLUSTER_MIN = (15, 20)
GPU_NODE_GROUP_MIN = (10, 15)
FSX_MIN = (5, 10)
IMAGE_PULL_MIN = (5, 15)
MODEL_DOWNLOAD_AND_LOAD_MIN = (10, 15)
ALB_MIN = (2, 5)
SEED_END_TO_END_MIN = (60, 90)

LABEL_WIDTH = 22
ITEM_WIDTH = 58


def _side_by_side(*ranges: tuple[int, int]) -> tuple[int, int]:
    """Steps that run at the same time finish with the slowest one."""
    return max(r[0] for r in ranges), max(r[1] for r in ranges)


def _one_after_another(*ranges: tuple[int, int]) -> tuple[int, int]:
    return sum(r[0] for r in ranges), sum(r[1] for r in ranges)


def _span(minutes: tuple[int, int]) -> str:
    return f"{minutes[0]}-{minutes[1]}"


def critical_path() -> list[tuple[str, tuple[int, int]]]:
    """The deploy's critical path with GpuNodeGroupStack and FsxStack built side by side.

    Assumes the workload's three slow steps overlap once WorkloadStack is applied: GPU nodes
    pull the vLLM image while the staging Job writes the weights to FSx and the load balancer
    controller provisions the ALB; the seed's "model download and load" covers the vLLM load
    that follows the download. The endpoint is ready when the slowest of them is done.
    """
    return [
        ("ClusterStack", CLUSTER_MIN),
        (
            f"GpuNodeGroupStack {_span(GPU_NODE_GROUP_MIN)} || FsxStack {_span(FSX_MIN)}",
            _side_by_side(GPU_NODE_GROUP_MIN, FSX_MIN),
        ),
        (
            (
                f"image pull {_span(IMAGE_PULL_MIN)} || model download+load "
                f"{_span(MODEL_DOWNLOAD_AND_LOAD_MIN)} || ALB {_span(ALB_MIN)}"
            ),
            _side_by_side(IMAGE_PULL_MIN, MODEL_DOWNLOAD_AND_LOAD_MIN, ALB_MIN),
        ),
    ]


def _row(label: str, value: str) -> str:
    return f"  {label:<{LABEL_WIDTH}}{value}"


def _gib(value: int) -> str:
    return f"{value / GIB:6.2f} GiB"


def _layout(config: Any) -> list[str]:
    plan, instance = config.plan, config.instance
    nodes_total = config.gpu_node_count * config.replicas
    return [
        f"Plan for {config.model_id}",
        _row(
            "instance",
            f"{instance.name}: {instance.gpus} x {instance.gpu_model} "
            f"({instance.gpu_memory_gib} GiB each), {instance.efa_interfaces} EFA interfaces",
        ),
        _row(
            "parallelism",
            f"TP {plan.tensor_parallel_size} x PP {plan.pipeline_parallel_size} "
            f"= {plan.gpus} GPUs per replica",
        ),
        _row(
            "nodes",
            f"{config.gpu_node_count} per replica x {config.replicas} replica(s) = "
            f"{nodes_total} GPU nodes, {nodes_total * instance.gpus} GPUs",
        ),
        _row("executor", config.distributed_executor),
    ]


def _memory(config: Any) -> list[str]:
    plan, model = config.plan, config.model
    util = config.gpu_memory_utilization
    lines = [
        "Memory per GPU",
        _row(
            "usable",
            f"{_gib(plan.usable_bytes_per_gpu)}  "
            f"({config.instance.gpu_memory_gib} GiB x gpuMemoryUtilization {util:.2f})",
        ),
    ]
    if not plan.sizing_checked:
        return [*lines, _row("weights, KV cache", "not checked (model architecture unknown)")]
    return [
        *lines,
        _row(
            "weights",
            f"{_gib(plan.weight_bytes_per_gpu)}  "
            f"({model.weight_bytes / GIB:.2f} GiB / {plan.gpus} GPUs)",
        ),
        _row("activation reserve", f"{_gib(plan.activation_reserve_bytes)}  (fixed, per GPU)"),
        _row("KV cache", f"{_gib(plan.kv_cache_bytes_per_gpu)}  (what is left)"),
    ]


def _kv(config: Any) -> list[str]:
    plan, model = config.plan, config.model
    if not plan.sizing_checked:
        chosen = f"{plan.max_model_len:,}" if plan.max_model_len else "vLLM's default number of"
        return ["KV cache", _row("max context", f"{chosen} tokens (not checked)")]
    full = plan.concurrent_full_sequences
    if plan.max_model_len == model.max_context:
        limit = "the model's maximum"
    elif plan.max_model_len == plan.max_fitting_len:
        limit = f"the most the KV cache holds; model maximum {model.max_context:,}"
    else:
        limit = f"as set; up to {plan.max_fitting_len:,} fits"
    return [
        "KV cache",
        _row(
            "bytes per token",
            f"{plan.kv_bytes_per_token:,} whole model (2 x {model.layers} layers x "
            f"{model.kv_heads} KV heads x {model.head_dim} x {model.dtype_bytes} bytes)",
        ),
        _row(
            "",
            f"{plan.kv_bytes_per_token_per_gpu:,} per GPU ({plan.layers_per_stage} layers, "
            f"{plan.kv_heads_per_gpu} KV head(s))",
        ),
        _row("capacity", f"{plan.kv_capacity_tokens:,} tokens per replica"),
        _row("max context", f"{plan.max_model_len:,} tokens = maxModelLen ({limit})"),
        _row("full-length sequences", f"{full:,} at once"),
    ]


def _load(config: Any) -> list[str]:
    plan = config.plan
    tier = (
        f", {config.fsx_throughput_per_tib} MB/s per TiB"
        if config.fsx_deployment_type == "PERSISTENT_2"
        else ""
    )
    lines = [
        "Model load from FSx for Lustre",
        _row(
            "throughput",
            f"{plan.fsx_throughput_mb_s:,.0f} MB/s baseline "
            f"({config.fsx_deployment_type}, {config.fsx_storage_gib} GiB{tier})",
        ),
    ]
    if plan.load_seconds is None:
        return [*lines, _row("load time", "unknown (weight size not known)")]
    return [
        *lines,
        _row(
            "load time",
            f"~{plan.load_seconds / 60:.1f} min to read "
            f"{config.model.weight_bytes / 1e9:.1f} GB once at baseline (bursts are faster)",
        ),
    ]


def _cost(config: Any, today: date | None) -> list[str]:
    lines = hourly_cost(config, today)
    total = sum(line.usd_per_hour for line in lines)
    out = [f"Hourly cost, on-demand {REGION} USD (prices of {CHECKED}; * unverified estimate)"]
    for line in lines:
        mark = "" if line.confirmed else " *"
        out.append(f"  {line.item:<{ITEM_WIDTH}}{line.usd_per_hour:9.3f}{mark}")
    out.append(
        f"  {'total':<{ITEM_WIDTH}}{total:9.3f} per hour "
        f"(~{total * HOURS_PER_MONTH:,.0f} per month)"
    )
    # The GPU nodes are the first line; paused, everything else keeps running.
    paused = total - lines[0].usd_per_hour
    state = "paused now" if config.paused else "make pause"
    out.append(
        f"  {f'while paused ({state}: GPU nodes at 0)':<{ITEM_WIDTH}}{paused:9.3f} per hour "
        f"(~{paused * HOURS_PER_MONTH:,.0f} per month)"
    )
    return out


def _deploy() -> list[str]:
    steps = critical_path()
    total = _one_after_another(*(minutes for _, minutes in steps))
    out = ["Deploy critical path, minutes (cdk deploy --all --concurrency 4)"]
    out += [f"  {label:<{ITEM_WIDTH}}{_span(minutes):>9}" for label, minutes in steps]
    out.append(
        f"  {'total':<{ITEM_WIDTH}}{_span(total):>9}  "
        f"(seed: {_span(SEED_END_TO_END_MIN)}, sequential)"
    )
    out.append("  assumes image pull, model download+load and ALB overlap once WorkloadStack runs")
    return out


def render(config: Any, today: date | None = None) -> str:
    """The whole report as text: plan, memory, KV, load time, cost, deploy time, notes."""
    sections = [
        _layout(config),
        _memory(config),
        _kv(config),
        _load(config),
        _cost(config, today),
        _deploy(),
    ]
    if config.plan.notes:
        sections.append(
            ["Notes"]
            + [
                textwrap.fill(note, 98, initial_indent="  - ", subsequent_indent="    ")
                for note in config.plan.notes
            ]
        )
    return "\n\n".join("\n".join(section) for section in sections) + "\n"


def main(argv: list[str] | None = None) -> int:
    try:
        config = load_config_from_cli(sys.argv[1:] if argv is None else argv)
    except ConfigError as error:
        print(f"make plan: invalid configuration\n{error}", file=sys.stderr)
        return 2
    print(render(config), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
