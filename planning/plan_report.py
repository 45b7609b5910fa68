"""`make plan`: what a configuration will run, whether it fits, what it costs, how long it takes.

Run as `python -m planning.plan_report -c gpuNodeCount=1 ...`; it reads cdk.json and the same
`-c key=value` overrides as `cdk synth`, and never touches AWS.
"""

from __future__ import annotations

import sys
import textwrap
from datetime import date
from typing import Any

from config.errors import ConfigError
from config.settings import load_config_from_cli
from planning.catalog import GIB
from planning.deploy_path import (
    COLD_LOAD_TARGET_MIN,
    DeployPath,
    Span,
    Step,
    deploy_path,
    recommend,
)
from planning.prices import (
    CHECKED,
    HOURS_PER_MONTH,
    REGION,
    hourly_cost,
    observability_monthly_cost,
)

LABEL_WIDTH = 22
ITEM_WIDTH = 58
# The seed's blog: 60-90 minutes end to end, every step one after another (DESIGN section 9).
SEED_END_TO_END = "60-90"


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


def _load(config: Any, path: DeployPath) -> list[str]:
    tier = (
        f", {config.fsx_throughput_per_tib} MB/s per TiB"
        if config.fsx_deployment_type == "PERSISTENT_2"
        else ""
    )
    lines = [
        "Model load from FSx for Lustre",
        _row(
            "throughput",
            f"{config.plan.fsx_throughput_mb_s:,.0f} MB/s baseline, "
            f"{path.fsx_read_mb_s[0]:,.0f} MB/s burst "
            f"({config.fsx_deployment_type}, {config.fsx_storage_gib} GiB{tier})",
        ),
    ]
    if path.cold_load is None:
        return [*lines, _row("load time", "unknown (weight size not known)")]
    bound = "node network" if path.load_bound_by_network else "file system"
    return [
        *lines,
        _row(
            "load time",
            f"{path.cold_load.text()} min to read {config.model.weight_bytes / 1e9:.1f} GB "
            f"per replica, x {config.replicas} replica(s) at once (bound: {bound})",
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


def _observability(config: Any) -> list[str]:
    lines = observability_monthly_cost(config)
    if not lines:
        return ["Observability: off (observability=false), nothing added"]
    out = [f"Observability, USD per month (estimate; * unverified price) {REGION}"]
    for line in lines:
        mark = "" if line.confirmed else " *"
        out.append(f"  {line.item:<{ITEM_WIDTH}}{line.usd_per_month:9.2f}{mark}")
    total = sum(line.usd_per_month for line in lines)
    out.append(f"  {'total':<{ITEM_WIDTH}}{total:9.2f} per month, plus log ingestion by traffic")
    return out


def _steps(title: str, steps: tuple[Step, ...], total: Span, note: str) -> list[str]:
    out = [title]
    for step in steps:
        label = textwrap.shorten(step.label, ITEM_WIDTH + 40, placeholder="...")
        if len(label) > ITEM_WIDTH:
            out.append(f"  {label}")
            label = ""
        out.append(f"  {label:<{ITEM_WIDTH}}{step.span.text():>11}")
    out.append(f"  {'total':<{ITEM_WIDTH}}{total.text():>11}  {note}".rstrip())
    return out


def _recommendation(config: Any) -> list[str]:
    found = recommend(config)
    if found is None:
        return [
            f"Cold load target < {COLD_LOAD_TARGET_MIN:g} min: not checked (weight size unknown)"
        ]
    now = found.current_load.text()
    head = f"Cold load target < {COLD_LOAD_TARGET_MIN:g} min at baseline: "
    if found.option is None:
        return [head + f"not reachable with any FSx option ({now} min now; node network bounds it)"]
    mark = "" if found.confirmed else " (* unverified price)"
    extra = found.extra_usd_per_hour
    cost = f"{extra:+.2f} USD/hour, {extra * HOURS_PER_MONTH:+,.0f} USD/month vs now{mark}"
    if found.met_now and extra >= 0:
        return [head + f"met ({now} min); no cheaper file system meets it"]
    verdict = f"met ({now} min)" if found.met_now else f"missed ({now} min)"
    return [
        head + verdict,
        f"  cheapest that meets it: {found.option.settings}",
        f"  loads in {found.option_load.text()} min; {cost}",
    ]


def _deploy(config: Any, path: DeployPath) -> list[str]:
    return [
        *_steps(
            "Deploy critical path to first token, minutes (cdk deploy --all --concurrency 4)",
            path.cold,
            path.cold_total,
            f"(seed: {SEED_END_TO_END}, sequential)",
        ),
        "",
        *_steps(
            "Restart path (group recreated: no pull, no download, warm compile cache), minutes",
            path.restart,
            path.restart_total,
            "",
        ),
        "",
        *_recommendation(config),
    ]


def render(config: Any, today: date | None = None) -> str:
    """The whole report as text: plan, memory, KV, load time, cost, deploy path, notes."""
    path = deploy_path(config)
    sections = [
        _layout(config),
        _memory(config),
        _kv(config),
        _load(config, path),
        _cost(config, today),
        _observability(config),
        _deploy(config, path),
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
