"""Preflight checks 5-6: the GPU type is offered where the nodes go, and capacity exists.

Offerings come from moto's bundled DescribeInstanceTypeOfferings data (in it eu-west-1 offers
p4d.24xlarge only in eu-west-1c and no p5.48xlarge). moto 5.2.5 does not implement
DescribeCapacityReservations and its Service Quotas knows only `vpc` quotas, so those answers
come from botocore's Stubber, shaped as the EC2 and Service Quotas API references document.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.stub import Stubber
from ops_fixtures import REGION, config_with

from ops.aws import client, session
from ops.preflight_capacity import (
    ON_DEMAND_VCPU_QUOTAS,
    check_instance_offered,
    check_reservation,
    check_vcpu_quota,
)
from ops.report import Status

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


@pytest.fixture
def ec2_eu(aws_env):
    return client(session("eu-west-1"), "ec2")


def test_given_no_zone_pinned_when_the_first_az_offers_it_then_pass_names_the_apps_choice(aws):
    check = check_instance_offered(client(aws, "ec2"), config_with(), REGION)
    assert check.status is Status.PASS
    assert "in us-west-2a (the app's choice" in check.detail


def test_given_no_zone_pinned_when_the_first_az_lacks_it_then_fail_with_the_settings(ec2_eu):
    check = check_instance_offered(ec2_eu, config_with(), "eu-west-1")
    assert check.status is Status.FAIL
    assert "the app would use eu-west-1a" in check.detail
    assert "offered in eu-west-1c" in check.detail
    assert "-c gpuAvailabilityZone=eu-west-1c" in check.fix


def test_given_a_pinned_zone_that_offers_it_when_checked_then_pass(ec2_eu):
    config = config_with(
        "availabilityZones=eu-west-1a,eu-west-1c", "gpuAvailabilityZone=eu-west-1c"
    )
    assert check_instance_offered(ec2_eu, config, "eu-west-1").status is Status.PASS


def test_given_a_pinned_zone_that_lacks_it_when_checked_then_fail(ec2_eu):
    config = config_with(
        "availabilityZones=eu-west-1a,eu-west-1c", "gpuAvailabilityZone=eu-west-1a"
    )
    check = check_instance_offered(ec2_eu, config, "eu-west-1")
    assert check.status is Status.FAIL
    assert "gpuAvailabilityZone=eu-west-1a" in check.detail


def test_given_named_zones_when_none_pinned_then_the_first_named_one_is_used(ec2_eu):
    config = config_with("availabilityZones=eu-west-1c,eu-west-1a")
    check = check_instance_offered(ec2_eu, config, "eu-west-1")
    assert check.status is Status.PASS
    assert "in eu-west-1c" in check.detail


def test_given_a_type_not_in_the_region_when_checked_then_fail(ec2_eu):
    check = check_instance_offered(ec2_eu, config_with("gpuInstanceType=p5.48xlarge"), "eu-west-1")
    assert check.status is Status.FAIL
    assert "not offered in eu-west-1" in check.detail


RESERVED = (
    "capacityReservationId=cr-0123456789abcdef0",
    "availabilityZones=us-west-2a,us-west-2b",
    "gpuAvailabilityZone=us-west-2b",
)


def _reservation(**overrides) -> dict:
    reservation = {
        "CapacityReservationId": "cr-0123456789abcdef0",
        "InstanceType": "p4d.24xlarge",
        "AvailabilityZone": "us-west-2b",
        "TotalInstanceCount": 2,
        "State": "active",
        "ReservationType": "default",
        "StartDate": NOW - timedelta(days=1),
    }
    reservation.update(overrides)
    return {"CapacityReservations": [reservation]}


def _check_reservation(aws, response: dict, *settings: str):
    ec2 = client(aws, "ec2")
    with Stubber(ec2) as stub:
        stub.add_response(
            "describe_capacity_reservations",
            response,
            {"CapacityReservationIds": ["cr-0123456789abcdef0"]},
        )
        return check_reservation(ec2, config_with(*RESERVED, *settings), now=NOW)


def test_given_a_matching_active_reservation_when_checked_then_pass(aws):
    check = _check_reservation(aws, _reservation())
    assert check.status is Status.PASS
    assert "2 x p4d.24xlarge in us-west-2b" in check.detail


def test_given_a_mismatched_reservation_when_checked_then_fail_lists_every_mismatch(aws):
    response = _reservation(
        InstanceType="p5.48xlarge", AvailabilityZone="us-west-2a", TotalInstanceCount=1
    )
    check = _check_reservation(aws, response)
    assert check.status is Status.FAIL
    assert "is for p5.48xlarge" in check.detail
    assert "is in us-west-2a" in check.detail
    assert "holds 1 instances; the app needs 2" in check.detail


def test_given_a_capacity_block_not_started_when_checked_then_fail_naming_its_start(aws):
    start = NOW + timedelta(hours=5)
    response = _reservation(
        ReservationType="capacity-block",
        State="scheduled",
        StartDate=start,
        EndDate=start + timedelta(days=1),
    )
    check = _check_reservation(aws, response, "capacityBlock=true")
    assert check.status is Status.FAIL
    assert f"starts {start.isoformat()}" in check.detail
    assert "is scheduled, not active" in check.detail


def test_given_a_running_capacity_block_when_checked_then_pass_with_its_end(aws):
    end = NOW + timedelta(hours=20)
    response = _reservation(ReservationType="capacity-block", EndDate=end)
    check = _check_reservation(aws, response, "capacityBlock=true")
    assert check.status is Status.PASS
    assert f"until {end.isoformat()}" in check.detail


def test_given_an_unknown_reservation_when_checked_then_fail(aws):
    ec2 = client(aws, "ec2")
    with Stubber(ec2) as stub:
        stub.add_client_error(
            "describe_capacity_reservations", "InvalidCapacityReservationId.NotFound", "nope"
        )
        check = check_reservation(ec2, config_with(*RESERVED), now=NOW)
    assert check.status is Status.FAIL
    assert "not found" in check.detail


def _quota(value: float, code: str = "L-417A185B") -> dict:
    return {"Quota": {"ServiceCode": "ec2", "QuotaCode": code, "Value": value}}


def test_given_too_small_a_p_quota_when_checked_then_fail_with_the_increase_command(aws):
    quotas = client(aws, "service-quotas")
    with Stubber(quotas) as stub:
        stub.add_response(
            "get_service_quota", _quota(96.0), {"ServiceCode": "ec2", "QuotaCode": "L-417A185B"}
        )
        check = check_vcpu_quota(quotas, config_with(), REGION)
    assert check.status is Status.FAIL
    assert "2 x p4d.24xlarge need 192" in check.detail
    assert "--quota-code L-417A185B --desired-value 192 --region us-west-2" in check.fix


def test_given_no_applied_quota_when_checked_then_the_aws_default_counts(aws):
    """GetServiceQuota raises NoSuchResourceException until a quota is changed from its default
    (Service Quotas API reference); GetAWSDefaultServiceQuota then gives the value."""
    quotas = client(aws, "service-quotas")
    with Stubber(quotas) as stub:
        stub.add_client_error("get_service_quota", "NoSuchResourceException", "none")
        stub.add_response("get_aws_default_service_quota", _quota(384.0))
        check = check_vcpu_quota(quotas, config_with(), REGION)
    assert check.status is Status.PASS
    assert "L-417A185B is 384 vCPUs, 192 needed" in check.detail


def test_given_a_g_instance_when_checked_then_the_g_quota_is_asked(aws):
    quotas = client(aws, "service-quotas")
    with Stubber(quotas) as stub:
        stub.add_response(
            "get_service_quota",
            _quota(768.0, "L-DB2E81BA"),
            {"ServiceCode": "ec2", "QuotaCode": "L-DB2E81BA"},
        )
        check = check_vcpu_quota(quotas, config_with("gpuInstanceType=g6e.48xlarge"), REGION)
    assert check.status is Status.PASS
    assert ON_DEMAND_VCPU_QUOTAS["g"] == "L-DB2E81BA"
