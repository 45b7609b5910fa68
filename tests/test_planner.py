"""Capacity planner: exact arithmetic for the default model, and every refusal with its numbers."""

from __future__ import annotations

import pytest

from config.errors import ConfigError
from planning.catalog import GIB, INSTANCES, MODELS, ModelSpec
from planning.planner import (
    ACTIVATION_RESERVE_BYTES,
    Plan,
    fsx_throughput_mb_s,
    kv_bytes_per_token,
    plan_capacity,
)

DEFAULT_MODEL = MODELS["deepseek-ai/DeepSeek-R1-Distill-Qwen-32B"]
P4D = INSTANCES["p4d.24xlarge"]
G5 = INSTANCES["g5.xlarge"]
SCRATCH_1200_MB_S = 200 * 1200 / 1024

# A Llama-3.1-8B-shaped model: fits one A10G with room for only ~38k tokens of KV cache.
SMALL_MODEL = ModelSpec(
    model_id="example/eight-b",
    parameters=8_030_261_248,
    weight_bytes=16_060_522_496,
    layers=32,
    attention_heads=32,
    kv_heads=8,
    head_dim=128,
    max_context=131_072,
)


def plan(
    model: ModelSpec | None = DEFAULT_MODEL,
    instance=P4D,
    nodes: int = 2,
    tp: int | None = None,
    pp: int | None = None,
    utilization: float = 0.90,
    max_model_len: int | None = None,
) -> Plan:
    return plan_capacity(
        model=model,
        instance=instance,
        nodes=nodes,
        tensor_parallel_size=tp,
        pipeline_parallel_size=pp,
        gpu_memory_utilization=utilization,
        max_model_len=max_model_len,
        fsx_throughput_mb_s=SCRATCH_1200_MB_S,
    )


def problems_of(**kwargs) -> dict[str, object]:
    with pytest.raises(ConfigError) as caught:
        plan(**kwargs)
    return {problem.key: problem for problem in caught.value.problems}


# --- exact arithmetic for the default model on p4d.24xlarge ---------------------------------


def test_given_default_model_when_kv_bytes_per_token_computed_then_262144_in_bf16():
    # 2 (K and V) x 64 layers x 8 KV heads x 128 head dim x 2 bytes
    assert kv_bytes_per_token(DEFAULT_MODEL) == 2 * 64 * 8 * 128 * 2 == 262_144


def test_given_two_p4d_nodes_when_planned_then_tp8_pp2_and_exact_per_gpu_memory():
    result = plan()
    assert (result.tensor_parallel_size, result.pipeline_parallel_size) == (8, 2)
    assert result.gpus == 16
    assert result.kv_bytes_per_token == 262_144
    # 65,527,841,532 bytes over 16 GPUs, rounded up.
    assert result.weight_bytes_per_gpu == 4_095_490_096
    # 40 GiB x 0.90, in bytes.
    assert result.usable_bytes_per_gpu == int(40 * GIB * 0.9) == 38_654_705_664
    assert result.activation_reserve_bytes == ACTIVATION_RESERVE_BYTES == 2 * GIB
    assert result.kv_cache_bytes_per_gpu == 38_654_705_664 - 4_095_490_096 - 2 * GIB
    assert result.kv_cache_bytes_per_gpu == 32_411_731_920


def test_given_tp8_pp2_when_kv_divided_then_one_kv_head_and_32_layers_per_gpu():
    result = plan()
    assert result.kv_heads_per_gpu == 1  # 8 KV heads / TP 8
    assert result.layers_per_stage == 32  # 64 layers / PP 2
    assert result.kv_bytes_per_token_per_gpu == 2 * 32 * 1 * 128 * 2 == 16_384


def test_given_tp8_pp2_when_capacity_computed_then_whole_16_token_blocks_and_max_context():
    result = plan()
    # 32,411,731,920 bytes / (16,384 bytes x 16 tokens) = 123,640 whole blocks.
    assert result.kv_capacity_tokens == 123_640 * 16 == 1_978_240
    assert result.max_fitting_len == 131_072  # capped at the model's maximum context
    assert result.max_model_len == 131_072
    assert result.concurrent_full_sequences == 15
    assert result.sizing_checked is True
    assert result.notes == ()


