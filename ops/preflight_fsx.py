"""Preflight check 9: FSx for Lustre of the chosen type is offered here, with room for the size."""

from __future__ import annotations

from botocore.exceptions import ClientError

from config.settings import Config
from ops.aws import error_code
from ops.preflight_capacity import quota_value
from ops.report import Check, failed, passed

# Service Quotas codes (service `fsx`) of the account-wide storage quota per Lustre type: "Lustre
# Scratch storage capacity" counts every SCRATCH_* file system, "Lustre Persistent_2 storage
# capacity" every PERSISTENT_2 one. Default 100800 GiB each.
STORAGE_QUOTAS = {"SCRATCH_2": "L-AD2FC696", "PERSISTENT_2": "L-8F1B9C74"}
SAME_QUOTA = {"SCRATCH_2": ("SCRATCH_1", "SCRATCH_2"), "PERSISTENT_2": ("PERSISTENT_2",)}


def check_fsx_offered(ssm, region: str) -> Check:  # noqa: ANN001 - boto3 client
    """AWS's public global-infrastructure parameters list FSx among the region's services."""
    subject = "FSx in region"
    try:
        ssm.get_parameter(Name=f"/aws/service/global-infrastructure/regions/{region}/services/fsx")
    except ClientError as error:
        if error_code(error) != "ParameterNotFound":
            raise
        return failed(subject, f"Amazon FSx is not offered in {region}", "choose another region")
    return passed(subject, f"Amazon FSx is offered in {region}")


def lustre_storage_in_use(fsx, deployment_types: tuple[str, ...]) -> int:  # noqa: ANN001
    """GiB of the account's Lustre file systems in this region that count against one quota."""
    return sum(
        system.get("StorageCapacity", 0)
        for page in fsx.get_paginator("describe_file_systems").paginate()
        for system in page.get("FileSystems", [])
        if system.get("FileSystemType") == "LUSTRE"
        and system.get("Lifecycle") != "DELETING"
        and system.get("LustreConfiguration", {}).get("DeploymentType") in deployment_types
    )


def check_fsx_storage(quotas, fsx, config: Config, region: str) -> Check:  # noqa: ANN001
    """The deployment type has a storage quota in this region, and it has room for the size.

    FSx has no API that lists deployment types per region; Service Quotas only carries a type's
    storage quota where the type is offered, so a missing quota means "not offered here".
    """
    deployment_type = config.fsx_deployment_type
    size = config.fsx_storage_gib
    subject = f"FSx for Lustre {deployment_type} {size} GiB"
    code = STORAGE_QUOTAS[deployment_type]
    limit = quota_value(quotas, "fsx", code)
    if limit is None:
        return failed(
            subject,
            f"Service Quotas has no {code} for {deployment_type} in {region}: the type is not "
            "offered here",
            "choose another fsxDeploymentType or region",
        )
    used = lustre_storage_in_use(fsx, SAME_QUOTA[deployment_type])
    if used + size > limit:
        return failed(
            subject,
            f"{code} is {limit:g} GiB and {used} GiB is in use; {size} more does not fit",
            f"`aws service-quotas request-service-quota-increase --service-code fsx "
            f"--quota-code {code} --desired-value {used + size} --region {region}`",
        )
    if used:
        return passed(subject, f"fits: {used} GiB in use of {limit:g} GiB ({code})")
    return passed(subject, f"fits the {limit:g} GiB quota ({code})")
