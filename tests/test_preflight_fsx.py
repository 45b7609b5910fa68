"""Preflight check 9: FSx for Lustre of the chosen type is offered here and the size fits the quota.

The region's services come from moto's copy of AWS's public global-infrastructure parameters
(/aws/service/global-infrastructure/regions/<region>/services/<service>, documented in the
Systems Manager user guide, "Calling AWS service, Region, and endpoint public parameters").
Existing file systems come from moto's FSx. moto's Service Quotas knows only `vpc` quotas, so the
FSx storage quotas are stubbed; their codes (L-AD2FC696 "Lustre Scratch storage capacity",
L-8F1B9C74 "Lustre Persistent_2 storage capacity", default 100800 GiB each) are as listed by
`aws service-quotas list-aws-default-service-quotas --service-code fsx`.
"""

from __future__ import annotations

from botocore.stub import Stubber
from ops_fixtures import REGION, config_with

from ops.aws import client
from ops.preflight_fsx import STORAGE_QUOTAS, check_fsx_offered, check_fsx_storage
from ops.report import Status


def test_given_a_region_with_fsx_when_checked_then_pass(aws):
    assert check_fsx_offered(client(aws, "ssm"), REGION).status is Status.PASS


def test_given_a_region_without_fsx_when_checked_then_fail(aws):
    check = check_fsx_offered(client(aws, "ssm"), "xx-nowhere-1")
    assert check.status is Status.FAIL
    assert "not offered in xx-nowhere-1" in check.detail


def _lustre(aws, deployment_type: str, gib: int) -> None:
    client(aws, "fsx").create_file_system(
        FileSystemType="LUSTRE",
        StorageCapacity=gib,
        SubnetIds=["subnet-12345678"],
        LustreConfiguration={"DeploymentType": deployment_type},
    )


def _check_storage(aws, quota_gib: float, *settings: str):
    config = config_with(*settings)
    code = STORAGE_QUOTAS[config.fsx_deployment_type]
    quotas = client(aws, "service-quotas")
    with Stubber(quotas) as stub:
        stub.add_response(
            "get_service_quota",
            {"Quota": {"ServiceCode": "fsx", "QuotaCode": code, "Value": quota_gib}},
            {"ServiceCode": "fsx", "QuotaCode": code},
        )
        return check_fsx_storage(quotas, client(aws, "fsx"), config, REGION)


def test_given_room_in_the_scratch_quota_when_checked_then_pass(aws):
    check = _check_storage(aws, 100800.0)
    assert check.status is Status.PASS
    assert "L-AD2FC696" in check.detail


def test_given_scratch_systems_filling_the_quota_when_checked_then_fail_with_increase(aws):
    _lustre(aws, "SCRATCH_2", 2400)
    _lustre(aws, "SCRATCH_1", 1200)
    _lustre(aws, "PERSISTENT_2", 4800)  # counts against another quota
    check = _check_storage(aws, 4000.0)
    assert check.status is Status.FAIL
    assert "3600 GiB is in use; 1200 more does not fit" in check.detail
    assert "--service-code fsx --quota-code L-AD2FC696 --desired-value 4800" in check.fix


def test_given_persistent_2_when_checked_then_its_own_quota_counts(aws):
    _lustre(aws, "SCRATCH_2", 2400)
    check = _check_storage(aws, 2400.0, "fsxDeploymentType=PERSISTENT_2", "fsxStorageGiB=2400")
    assert check.status is Status.PASS
    assert "L-8F1B9C74" in check.detail


def test_given_no_quota_for_the_type_in_the_region_when_checked_then_fail_not_offered(aws):
    quotas = client(aws, "service-quotas")
    with Stubber(quotas) as stub:
        stub.add_client_error("get_service_quota", "NoSuchResourceException", "none")
        stub.add_client_error("get_aws_default_service_quota", "NoSuchResourceException", "none")
        check = check_fsx_storage(quotas, client(aws, "fsx"), config_with(), REGION)
    assert check.status is Status.FAIL
    assert "not offered here" in check.detail
