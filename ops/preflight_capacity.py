"""Preflight checks 5-6: the GPU instance type is offered where the nodes go, and there is room."""

from __future__ import annotations

from datetime import UTC, datetime

from botocore.exceptions import ClientError

from config.settings import Config
from ops.aws import error_code
from ops.report import Check, failed, passed, warned

# Service Quotas codes of the vCPU quotas for running On-Demand instances, by family letter
# (EC2 "Running On-Demand P instances" and "Running On-Demand G and VT instances").
ON_DEMAND_VCPU_QUOTAS = {"p": "L-417A185B", "g": "L-DB2E81BA"}


def gpu_zone(ec2, config: Config) -> str | None:  # noqa: ANN001 - boto3 client
    """The AZ the app puts the GPU nodes in: the pinned one, else the VPC's first subnet's.

    Without availabilityZones the VPC takes `Fn::GetAZs` of the region, whose first entry is the
    first default AZ by name; the GPU subnet is the first private subnet.
    """
    if config.gpu_availability_zone:
        return config.gpu_availability_zone
    if config.availability_zones:
        return config.availability_zones[0]
    zones = ec2.describe_availability_zones(
        Filters=[
            {"Name": "zone-type", "Values": ["availability-zone"]},
            {"Name": "state", "Values": ["available"]},
        ]
    )["AvailabilityZones"]
    names = sorted(zone["ZoneName"] for zone in zones if zone.get("OptInStatus") != "not-opted-in")
    return names[0] if names else None


def check_instance_offered(ec2, config: Config, region: str) -> Check:  # noqa: ANN001
    """`DescribeInstanceTypeOfferings`: offered in the region and in the GPU nodes' AZ."""
    instance_type = config.gpu_instance_type
    subject = f"{instance_type} offered"
    offering_zones = sorted(
        offering["Location"]
        for page in ec2.get_paginator("describe_instance_type_offerings").paginate(
            LocationType="availability-zone",
            Filters=[{"Name": "instance-type", "Values": [instance_type]}],
        )
        for offering in page.get("InstanceTypeOfferings", [])
    )
    if not offering_zones:
        return failed(
            subject,
            f"not offered in {region}",
            "choose a region that offers it, or another gpuInstanceType",
        )
    zone = gpu_zone(ec2, config)
    listed = ", ".join(offering_zones)
    pinned = config.gpu_availability_zone is not None
    if zone in offering_zones:
        how = "gpuAvailabilityZone" if pinned else "the app's choice; pin with gpuAvailabilityZone"
        return passed(subject, f"in {zone} ({how}); offered in {listed}")
    if pinned:
        return failed(
            subject,
            f"not offered in gpuAvailabilityZone={zone}; offered in {listed}",
            f"set -c gpuAvailabilityZone to one of {listed} (and list it in availabilityZones)",
        )
    return failed(
        subject,
        f"the app would use {zone}, which does not offer it; offered in {listed}",
        f"-c availabilityZones={offering_zones[0]},<another AZ> "
        f"-c gpuAvailabilityZone={offering_zones[0]}",
    )


def check_reservation(ec2, config: Config, now: datetime | None = None) -> Check:  # noqa: ANN001
    """The capacity reservation exists, is active now, and matches type, AZ and node count."""
    reservation_id = config.capacity_reservation_id
    subject = f"capacity reservation {reservation_id}"
    try:
        reservations = ec2.describe_capacity_reservations(CapacityReservationIds=[reservation_id])[
            "CapacityReservations"
        ]
    except ClientError as error:
        if not error_code(error).startswith("InvalidCapacityReservationId"):
            raise
        reservations = []
    if not reservations:
        return failed(
            subject, "not found in this account and region", "check capacityReservationId"
        )
    reservation = reservations[0]
    problems = []
    if reservation.get("InstanceType") != config.gpu_instance_type:
        problems.append(
            f"is for {reservation.get('InstanceType')}, not gpuInstanceType "
            f"{config.gpu_instance_type}"
        )
    if reservation.get("AvailabilityZone") != config.gpu_availability_zone:
        problems.append(
            f"is in {reservation.get('AvailabilityZone')}, not gpuAvailabilityZone "
            f"{config.gpu_availability_zone}"
        )
    if reservation.get("TotalInstanceCount", 0) < config.gpu_nodes_total:
        problems.append(
            f"holds {reservation.get('TotalInstanceCount', 0)} instances; the app needs "
            f"{config.gpu_nodes_total} (replicas x gpuNodeCount)"
        )
    is_block = reservation.get("ReservationType") == "capacity-block"
    if is_block != config.capacity_block:
        problems.append(
            f"is {'a' if is_block else 'not a'} Capacity Block but capacityBlock="
            f"{str(config.capacity_block).lower()}"
        )
    now = now or datetime.now(UTC)
    start, end = reservation.get("StartDate"), reservation.get("EndDate")
    if start and start > now:
        problems.append(f"starts {start.isoformat()}")
    if end and end <= now:
        problems.append(f"ended {end.isoformat()}")
    if reservation.get("State") != "active":
        problems.append(f"is {reservation.get('State')}, not active")
    if problems:
        return failed(
            subject,
            "; ".join(problems),
            "use a matching, active reservation or change the settings to match it",
        )
    window = f" until {end.isoformat()}" if end else ""
    return passed(
        subject,
        f"active{window}, {reservation['TotalInstanceCount']} x {config.gpu_instance_type} "
        f"in {config.gpu_availability_zone}",
    )


def check_vcpu_quota(quotas, config: Config, region: str) -> Check:  # noqa: ANN001
    """Without a reservation, the On-Demand vCPU quota of the family covers every GPU node."""
    instance_type = config.gpu_instance_type
    family = instance_type[0]
    needed = config.instance.vcpus * config.gpu_nodes_total
    subject = f"On-Demand {family.upper()} vCPU quota"
    code = ON_DEMAND_VCPU_QUOTAS.get(family)
    if code is None:
        return warned(subject, f"no known quota code for {instance_type}", "check it yourself")
    value = quota_value(quotas, "ec2", code)
    request = (
        f"aws service-quotas request-service-quota-increase --service-code ec2 "
        f"--quota-code {code} --desired-value {needed} --region {region}"
    )
    if value is None:
        return warned(subject, f"Service Quotas has no {code} in {region}", f"`{request}`")
    if value < needed:
        return failed(
            subject,
            f"{code} is {value:g} vCPUs; {config.gpu_nodes_total} x {instance_type} need {needed}",
            f"`{request}`",
        )
    return passed(
        subject,
        f"{code} is {value:g} vCPUs, {needed} needed (instances already running count too)",
    )


def quota_value(quotas, service: str, code: str) -> float | None:  # noqa: ANN001
    """The account's applied quota, else the AWS default; None when the region has no such quota."""
    for call in (quotas.get_service_quota, quotas.get_aws_default_service_quota):
        try:
            return float(call(ServiceCode=service, QuotaCode=code)["Quota"]["Value"])
        except ClientError as error:
            if error_code(error) != "NoSuchResourceException":
                raise
    return None
