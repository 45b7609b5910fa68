"""`make plan`: the report for real configurations, the price table and the deploy estimate."""

from __future__ import annotations

from datetime import date

import pytest

from config.settings import build_config
from planning import prices
from planning.catalog import INSTANCES
from planning.plan_report import main, render

TODAY = date(2026, 11, 30)


def lines_with(text: str, word: str) -> list[str]:
    return [line for line in text.splitlines() if word in line]


# --- main(): through cdk.json and the real settings ------------------------------------------


def test_given_default_configuration_when_make_plan_runs_then_table_shows_plan_and_memory(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "Plan for deepseek-ai/DeepSeek-R1-Distill-Qwen-32B" in out
    assert "TP 8 x PP 2 = 16 GPUs per replica" in out
    assert "2 per replica x 1 replica(s) = 2 GPU nodes, 16 GPUs" in out
    assert "36.00 GiB  (40 GiB x gpuMemoryUtilization 0.90)" in out
    assert lines_with(out, "weights")[0].split()[1:3] == ["3.81", "GiB"]
    assert lines_with(out, "activation reserve")[0].split()[2:4] == ["2.00", "GiB"]
    assert lines_with(out, "KV cache ")[0].split()[2:4] == ["30.19", "GiB"]


def test_given_default_configuration_when_make_plan_runs_then_kv_context_and_load_time(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "262,144 whole model (2 x 64 layers x 8 KV heads x 128 x 2 bytes)" in out
    assert "16,384 per GPU (32 layers, 1 KV head(s))" in out
    assert "1,978,240 tokens per replica" in out
    assert "131,072 tokens = maxModelLen (the model's maximum)" in out
    assert "234 MB/s baseline, 234 MB/s burst (SCRATCH_2, 1200 GiB)" in out
    assert "4.7 min to read 65.5 GB per replica" in out


def test_given_default_configuration_when_make_plan_runs_then_cost_and_deploy_time(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    gpu_line = lines_with(out, "GPU nodes 2 x p4d.24xlarge")[0]
    assert gpu_line.split()[-1] == "65.540"  # 2 x 32.77
    for item in ("system nodes 2 x m7i.xlarge", "EKS control plane", "FSx SCRATCH_2", "NAT"):
        assert lines_with(out, item), item
    assert lines_with(out, "total")[0].split()[2:4] == ["per", "hour"]
    deploy_total = lines_with(out, "(seed: 60-90, sequential)")[0]
    assert deploy_total.split()[:2] == ["total", "43.7-63.6"]


def test_given_default_configuration_when_make_plan_runs_then_restart_and_recommendation(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    restart = out[out.index("Restart path") :]
    assert "image pull" not in restart.split("\n\n")[0]
    assert "engine start (compile cache hit, CUDA graphs, init)" in restart
    assert "Cold load target < 2 min at baseline: missed (4.7 min)" in out
    assert (
        "cheapest that meets it: -c fsxDeploymentType=PERSISTENT_2 -c fsxStorageGiB=1200 "
        "-c fsxThroughputPerTiB=500" in out
    )
    # 1200 GB x (0.34 - 0.14) USD/GB-month; the PERSISTENT_2-500 rate is unverified.
    assert "+0.33 USD/hour, +240 USD/month vs now (* unverified price)" in out


def test_given_g5_xlarge_one_node_when_make_plan_runs_then_exit_2_with_numbers(capsys):
    code = main(["-c", "gpuInstanceType=g5.xlarge", "-c", "gpuNodeCount=1"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert "gpuInstanceType=g5.xlarge: weights need 61.0 GiB per GPU" in captured.err
    assert "only 21.6 GiB is usable" in captured.err


def test_given_tensor_parallel_size_3_when_make_plan_runs_then_exit_2(capsys):
    assert main(["-c", "tensorParallelSize=3"]) == 2
    assert "tensorParallelSize=3: does not divide the 16 GPUs" in capsys.readouterr().err


def test_given_max_model_len_too_long_when_make_plan_runs_then_exit_2(capsys):
    assert main(["-c", "maxModelLen=200000"]) == 2
    assert "maxModelLen=200000: above the 131072 tokens" in capsys.readouterr().err


def test_given_two_single_node_replicas_when_make_plan_runs_then_each_is_tp8_pp1(
    capsys,
):
    assert main(["-c", "gpuNodeCount=1", "-c", "replicas=2"]) == 0
    out = capsys.readouterr().out
    assert "TP 8 x PP 1 = 8 GPUs per replica" in out
    assert "1 per replica x 2 replica(s) = 2 GPU nodes, 16 GPUs" in out
    assert "32,768 per GPU (64 layers, 1 KV head(s))" in out


def test_given_unknown_model_when_make_plan_runs_then_sizing_not_checked_is_said(capsys):
    assert main(["-c", "modelId=example-org/unknown-model"]) == 0
    out = capsys.readouterr().out
    assert "not checked (model architecture unknown)" in out
    assert "unknown (weight size not known)" in out
    assert "sizing not checked" in out


# --- render(): deterministic figures with a fixed date ---------------------------------------


def test_given_default_config_on_price_date_when_rendered_then_total_is_the_sum_of_lines():
    text = render(build_config({}, today=TODAY), today=TODAY)
    # 65.54 GPU + 0.4032 system + 0.10 EKS + 1200 x 0.14 / 730 FSx + 0.045 NAT
    expected = 65.54 + 0.4032 + 0.10 + 1200 * 0.14 / 730 + 0.045
    assert lines_with(text, "total")[0].split()[1] == f"{expected:.3f}" == "66.318"
    assert "EKS control plane (1.35, standard support)" in text


def test_given_persistent_2_at_250_when_rendered_then_throughput_load_time_and_price_follow():
    config = build_config(
        {"fsxDeploymentType": "PERSISTENT_2", "fsxThroughputPerTiB": 250}, today=TODAY
    )
    text = render(config, today=TODAY)
    assert "293 MB/s baseline, 586 MB/s burst (PERSISTENT_2, 1200 GiB, 250 MB/s per TiB)" in text
    assert "1.9-3.7 min" in text  # 65.5 GB / 586 MB/s burst to 65.5 GB / 293 MB/s baseline
    fsx_line = lines_with(text, "FSx PERSISTENT_2-250")[0]
    assert fsx_line.split()[-2:] == [f"{1200 * 0.21 / 730:.3f}", "*"]  # an unverified estimate


# --- prices ----------------------------------------------------------------------------------


def test_given_the_instance_catalog_when_prices_looked_up_then_every_type_has_a_dated_price():
    for name in INSTANCES:
        price = prices.INSTANCE_HOURLY[name]
        assert price.unit == "hour" and price.usd > 0
        assert price.checked == prices.CHECKED


def test_given_any_price_when_not_confirmed_then_its_source_says_unverified_estimate():
    every = [
        *prices.INSTANCE_HOURLY.values(),
        *prices.FSX_GB_MONTH.values(),
        prices.EKS_STANDARD_HOURLY,
        prices.EKS_EXTENDED_HOURLY,
        prices.NAT_GATEWAY_HOURLY,
    ]
    for price in every:
        assert price.source
        assert price.confirmed == (prices.UNVERIFIED not in price.source), price


def test_given_seed_prices_when_read_then_they_match_design_section_9():
    assert prices.INSTANCE_HOURLY["p4d.24xlarge"].usd == 32.77
    assert prices.EKS_STANDARD_HOURLY.usd == 0.10
    assert prices.FSX_GB_MONTH["SCRATCH_2"].usd == 0.140


def test_given_a_version_past_standard_support_when_costed_then_extended_rate_applies():
    assert prices.eks_price("1.32", TODAY).usd == 0.60
    assert prices.eks_price("1.35", TODAY).usd == 0.10


def test_given_replicas_when_costed_then_gpu_line_multiplies_nodes_by_replicas():
    config = build_config({"replicas": 3}, today=TODAY)
    gpu = prices.hourly_cost(config, TODAY)[0]
    assert gpu.usd_per_hour == pytest.approx(6 * 32.77)
