"""FSx for Lustre rules are checked up front with the one clear configuration error (issue 4)."""

from __future__ import annotations

import pytest

from config.errors import ConfigError
from config.settings import build_config


@pytest.mark.parametrize("capacity", [1000, 3600, "3600"], ids=["1000", "3600", "3600-from-cli"])
def test_given_invalid_fsx_capacity_when_config_is_built_then_it_is_rejected(capacity):
    with pytest.raises(ConfigError) as error:
        build_config({"fsxStorageGiB": capacity})
    assert f"fsxStorageGiB={capacity}" in str(error.value)
    assert [problem.key for problem in error.value.problems] == ["fsxStorageGiB"]


@pytest.mark.parametrize("capacity", [1200, 2400, 4800, "4800"])
def test_given_valid_fsx_capacity_when_config_is_built_then_it_is_accepted(capacity):
    assert build_config({"fsxStorageGiB": capacity}).fsx_storage_gib == int(capacity)


@pytest.mark.parametrize(
    "context",
    [{"fsxThroughputPerTiB": 250}, {"fsxDeploymentType": "SCRATCH_2", "fsxThroughputPerTiB": 250}],
    ids=["default-type", "explicit-scratch-2"],
)
def test_given_throughput_on_scratch_2_when_config_is_built_then_it_is_rejected(context):
    with pytest.raises(ConfigError) as error:
        build_config(context)
    assert "fsxThroughputPerTiB=250" in str(error.value)
    assert [problem.key for problem in error.value.problems] == ["fsxThroughputPerTiB"]


def test_given_persistent_2_with_throughput_300_when_config_is_built_then_it_is_rejected():
    with pytest.raises(ConfigError) as error:
        build_config({"fsxDeploymentType": "PERSISTENT_2", "fsxThroughputPerTiB": 300})
    message = str(error.value)
    assert "fsxThroughputPerTiB=300" in message
    # The error lists the tiers that are allowed.
    for tier in ("125", "250", "500", "1000"):
        assert tier in message
    assert [problem.key for problem in error.value.problems] == ["fsxThroughputPerTiB"]


@pytest.mark.parametrize("throughput", [125, 250, 500, 1000])
def test_given_persistent_2_with_a_valid_tier_when_config_is_built_then_it_is_accepted(throughput):
    config = build_config({"fsxDeploymentType": "PERSISTENT_2", "fsxThroughputPerTiB": throughput})
    assert config.fsx_throughput_per_tib == throughput
    assert config.fsx_removal_policy == "DESTROY"


def test_given_defaults_when_config_is_built_then_scratch_2_at_1200_with_destroy():
    config = build_config({})
    assert (config.fsx_deployment_type, config.fsx_storage_gib) == ("SCRATCH_2", 1200)
    assert config.fsx_throughput_per_tib is None
    assert config.fsx_removal_policy == "DESTROY"
