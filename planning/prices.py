"""Dated on-demand price table (us-west-2, USD) for the hourly cost `make plan` shows.

Every entry carries its source and the day it was written down. `confirmed` is False for a
number no source in reach could confirm: it is the value believed at that date, labelled
"unverified estimate", and `make plan` marks it. Prices change; re-check before relying on
them and update the date with the number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple

from config.versions import KUBERNETES_RELEASES

REGION = "us-west-2"
CHECKED = date(2026, 11, 30)

# AWS quotes storage per GB-month and bills by the second; 730 hours is its month.
HOURS_PER_MONTH = 730

# The system node group ClusterStack creates for controllers (DESIGN section 5).
SYSTEM_NODE_TYPE = "m7i.xlarge"
SYSTEM_NODE_COUNT = 2

UNVERIFIED = "unverified estimate"
SEED_README = "AWS sample (seed) demo README cost table, us-west-2 on-demand; DESIGN section 9"


@dataclass(frozen=True)
class Price:
    usd: float
    unit: str  # "hour", "GB-month", or a monthly unit for the observability items
    source: str
    checked: date = CHECKED
    confirmed: bool = True


INSTANCE_HOURLY: dict[str, Price] = {
    # The seed's number; it may predate AWS's June 2025 price cut for P4/P5 instances.
    "p4d.24xlarge": Price(32.77, "hour", SEED_README),
    # Believed post-June-2025 list prices; no source in reach confirmed them.
    "p4de.24xlarge": Price(27.45, "hour", UNVERIFIED, confirmed=False),
    "p5.48xlarge": Price(55.04, "hour", UNVERIFIED, confirmed=False),
    "p5e.48xlarge": Price(63.30, "hour", UNVERIFIED, confirmed=False),
    "p5en.48xlarge": Price(63.30, "hour", UNVERIFIED, confirmed=False),
    "g6e.48xlarge": Price(30.13, "hour", UNVERIFIED, confirmed=False),
    # Third-party pages give these as us-east-1 rates; us-west-2 is believed equal, not confirmed.
    "g5.xlarge": Price(
        1.006,
        "hour",
        f"{UNVERIFIED} for {REGION}; us-east-1 rate (June 2026) from "
        "factualminds.com/blog/amazon-ec2-on-demand-pricing-instance-families-2026",
        confirmed=False,
    ),
    "m7i.xlarge": Price(
        0.2016,
        "hour",
        f"{UNVERIFIED} for {REGION}; us-east-1 rate from "
        "c3x.dev/blog/m5-vs-m6i-vs-m7i-cost-performance",
        confirmed=False,
    ),
}

EKS_BLOG = (
    "aws.amazon.com/blogs/containers/amazon-eks-extended-support-for-kubernetes-versions-pricing"
)
EKS_STANDARD_HOURLY = Price(0.10, "hour", EKS_BLOG + "; also the seed's README")
EKS_EXTENDED_HOURLY = Price(0.60, "hour", EKS_BLOG)

NAT_GATEWAY_HOURLY = Price(
    0.045,
    "hour",
    "cloudpipelines.pages.dev/guides/aws-nat-gateway-pricing-2026 (US West Oregon); "
    "plus 0.045 USD per GB processed, not counted",
)

# Keyed by deployment type, and PERSISTENT_2 by its throughput tier in MB/s per TiB.
FSX_GB_MONTH: dict[str, Price] = {
    "SCRATCH_2": Price(
        0.140,
        "GB-month",
        "learning-aws.readthedocs.io resources/pricing (third-party, region not stated)",
    ),
    "PERSISTENT_2-125": Price(
        0.145, "GB-month", "c3x.dev/resources/aws/aws_fsx_lustre_file_system (third-party)"
    ),
    # Cross-check only: Classmethod DevelopersIO's table of 2022-09-03 (ap-northeast-1) gives
    # 1.2 TiB PERSISTENT_2 at 0.31 / 0.46 / 0.77 / 1.39 USD/hour for 125 / 250 / 500 / 1000,
    # ratios 1 : 1.5 : 2.5 : 4.5, close to these; another region and year, so still unverified.
    "PERSISTENT_2-250": Price(0.210, "GB-month", UNVERIFIED, confirmed=False),
    "PERSISTENT_2-500": Price(0.340, "GB-month", UNVERIFIED, confirmed=False),
    "PERSISTENT_2-1000": Price(0.600, "GB-month", UNVERIFIED, confirmed=False),
}

# The seed states FSx SCRATCH_2 1.2 TiB at 0.14 USD/hour. At 0.140 USD/GB-month, 1200 GB
# cost 1200 x 0.140 / 730 = 0.23 USD/hour, so that figure looks like the GB-month rate read
# as an hourly one. Kept for the record; the cost table uses the GB-month rate.
SEED_FSX_SCRATCH_1200_GIB_HOURLY = Price(0.14, "hour", SEED_README)


class CostLine(NamedTuple):
    item: str
    usd_per_hour: float
    confirmed: bool


def fsx_price(deployment_type: str, throughput_per_tib: int | None) -> Price:
    if deployment_type == "PERSISTENT_2":
        return FSX_GB_MONTH[f"PERSISTENT_2-{throughput_per_tib}"]
    return FSX_GB_MONTH[deployment_type]


def eks_price(kubernetes_version: str, today: date | None = None) -> Price:
    """Versions past EKS standard support are billed at the extended-support rate."""
    release = KUBERNETES_RELEASES.get(kubernetes_version)
    if release is not None and release.end_of_standard_support <= (today or date.today()):
        return EKS_EXTENDED_HOURLY
    return EKS_STANDARD_HOURLY


def hourly_cost(config: Any, today: date | None = None) -> list[CostLine]:
    """On-demand USD per hour of everything the app keeps running, one line per item."""
    lines = []
    gpu_nodes = config.gpu_node_count * config.replicas
    gpu = INSTANCE_HOURLY.get(config.gpu_instance_type)
    if gpu is None:
        lines.append(CostLine(f"{gpu_nodes} x {config.gpu_instance_type} (no price)", 0.0, False))
    else:
        lines.append(
            CostLine(
                f"GPU nodes {gpu_nodes} x {config.gpu_instance_type} "
                f"({config.gpu_node_count} nodes x {config.replicas} replica(s)) @ {gpu.usd:g}",
                gpu_nodes * gpu.usd,
                gpu.confirmed,
            )
        )
    system = INSTANCE_HOURLY[SYSTEM_NODE_TYPE]
    lines.append(
        CostLine(
            f"system nodes {SYSTEM_NODE_COUNT} x {SYSTEM_NODE_TYPE} @ {system.usd:g}",
            SYSTEM_NODE_COUNT * system.usd,
            system.confirmed,
        )
    )
    eks = eks_price(config.kubernetes_version, today)
    support = "extended" if eks is EKS_EXTENDED_HOURLY else "standard"
    lines.append(
        CostLine(
            f"EKS control plane ({config.kubernetes_version}, {support} support)",
            eks.usd,
            eks.confirmed,
        )
    )
    fsx = fsx_price(config.fsx_deployment_type, config.fsx_throughput_per_tib)
    tier = (
        f"-{config.fsx_throughput_per_tib}" if config.fsx_deployment_type == "PERSISTENT_2" else ""
    )
    lines.append(
        CostLine(
            f"FSx {config.fsx_deployment_type}{tier} {config.fsx_storage_gib} GiB "
            f"@ {fsx.usd:g}/GB-month",
            config.fsx_storage_gib * fsx.usd / HOURS_PER_MONTH,
            fsx.confirmed,
        )
    )
    nat_gateways = getattr(config, "nat_gateways", 1)
    lines.append(
        CostLine(
            f"NAT gateway x {nat_gateways} @ {NAT_GATEWAY_HOURLY.usd:g} (+ per GB)",
            nat_gateways * NAT_GATEWAY_HOURLY.usd,
            NAT_GATEWAY_HOURLY.confirmed,
        )
    )
    return lines


# --- Observability (observability=true), per month ---------------------------------------
CLOUDWATCH_PRICING = "aws.amazon.com/cloudwatch/pricing, as remembered; not re-checked"
CLOUDWATCH_DASHBOARD_MONTHLY = Price(3.00, "dashboard-month", CLOUDWATCH_PRICING, confirmed=False)
CLOUDWATCH_ALARM_METRIC_MONTHLY = Price(
    0.10, "standard-resolution alarm metric-month", CLOUDWATCH_PRICING, confirmed=False
)
CLOUDWATCH_CUSTOM_METRIC_MONTHLY = Price(0.30, "metric-month", CLOUDWATCH_PRICING, confirmed=False)
CONTAINER_INSIGHTS_PER_MILLION_OBSERVATIONS = Price(
    0.21,
    "million observations",
    f"{UNVERIFIED}; enhanced observability bills per observation",
    confirmed=False,
)
KMS_KEY_MONTHLY = Price(1.00, "key-month", "aws.amazon.com/kms/pricing", confirmed=False)
# A guess at what Container Insights with enhanced observability records per node per minute
# (node, pod and container metrics, 8 GPUs from DCGM, EFA devices); watch the bill.
OBSERVATIONS_PER_NODE_MINUTE = 300
MINUTES_PER_MONTH = HOURS_PER_MONTH * 60


class MonthlyCostLine(NamedTuple):
    item: str
    usd_per_month: float
    confirmed: bool


def observability_monthly_cost(config: Any) -> list[MonthlyCostLine]:
    """What observability=true adds per month, one line per item.

    Counts what InferenceDashboard and InferenceObservability create: one dashboard, six alarm
    metrics (the 5xx alarm adds two), nine vLLM metrics, one KMS key for the alarm topic.
    Container log ingestion (Fluent Bit) and EMF log bytes depend on traffic and are not counted.
    """
    if not getattr(config, "observability", True):
        return []
    nodes = config.gpu_node_count * config.replicas + SYSTEM_NODE_COUNT
    observations = nodes * OBSERVATIONS_PER_NODE_MINUTE * MINUTES_PER_MONTH / 1e6
    rate = CONTAINER_INSIGHTS_PER_MILLION_OBSERVATIONS
    items = [
        (
            "CloudWatch dashboard x 1",
            CLOUDWATCH_DASHBOARD_MONTHLY.usd,
            CLOUDWATCH_DASHBOARD_MONTHLY,
        ),
        (
            "alarm metrics x 6",
            6 * CLOUDWATCH_ALARM_METRIC_MONTHLY.usd,
            CLOUDWATCH_ALARM_METRIC_MONTHLY,
        ),
        (
            "vLLM custom metrics x 9",
            9 * CLOUDWATCH_CUSTOM_METRIC_MONTHLY.usd,
            CLOUDWATCH_CUSTOM_METRIC_MONTHLY,
        ),
        (
            f"Container Insights ~{observations:.0f}M observations ({nodes} nodes)",
            observations * rate.usd,
            rate,
        ),
        ("KMS key for the alarm topic", KMS_KEY_MONTHLY.usd, KMS_KEY_MONTHLY),
    ]
    return [MonthlyCostLine(item, usd, price.confirmed) for item, usd, price in items]
