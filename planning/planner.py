"""Capacity planner: does the model fit on the chosen GPUs, and how long is the context?

Pure arithmetic, no AWS and no network, so `cdk synth` and `make plan` can refuse a plan that
would only fail on the GPU nodes, an hour and tens of dollars later.

The memory model follows how vLLM places a model:
- weights are split evenly over TP x PP GPUs (tensor slices within a stage, layers across
  stages);
- each GPU holds the KV cache of its own layers (layers / PP, rounded up) and of its own KV
  heads (KV heads / TP; when TP exceeds the KV heads vLLM replicates them, so at least one);
- vLLM may use `gpuMemoryUtilization` x GPU memory in total; what is left after the weights
  and the activation reserve below becomes paged KV cache in blocks of 16 tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from config.errors import ConfigError, Problem
from planning.catalog import GIB, INSTANCES, InstanceSpec, ModelSpec

# Per-GPU memory vLLM needs besides weights and KV cache, inside the utilization budget: the
# CUDA context and non-torch allocations (about 0.5 GiB), NCCL buffers, the activation peak
# of its profiling pass (one chunked-prefill batch, a few hundred MiB at hidden size 5120)
# and CUDA-graph capture (0.5-1 GiB). 2 GiB covers that sum with some room; the same number
# for every model errs large for small models and keeps KV capacity estimates conservative.
ACTIVATION_RESERVE_BYTES = 2 * GIB

# vLLM's default KV block size: capacity is a whole number of blocks.
KV_BLOCK_TOKENS = 16

# Highest gpuMemoryUtilization the configuration accepts; used to tell "raise the
# utilization" apart from "choose bigger GPUs".
MAX_GPU_MEMORY_UTILIZATION = 0.95

# Largest gpuNodeCount searched when suggesting how many nodes would fit.
MAX_NODES = 64

# Below this many tokens of context an endpoint is barely usable; said, not refused.
SHORT_CONTEXT_TOKENS = 4096

# FSx for Lustre baseline read throughput per TiB of storage (FSx Lustre user guide,
# "Performance characteristics of SSD and HDD storage classes"; bursts go higher).
SCRATCH_2_MB_S_PER_TIB = 200

MODEL_ARCHITECTURE_KEYS_TEXT = (
    "modelWeightBytes, modelLayers, modelAttentionHeads, modelKvHeads, modelHeadDim, "
    "modelMaxContext"
)


@dataclass(frozen=True)
class Plan:
    """The chosen parallel layout and what it means for memory on every GPU.

    Sizing fields are None when the model's architecture is unknown (sizing_checked False).
    Bytes are bytes; throughput is decimal MB/s as FSx states it.
    """

    tensor_parallel_size: int
    pipeline_parallel_size: int
    max_model_len: int | None
    sizing_checked: bool
    notes: tuple[str, ...]
    usable_bytes_per_gpu: int
    activation_reserve_bytes: int
    fsx_throughput_mb_s: float
    weight_bytes_per_gpu: int | None = None
    kv_bytes_per_token: int | None = None
    kv_heads_per_gpu: int | None = None
    layers_per_stage: int | None = None
    kv_bytes_per_token_per_gpu: int | None = None
    kv_cache_bytes_per_gpu: int | None = None
    kv_capacity_tokens: int | None = None
    max_fitting_len: int | None = None

    @property
    def gpus(self) -> int:
        """GPUs of one model copy (one LeaderWorkerSet group)."""
        return self.tensor_parallel_size * self.pipeline_parallel_size

    @property
    def concurrent_full_sequences(self) -> int | None:
        """How many sequences of max_model_len tokens the KV cache holds at once."""
        if self.kv_capacity_tokens is None or not self.max_model_len:
            return None
        return self.kv_capacity_tokens // self.max_model_len


def fsx_throughput_mb_s(
    deployment_type: str, storage_gib: int, throughput_per_tib: int | None
) -> float:
    """Aggregate baseline throughput of the file system in MB/s (TiB = storage_gib / 1024)."""
    tib = storage_gib / 1024
    if deployment_type == "SCRATCH_2":
        return SCRATCH_2_MB_S_PER_TIB * tib
    if deployment_type == "PERSISTENT_2":
        if throughput_per_tib is None:
            raise ValueError("PERSISTENT_2 needs a throughput per TiB (125, 250, 500 or 1000)")
        return throughput_per_tib * tib
    raise ValueError(f"unknown FSx deployment type {deployment_type!r}")


def kv_bytes_per_token(model: ModelSpec) -> int:
    """K and V for every layer and KV head of the whole model, for one token."""
    return 2 * model.layers * model.kv_heads * model.head_dim * model.dtype_bytes


def gib(value: float) -> str:
    return f"{value / GIB:.1f} GiB"


def describe_instance(instance: InstanceSpec) -> str:
    return f"{instance.name} ({instance.gpus} x {instance.gpu_model})"


def _divisors(number: int) -> list[int]:
    return [d for d in range(1, number + 1) if number % d == 0]


def _kv_heads_split_ok(model: ModelSpec, tp: int) -> bool:
    # vLLM shards KV heads when TP divides them and replicates them when TP is a multiple.
    return model.kv_heads % tp == 0 or tp % model.kv_heads == 0


def _tp_ok_for_model(model: ModelSpec | None, tp: int) -> bool:
    if model is None:
        return True
    return model.attention_heads % tp == 0 and _kv_heads_split_ok(model, tp)


def _allowed_list(values: list[int]) -> str:
    return ", ".join(str(v) for v in values) if values else "none for this model and GPU count"


def _check_layout(
    model: ModelSpec | None,
    instance: InstanceSpec,
    nodes: int,
    tp: int | None,
    pp: int | None,
) -> tuple[int, int, list[Problem]]:
    """Derive the missing sizes and list every reason the TP/PP split cannot work."""
    total = instance.gpus * nodes
    gpu_text = f"{total} GPU{'' if total == 1 else 's'} of {nodes} x {instance.name}"
    problems: list[Problem] = []

    if tp is None and pp is None:
        tp, pp = instance.gpus, nodes
    elif pp is None:
        pp = total // tp if tp >= 1 and total % tp == 0 else None
    elif tp is None:
        tp = total // pp if pp >= 1 and total % pp == 0 else None
    tp_values = [d for d in _divisors(total) if _tp_ok_for_model(model, d)]

    if tp is None:
        problems.append(
            Problem(
                "pipelineParallelSize",
                pp,
                f"does not divide the {gpu_text}; TP x PP must use every GPU",
                _allowed_list(sorted(total // d for d in tp_values)),
            )
        )
        return 0, 0, problems

    reasons = []
    if tp < 1:
        reasons.append("must be at least 1")
    elif pp is None:
        reasons.append(f"does not divide the {gpu_text}; TP x PP must use every GPU")
    elif tp * pp != total:
        reasons.append(f"{tp} x pipelineParallelSize {pp} = {tp * pp}, but there are {gpu_text}")
    if model is not None and tp >= 1:
        if model.attention_heads % tp:
            reasons.append(
                f"does not divide the {model.attention_heads} attention heads of {model.model_id}"
            )
        if not _kv_heads_split_ok(model, tp):
            reasons.append(f"neither divides nor is a multiple of the {model.kv_heads} KV heads")
    if reasons:
        allowed = tp_values if pp is None else [d for d in tp_values if d * pp == total]
        problems.append(
            Problem("tensorParallelSize", tp, "; ".join(reasons), _allowed_list(allowed))
        )

    if pp is not None and pp < 1:
        problems.append(Problem("pipelineParallelSize", pp, "must be at least 1", "1 or more"))
    elif pp is not None and model is not None and pp > model.layers:
        problems.append(
            Problem(
                "pipelineParallelSize",
                pp,
                f"more pipeline stages than the {model.layers} layers of {model.model_id}",
                f"1 - {model.layers}",
            )
        )
    return tp, pp or 0, problems


def _kv_capacity_tokens(kv_cache_bytes: int, per_token: int) -> int:
    if kv_cache_bytes <= 0:
        return 0
    return kv_cache_bytes // (per_token * KV_BLOCK_TOKENS) * KV_BLOCK_TOKENS


def _sizing(
    model: ModelSpec, instance: InstanceSpec, tp: int, pp: int, utilization: float
) -> dict[str, int]:
    usable = int(instance.gpu_memory_bytes * utilization)
    weights = -(-model.weight_bytes // (tp * pp))  # integer ceiling: no float rounding
    kv_heads = max(1, model.kv_heads // tp)
    layers = math.ceil(model.layers / pp)
    per_token = 2 * layers * kv_heads * model.head_dim * model.dtype_bytes
    kv_cache = usable - weights - ACTIVATION_RESERVE_BYTES
    capacity = _kv_capacity_tokens(kv_cache, per_token)
    return {
        "usable_bytes_per_gpu": usable,
        "weight_bytes_per_gpu": weights,
        "kv_heads_per_gpu": kv_heads,
        "layers_per_stage": layers,
        "kv_bytes_per_token_per_gpu": per_token,
        "kv_cache_bytes_per_gpu": kv_cache,
        "kv_capacity_tokens": capacity,
    }


def _fits(model: ModelSpec, instance: InstanceSpec, nodes: int, utilization: float) -> bool:
    """Whether the derived layout on this instance leaves room for at least one KV block."""
    tp, pp = instance.gpus, nodes
    if not _tp_ok_for_model(model, tp) or pp > model.layers:
        return False
    return _sizing(model, instance, tp, pp, utilization)["kv_capacity_tokens"] > 0


def _memory_problem(
    model: ModelSpec,
    instance: InstanceSpec,
    nodes: int,
    tp: int,
    pp: int,
    utilization: float,
    sizes: dict[str, int],
) -> Problem:
    usable, weights = sizes["usable_bytes_per_gpu"], sizes["weight_bytes_per_gpu"]
    where = f"at gpuMemoryUtilization={utilization:g} on {describe_instance(instance)}"
    if weights > usable:
        message = f"weights need {gib(weights)} per GPU but only {gib(usable)} is usable {where}"
    else:
        message = (
            f"weights {gib(weights)} + activation reserve {gib(ACTIVATION_RESERVE_BYTES)} per GPU "
            f"leave no room for the KV cache in the {gib(usable)} usable {where}"
        )
    message += f" (TP {tp} x PP {pp})"
    best = _sizing(model, instance, tp, pp, MAX_GPU_MEMORY_UTILIZATION)
    if best["kv_capacity_tokens"] > 0:
        # Smallest utilization that leaves one KV block, rounded up to the next hundredth.
        needed = (
            weights
            + ACTIVATION_RESERVE_BYTES
            + best["kv_bytes_per_token_per_gpu"] * KV_BLOCK_TOKENS
        )
        lowest = math.ceil(needed / instance.gpu_memory_bytes * 100) / 100
        return Problem(
            "gpuMemoryUtilization",
            utilization,
            message,
            f"{lowest:.2f} - {MAX_GPU_MEMORY_UTILIZATION}",
        )
    fitting = [name for name, spec in INSTANCES.items() if _fits(model, spec, nodes, utilization)]
    allowed = ", ".join(fitting) + f" at gpuNodeCount={nodes}" if fitting else ""
    nodes_needed = next(
        (n for n in range(nodes + 1, MAX_NODES + 1) if _fits(model, instance, n, utilization)),
        None,
    )
    if nodes_needed is not None:
        alternative = f"{instance.name} with gpuNodeCount={nodes_needed} or more"
        allowed = f"{allowed}; or {alternative}" if allowed else alternative
    return Problem("gpuInstanceType", instance.name, message, allowed or "none in the catalog")


def plan_capacity(
    *,
    model: ModelSpec | None,
    instance: InstanceSpec,
    nodes: int,
    tensor_parallel_size: int | None,
    pipeline_parallel_size: int | None,
    gpu_memory_utilization: float,
    max_model_len: int | None,
    fsx_throughput_mb_s: float,
) -> Plan:
    """Choose TP/PP and maxModelLen, or raise ConfigError listing every reason it cannot fit."""
    tp, pp, problems = _check_layout(
        model, instance, nodes, tensor_parallel_size, pipeline_parallel_size
    )
    usable = int(instance.gpu_memory_bytes * gpu_memory_utilization)
    notes: list[str] = []
    if tp > instance.gpus:
        notes.append(
            f"tensor parallelism ({tp}) spans nodes: every layer's all-reduce crosses the "
            "network; pipeline parallelism across nodes is usually faster"
        )
    if model is not None and max_model_len is not None and max_model_len > model.max_context:
        problems.append(
            Problem(
                "maxModelLen",
                max_model_len,
                f"above the {model.max_context} tokens of context {model.model_id} supports",
                f"1 - {model.max_context}",
            )
        )
    if problems and not tp:
        raise ConfigError(problems)

    if model is None:
        if problems:
            raise ConfigError(problems)
        notes.insert(
            0,
            "sizing not checked: the model is not in the catalog and its architecture keys "
            f"({MODEL_ARCHITECTURE_KEYS_TEXT}) are not set, so nothing here knows whether its "
            "weights and KV cache fit; vLLM will find out when it starts",
        )
        return Plan(
            tensor_parallel_size=tp,
            pipeline_parallel_size=pp,
            max_model_len=max_model_len,
            sizing_checked=False,
            notes=tuple(notes),
            usable_bytes_per_gpu=usable,
            activation_reserve_bytes=ACTIVATION_RESERVE_BYTES,
            fsx_throughput_mb_s=fsx_throughput_mb_s,
        )

    if any(p.key in ("tensorParallelSize", "pipelineParallelSize") for p in problems):
        # Without a valid split the per-GPU numbers would be meaningless.
        raise ConfigError(problems)

    sizes = _sizing(model, instance, tp, pp, gpu_memory_utilization)
    capacity = sizes["kv_capacity_tokens"]
    max_fitting = min(capacity, model.max_context)
    if capacity <= 0:
        problems.append(
            _memory_problem(model, instance, nodes, tp, pp, gpu_memory_utilization, sizes)
        )
    elif max_model_len is not None and max_model_len > capacity:
        per_token = sizes["kv_bytes_per_token_per_gpu"]
        problems.append(
            Problem(
                "maxModelLen",
                max_model_len,
                f"one {max_model_len}-token sequence needs {gib(max_model_len * per_token)} of "
                f"KV cache per GPU ({per_token} bytes per token) but only "
                f"{gib(sizes['kv_cache_bytes_per_gpu'])} is left after weights "
                f"{gib(sizes['weight_bytes_per_gpu'])} and activation reserve "
                f"{gib(ACTIVATION_RESERVE_BYTES)} of {gib(sizes['usable_bytes_per_gpu'])} usable "
                f"at gpuMemoryUtilization={gpu_memory_utilization:g} on "
                f"{describe_instance(instance)} (TP {tp} x PP {pp}); {capacity} tokens fit",
                f"1 - {max_fitting}",
            )
        )
    if problems:
        raise ConfigError(problems)

    chosen = max_model_len if max_model_len is not None else max_fitting
    if chosen < SHORT_CONTEXT_TOKENS:
        notes.append(
            f"only {chosen} tokens of context fit; prompts and answers together must stay "
            "below that"
        )
    return Plan(
        tensor_parallel_size=tp,
        pipeline_parallel_size=pp,
        max_model_len=chosen,
        sizing_checked=True,
        notes=tuple(notes),
        activation_reserve_bytes=ACTIVATION_RESERVE_BYTES,
        fsx_throughput_mb_s=fsx_throughput_mb_s,
        kv_bytes_per_token=kv_bytes_per_token(model),
        max_fitting_len=max_fitting,
        **sizes,
    )
