"""Bad settings give one clear error naming the key, the value and what is allowed."""

from __future__ import annotations

from datetime import date

import pytest

from config.errors import ConfigError
from config.settings import DOCUMENTATION_CIDR, build_config, config_from_context
from config.versions import KUBERNETES_RELEASES

TODAY = date(2026, 11, 30)


def _problems(context: dict, today: date = TODAY) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        build_config(context, today=today)
    return [str(problem) for problem in raised.value.problems]


def test_given_no_settings_then_defaults_follow_the_design():
    config = build_config({}, today=TODAY)
    assert config.kubernetes_version == "1.35"
    assert config.model_id == "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B"
    assert config.gpu_instance_type == "p4d.24xlarge"
    assert (config.gpu_node_count, config.replicas) == (2, 1)
    assert (config.plan.tensor_parallel_size, config.plan.pipeline_parallel_size) == (8, 2)
    assert config.distributed_executor == "mp"
    assert config.fsx_deployment_type == "SCRATCH_2" and config.fsx_storage_gib == 1200
    assert config.fsx_removal_policy == "DESTROY"
    assert config.gpu_memory_utilization == pytest.approx(0.90)
    assert config.endpoint_scheme == "internet-facing"
    assert config.allowed_cidrs == (DOCUMENTATION_CIDR,) and config.allowed_cidrs_defaulted


def test_given_command_line_strings_then_they_are_parsed_to_typed_values():
    config = build_config(
        {
            "gpuNodeCount": "1",
            "gpuMemoryUtilization": "0.85",
            "allowPublicInternet": "false",
            "allowedCidrs": "203.0.113.7/32, 198.51.100.0/24",
            "fsxDeploymentType": "PERSISTENT_2",
        },
        today=TODAY,
    )
    assert config.gpu_node_count == 1
    assert config.gpu_memory_utilization == pytest.approx(0.85)
    assert config.allowed_cidrs == ("203.0.113.7/32", "198.51.100.0/24")
    assert not config.allowed_cidrs_defaulted
    assert config.fsx_removal_policy == "DESTROY"
    assert config.fsx_throughput_per_tib == 250


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"gpuNodeCount": "zero"}, "gpuNodeCount=zero: not a whole number"),
        ({"gpuNodeCount": "0"}, "gpuNodeCount=0: out of range"),
        ({"replicas": "-1"}, "replicas=-1: out of range"),
        ({"gpuInstanceType": "p9.huge"}, "gpuInstanceType=p9.huge: not in the instance catalog"),
        ({"distributedExecutor": "slurm"}, "distributedExecutor=slurm: not a supported value"),
        ({"endpointScheme": "public"}, "endpointScheme=public: not a supported value"),
        ({"gpuMemoryUtilization": "0.99"}, "gpuMemoryUtilization=0.99: out of range"),
        ({"allowedCidrs": "10.0.0.300/32"}, "allowedCidrs=10.0.0.300/32: not a valid CIDR"),
        ({"allowedCidrs": "0.0.0.0/0"}, "allowedCidrs=0.0.0.0/0: opens the endpoint"),
        ({"certificateArn": "arn:aws:iam::1:cert"}, "certificateArn=arn:aws:iam::1:cert"),
        ({"capacityReservationId": "odcr-1"}, "capacityReservationId=odcr-1"),
        ({"adminPrincipalArn": "alice"}, "adminPrincipalArn=alice"),
        ({"fsxRemovalPolicy": "SNAPSHOT"}, "fsxRemovalPolicy=SNAPSHOT"),
        ({"modelId": "not a model"}, "modelId=not a model: not a model id"),
        ({"kubernetesVersion": "1.29"}, "kubernetesVersion=1.29: not a version this app knows"),
        ({"gpuAvailabilityZone": "us-west-2b"}, "gpuAvailabilityZone=us-west-2b"),
    ],
)
def test_given_a_bad_setting_then_the_error_names_key_value_and_what_is_allowed(context, expected):
    (problem,) = _problems(context)
    assert expected in problem
    assert "(allowed: " in problem


def test_given_a_misspelt_key_then_the_error_suggests_the_real_one():
    with pytest.raises(ConfigError) as raised:
        config_from_context({"gpuNodeCuont": "2", "@aws-cdk/core:target": "x"})
    assert str(raised.value).startswith("gpuNodeCuont=2: not a setting; did you mean gpuNodeCount?")


def test_given_several_bad_settings_then_every_problem_is_listed_once():
    problems = _problems({"gpuNodeCount": "0", "endpointScheme": "public", "replicas": "x"})
    assert [p.split("=")[0] for p in problems] == ["gpuNodeCount", "replicas", "endpointScheme"]


def test_given_a_version_past_extended_support_then_it_is_refused_with_the_date():
    (problem,) = _problems({"kubernetesVersion": "1.31"})
    assert problem.startswith("kubernetesVersion=1.31: EKS extended support ended on 2026-11-26")
    assert "1.35" in problem


def test_given_an_extended_support_version_then_a_warning_names_the_cost():
    from config.settings import kubernetes_version_warning

    assert kubernetes_version_warning("1.32", TODAY) is not None
    assert "extended support" in kubernetes_version_warning("1.32", TODAY)
    assert kubernetes_version_warning("1.35", TODAY) is None


def test_given_a_version_whose_layer_is_not_installed_then_the_pip_line_is_given():
    (problem,) = _problems({"kubernetesVersion": "1.33"})
    release = KUBERNETES_RELEASES["1.33"]
    assert "aws-cdk.lambda-layer-kubectl-v33 is not installed" in problem
    assert release.pip_install in problem
    assert "==2.2.2" in release.pip_install


def test_given_world_open_cidr_with_explicit_consent_then_it_is_accepted():
    config = build_config({"allowedCidrs": "0.0.0.0/0", "allowPublicInternet": "true"}, today=TODAY)
    assert config.allowed_cidrs == ("0.0.0.0/0",)


def test_given_named_zones_then_the_gpu_zone_must_be_one_of_them():
    config = build_config(
        {"availabilityZones": "us-west-2a,us-west-2b", "gpuAvailabilityZone": "us-west-2b"},
        today=TODAY,
    )
    assert config.gpu_availability_zone == "us-west-2b"
    (problem,) = _problems(
        {"availabilityZones": "us-west-2a,us-west-2b", "gpuAvailabilityZone": "us-west-2c"}
    )
    assert problem.startswith("gpuAvailabilityZone=us-west-2c")


def test_given_a_capacity_block_without_a_reservation_then_it_is_refused():
    (problem,) = _problems({"capacityBlock": "true"})
    assert problem.startswith("capacityBlock=True")