# --- refusals ---------------------------------------------------------------------------------


def test_given_g5_xlarge_and_one_node_when_default_model_planned_then_rejected_with_numbers():
    problems = problems_of(instance=G5, nodes=1)
    assert set(problems) == {"gpuInstanceType"}
    problem = problems["gpuInstanceType"]
    assert problem.value == "g5.xlarge"
    assert "weights need 61.0 GiB per GPU but only 21.6 GiB is usable" in problem.message
    assert "gpuMemoryUtilization=0.9 on g5.xlarge (1 x A10G 24GB)" in problem.message
    assert "p4d.24xlarge" in problem.allowed
    # 65.5 GB over 4 A10Gs leaves room for the KV cache; 3 do not.
    assert "g5.xlarge with gpuNodeCount=4 or more" in problem.allowed


def test_given_tensor_parallel_size_3_when_planned_then_rejected_for_gpus_and_heads():
    problem = problems_of(tp=3)["tensorParallelSize"]
    assert problem.value == 3
    assert "does not divide the 16 GPUs of 2 x p4d.24xlarge" in problem.message
    assert "does not divide the 40 attention heads" in problem.message
    assert "8 KV heads" in problem.message
    assert problem.allowed == "1, 2, 4, 8"


def test_given_tp_times_pp_not_all_gpus_when_planned_then_rejected():
    problem = problems_of(tp=4, pp=2)["tensorParallelSize"]
    assert "4 x pipelineParallelSize 2 = 8, but there are 16 GPUs" in problem.message
    assert problem.allowed == "8"


def test_given_pp_that_does_not_divide_gpus_when_planned_then_rejected_with_choices():
    problem = problems_of(pp=3)["pipelineParallelSize"]
    assert "does not divide the 16 GPUs" in problem.message
    assert problem.allowed == "2, 4, 8, 16"  # PP values whose TP divides the heads


def test_given_more_stages_than_layers_when_planned_then_pipeline_size_rejected():
    one_layer = ModelSpec("example/one-layer", 10**9, 2 * 10**9, 1, 8, 8, 128, 4096)
    problem = problems_of(model=one_layer)["pipelineParallelSize"]
    assert problem.value == 2
    assert "more pipeline stages than the 1 layers" in problem.message


def test_given_max_model_len_above_what_fits_when_planned_then_rejected_with_numbers():
    problem = problems_of(model=SMALL_MODEL, instance=G5, nodes=1, max_model_len=131_072)[
        "maxModelLen"
    ]
    # 21.6 GiB usable - 15.0 GiB weights - 2.0 GiB reserve = 4.6 GiB at 131,072 bytes a token.
    assert "needs 16.0 GiB of KV cache per GPU (131072 bytes per token)" in problem.message
    assert "only 4.6 GiB is left after weights 15.0 GiB" in problem.message
    assert "38016 tokens fit" in problem.message
    assert problem.allowed == "1 - 38016"


def test_given_max_model_len_unset_when_kv_cache_is_short_then_largest_fitting_is_chosen():
    result = plan(model=SMALL_MODEL, instance=G5, nodes=1)
    assert result.max_fitting_len == result.kv_capacity_tokens == 38_016
    assert result.max_model_len == 38_016


def test_given_max_model_len_that_fits_when_planned_then_kept():
    assert plan(max_model_len=32_768).max_model_len == 32_768


def test_given_max_model_len_above_model_context_when_planned_then_rejected():
    problem = problems_of(max_model_len=200_000)["maxModelLen"]
    assert "above the 131072 tokens of context" in problem.message
    assert problem.allowed == "1 - 131072"


