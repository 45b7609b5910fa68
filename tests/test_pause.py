"""`paused=true` (make pause / make resume): GPU nodes and vLLM at zero, everything else kept.

A LeaderWorkerSet's `replicas` has no minimum and scales whole groups, leader and workers
(kubernetes-sigs/lws api/leaderworkerset/v1/leaderworkerset_types.go: "On scale down, the
leader pod as well as the workers statefulset will be deleted"). An EKS managed node group
accepts DesiredSize 0 with MinSize 0 (AWS::EKS::Nodegroup ScalingConfig).
"""

from __future__ import annotations

from typing import Any

import pytest

from config.errors import ConfigError
from config.settings import build_config
from planning.plan_report import main as plan_main

from conftest import STACK_IDS, Synthesized, only

GPU_STACK = "VllmGpuNodeGroupStack"
KEPT_RESOURCES = {
    "VllmClusterStack": ("AWS::EKS::Cluster", "AWS::EC2::VPC"),
    "VllmFsxStack": ("AWS::FSx::FileSystem",),
}


@pytest.fixture(scope="module")
def paused_app(synth_variant) -> Synthesized:
    return synth_variant(paused=True)


def scaling(app: Synthesized) -> dict[str, Any]:
    _, nodegroup = only(app.resources(GPU_STACK, "AWS::EKS::Nodegroup"))
    return nodegroup["Properties"]["ScalingConfig"]


def test_given_default_config_then_two_gpu_nodes_and_one_lws_replica_run(default_app):
    assert scaling(default_app) == {"DesiredSize": 2, "MinSize": 0, "MaxSize": 2}
    assert default_app.kubernetes_object("LeaderWorkerSet", "vllm")["spec"]["replicas"] == 1


def test_given_paused_when_synthesized_then_gpu_nodes_desired_0_and_max_kept(paused_app):
    """Max stays at 2 so `make resume` is a scaling change, never a node group replacement."""
    assert scaling(paused_app) == {"DesiredSize": 0, "MinSize": 0, "MaxSize": 2}


def test_given_paused_when_synthesized_then_leaderworkerset_has_0_replicas(paused_app):
    assert paused_app.kubernetes_object("LeaderWorkerSet", "vllm")["spec"]["replicas"] == 0


@pytest.mark.parametrize("stack_id", STACK_IDS)
def test_given_paused_then_every_resource_of_the_running_app_stays(
    default_app, paused_app, stack_id
):
    """Same logical ids in every stack: nothing is deleted or replaced by pausing."""
    running = set(default_app.json(stack_id)["Resources"])
    assert set(paused_app.json(stack_id)["Resources"]) == running


@pytest.mark.parametrize("stack_id,types", KEPT_RESOURCES.items())
def test_given_paused_then_cluster_vpc_and_file_system_are_unchanged(
    default_app, paused_app, stack_id, types
):
    for resource_type in types:
        assert paused_app.resources(stack_id, resource_type) == default_app.resources(
            stack_id, resource_type
        )


def test_given_paused_then_model_volume_and_staging_job_are_unchanged(default_app, paused_app):
    """The weights stay on FSx: resuming downloads nothing."""
    for kind in ("PersistentVolume", "PersistentVolumeClaim"):
        assert paused_app.kubernetes_object(kind) == default_app.kubernetes_object(kind)
    assert paused_app.staging_job() == default_app.staging_job()


def test_given_paused_then_alarms_stay_but_page_nobody(default_app, paused_app):
    """Paused, the ALB has no healthy target by design: the alarms keep their state (visible on
    the dashboard) with actions off (AWS::CloudWatch::Alarm ActionsEnabled), and resume turns
    them back on."""

    def actions_enabled(app: Synthesized) -> set[bool]:
        alarms = app.resources("VllmWorkloadStack", "AWS::CloudWatch::Alarm").values()
        assert alarms, "observability is on by default"
        return {alarm["Properties"]["ActionsEnabled"] for alarm in alarms}

    assert actions_enabled(default_app) == {True}
    assert actions_enabled(paused_app) == {False}


@pytest.mark.parametrize("value,expected", [("true", True), ("false", False), (True, True)])
def test_given_paused_values_when_config_built_then_parsed(value, expected):
    config = build_config({"paused": value})
    assert config.paused is expected
    assert config.gpu_nodes_desired == (0 if expected else 2)
    assert config.lws_replicas == (0 if expected else 1)
    assert config.gpu_nodes_total == 2


def test_given_paused_not_a_boolean_when_config_built_then_error_names_key():
    with pytest.raises(ConfigError) as error:
        build_config({"paused": "yes"})
    assert "paused=yes: not a boolean (allowed: true, false)" in str(error.value)


def test_given_make_plan_then_hourly_cost_while_paused_drops_the_gpu_nodes(capsys):
    assert plan_main([]) == 0
    out = capsys.readouterr().out
    total = next(line for line in out.splitlines() if line.strip().startswith("total"))
    gpu = next(line for line in out.splitlines() if "GPU nodes 2 x p4d.24xlarge" in line)
    paused = next(line for line in out.splitlines() if "while paused (make pause" in line)
    running_usd = float(total.split()[1])
    paused_usd = float(paused.split("per hour")[0].split()[-1])
    assert paused_usd == pytest.approx(running_usd - float(gpu.split()[-1]), abs=0.002)
    assert 0 < paused_usd < 1


def test_given_paused_configuration_when_make_plan_then_it_says_paused_now(capsys):
    assert plan_main(["-c", "paused=true"]) == 0
    assert "while paused (paused now: GPU nodes at 0)" in capsys.readouterr().out