def test_given_weights_fit_only_at_higher_utilization_when_planned_then_utilization_named():
    problem = problems_of(model=SMALL_MODEL, instance=G5, nodes=1, utilization=0.7)[
        "gpuMemoryUtilization"
    ]
    assert "leave no room for the KV cache in the 16.8 GiB usable" in problem.message
    assert problem.allowed == "0.71 - 0.95"


def test_given_several_mistakes_when_planned_then_every_problem_is_listed():
    problems = problems_of(tp=3, max_model_len=200_000)
    assert set(problems) == {"tensorParallelSize", "maxModelLen"}


# --- derivation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nodes", "tp", "pp", "expected"),
    [
        (2, None, None, (8, 2)),  # GPUs per node x node count
        (1, None, None, (8, 1)),
        (2, 4, None, (4, 4)),  # PP fills the remaining GPUs
        (2, None, 4, (4, 4)),  # TP fills the remaining GPUs
        (2, 8, 2, (8, 2)),
    ],
)
def test_given_unset_sizes_when_planned_then_derived_from_gpus_and_nodes(nodes, tp, pp, expected):
    result = plan(nodes=nodes, tp=tp, pp=pp)
    assert (result.tensor_parallel_size, result.pipeline_parallel_size) == expected


def test_given_tp_above_kv_heads_when_planned_then_kv_heads_replicated_one_per_gpu():
    four_kv_heads = ModelSpec("example/gqa4", 10**9, 2 * 10**9, 16, 32, 4, 128, 8192)
    result = plan(model=four_kv_heads, nodes=1)
    assert result.kv_heads_per_gpu == 1  # TP 8 > 4 KV heads: each GPU keeps a copy of one
    assert result.kv_bytes_per_token_per_gpu == 2 * 16 * 1 * 128 * 2


def test_given_tp_spanning_nodes_when_planned_then_a_note_says_so():
    sixty_four_heads = ModelSpec("example/mha64", 10**9, 2 * 10**9, 16, 64, 16, 128, 8192)
    result = plan(model=sixty_four_heads, tp=16)
    assert result.pipeline_parallel_size == 1
    assert any("spans nodes" in note for note in result.notes)


# --- unknown models ---------------------------------------------------------------------------


def test_given_unknown_model_when_planned_then_sizing_not_checked_and_said_plainly():
    result = plan(model=None, max_model_len=8192)
    assert result.sizing_checked is False
    assert (result.tensor_parallel_size, result.pipeline_parallel_size) == (8, 2)
    assert result.max_model_len == 8192
    assert result.weight_bytes_per_gpu is None
    assert result.notes[0].startswith("sizing not checked")
    assert "modelWeightBytes" in result.notes[0]


def test_given_unknown_model_and_no_max_model_len_when_planned_then_left_to_vllm():
    assert plan(model=None).max_model_len is None


def test_given_unknown_model_when_tp_does_not_divide_gpus_then_still_rejected():
    problem = problems_of(model=None, tp=3)["tensorParallelSize"]
    assert "does not divide the 16 GPUs" in problem.message


# --- FSx throughput ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("deployment_type", "storage_gib", "per_tib", "expected"),
    [
        ("SCRATCH_2", 1200, None, 234.375),  # 200 MB/s x 1200/1024 TiB
        ("SCRATCH_2", 2400, None, 468.75),
        ("PERSISTENT_2", 1200, 125, 146.484375),
        ("PERSISTENT_2", 1200, 250, 292.96875),
        ("PERSISTENT_2", 2400, 1000, 2343.75),
    ],
)
def test_given_fsx_settings_when_throughput_computed_then_per_tib_times_tib(
    deployment_type, storage_gib, per_tib, expected
):
    assert fsx_throughput_mb_s(deployment_type, storage_gib, per_tib) == expected


def test_given_persistent_2_without_tier_or_unknown_type_when_throughput_computed_then_error():
    with pytest.raises(ValueError, match="PERSISTENT_2 needs"):
        fsx_throughput_mb_s("PERSISTENT_2", 1200, None)
    with pytest.raises(ValueError, match="unknown FSx"):
        fsx_throughput_mb_s("SCRATCH_1", 1200, None)
