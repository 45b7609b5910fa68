"""The typed, validated configuration: built once from cdk.json context and `-c key=value`."""

from __future__ import annotations

import difflib
import importlib.util
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from config.errors import ConfigError, Problem
from config.versions import DEFAULT_KUBERNETES_VERSION, KUBERNETES_RELEASES
from planning.catalog import INSTANCES, MODELS, InstanceSpec, ModelSpec
from planning.planner import Plan, fsx_throughput_mb_s, plan_capacity

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# RFC 5737 TEST-NET-1: routes nowhere, so a synth-only template can never open the ALB.
DOCUMENTATION_CIDR = "192.0.2.0/24"

FSX_DEPLOYMENT_TYPES = ("SCRATCH_2", "PERSISTENT_2")
PERSISTENT_2_THROUGHPUTS = (125, 250, 500, 1000)
REMOVAL_POLICIES = ("DESTROY", "RETAIN")
# WAFv2 RateBasedStatement.Limit range (WAFv2 API Reference, RateBasedStatement); requests
# per 5-minute window per client IP. 2000 is about 6.7 requests a second from one address.
WAF_RATE_LIMIT_RANGE = (10, 2_000_000_000)
DEFAULT_WAF_RATE_LIMIT = 2000
DNS_NAME = r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?"

# Settings for which "none" is a valid choice: `-c key=` (an empty value) means none. Every
# other key refuses an empty value rather than silently falling back to its default.
EMPTY_MEANS_NONE = frozenset(
    {
        "allowedCidrs",
        "endpointPublicAccessCidrs",
        "availabilityZones",
        "gpuAvailabilityZone",
        "certificateArn",
        "vllmImage",
        "modelS3Uri",
        "hfTokenSecretName",
        "capacityReservationId",
        "adminPrincipalArn",
        "fsxThroughputPerTiB",
        "tensorParallelSize",
        "pipelineParallelSize",
        "maxModelLen",
        "modelWeightBytes",
        "modelLayers",
        "modelAttentionHeads",
        "modelKvHeads",
        "modelHeadDim",
        "modelMaxContext",
        "domainName",
        "hostedZoneId",
        "hostedZoneName",
        "wafAclArn",
        "alarmEmail",
        "placementGroupName",
    }
)
_EMPTY_HINT = "leave the key out for its default, or give a value"

# Architecture keys for a model that is not in the catalog (all or none).
MODEL_ARCHITECTURE_KEYS = {
    "modelWeightBytes": "weight_bytes",
    "modelLayers": "layers",
    "modelAttentionHeads": "attention_heads",
    "modelKvHeads": "kv_heads",
    "modelHeadDim": "head_dim",
    "modelMaxContext": "max_context",
}


@dataclass(frozen=True)
class Config:
    """Every setting the stacks read. Field names are the snake_case of the context keys."""

    kubernetes_version: str
    model_id: str
    model: ModelSpec | None
    gpu_instance_type: str
    instance: InstanceSpec
    gpu_node_count: int
    replicas: int
    distributed_executor: str
    vllm_image: str | None
    allowed_cidrs: tuple[str, ...]
    allowed_cidrs_defaulted: bool
    allow_public_internet: bool
    certificate_arn: str | None
    domain_name: str | None
    hosted_zone_id: str | None
    hosted_zone_name: str | None
    waf: bool
    waf_acl_arn: str | None
    waf_rate_limit: int
    access_log_retention_days: int
    access_log_removal_policy: str
    endpoint_scheme: str
    endpoint_public_access_cidrs: tuple[str, ...]
    fsx_deployment_type: str
    fsx_storage_gib: int
    fsx_throughput_per_tib: int | None
    fsx_removal_policy: str
    model_s3_uri: str | None
    capacity_reservation_id: str | None
    capacity_block: bool
    placement_group_name: str | None
    gpu_memory_utilization: float
    gpu_availability_zone: str | None
    availability_zones: tuple[str, ...]
    gpu_root_volume_gib: int
    admin_principal_arn: str | None
    hf_token_secret_name: str | None
    nat_gateways: int
    observability: bool
    alarm_email: str | None
    paused: bool
    plan: Plan

    @property
    def gpu_nodes_total(self) -> int:
        return self.replicas * self.gpu_node_count

    @property
    def https(self) -> bool:
        """TLS on the user's host name: settings validation guarantees a certificate for it."""
        return self.domain_name is not None

    @property
    def gpu_nodes_desired(self) -> int:
        """GPU nodes to run now: none while paused; the node group's maximum stays."""
        return 0 if self.paused else self.gpu_nodes_total

    @property
    def lws_replicas(self) -> int:
        return 0 if self.paused else self.replicas

    @property
    def served_model_name(self) -> str:
        """The name clients put in "model": the Hub id, or an S3 prefix's last segment."""
        if self.model_id.startswith("s3://"):
            return self.model_id.rstrip("/").rsplit("/", 1)[-1]
        return self.model_id


class _Reader:
    """Reads raw context values, parses CLI strings and records every problem it meets."""

    def __init__(self, context: Mapping[str, Any]) -> None:
        self.context = context
        self.problems: list[Problem] = []
        self.empty_refused: set[str] = set()

    def fail(self, key: str, value: Any, message: str, allowed: str = "") -> None:
        self.problems.append(Problem(key, value, message, allowed))

    def raw(self, key: str) -> Any:
        value = self.context.get(key)
        if isinstance(value, str) and not value.strip():
            if key not in EMPTY_MEANS_NONE and key not in self.empty_refused:
                self.empty_refused.add(key)
                self.fail(key, value, "empty, and this setting has no 'none' value", _EMPTY_HINT)
            return None
        return value

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.raw(key)
        return default if value is None else str(value).strip()

    def choice(self, key: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.text(key, default)
        if value not in allowed:
            self.fail(key, value, "not a supported value", ", ".join(allowed))
            return default
        return value

    def integer(
        self, key: str, default: int | None, minimum: int | None = None, maximum: int | None = None
    ) -> int | None:
        value = self.raw(key)
        if value is None:
            return default
        allowed = _range_text(minimum, maximum, "a whole number")
        try:
            number = _parse_int(value)
        except ValueError:
            self.fail(key, value, "not a whole number", allowed)
            return default
        if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            self.fail(key, value, "out of range", allowed)
            return default
        return number

    def number(self, key: str, default: float, minimum: float, maximum: float) -> float:
        value = self.raw(key)
        if value is None:
            return default
        allowed = f"a number from {minimum} to {maximum}"
        try:
            number = float(value) if not isinstance(value, bool) else float("nan")
        except (TypeError, ValueError):
            self.fail(key, value, "not a number", allowed)
            return default
        if not minimum <= number <= maximum:
            self.fail(key, value, "out of range", allowed)
            return default
        return number

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        lowered = str(value).strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        self.fail(key, value, "not a boolean", "true, false")
        return default

    def string_list(self, key: str) -> tuple[str, ...]:
        value = self.raw(key)
        if value is None:
            return ()
        if isinstance(value, (list, tuple)):
            return tuple(str(item).strip() for item in value)
        text = str(value).strip()
        if text.startswith("["):
            try:
                return tuple(str(item).strip() for item in json.loads(text))
            except (ValueError, TypeError):
                self.fail(key, value, "not a JSON list", "a JSON list or comma-separated values")
                return ()
        return tuple(item.strip() for item in text.split(",") if item.strip())

    def matching(self, key: str, pattern: str, allowed: str) -> str | None:
        value = self.text(key)
        if value is not None and not re.fullmatch(pattern, value):
            self.fail(key, value, "not in the expected form", allowed)
            return None
        return value


def _parse_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return int(str(value).strip())


def _range_text(minimum: int | None, maximum: int | None, noun: str) -> str:
    if minimum is not None and maximum is not None:
        return f"{noun} from {minimum} to {maximum}"
    if minimum is not None:
        return f"{noun} >= {minimum}"
    return noun


def _read_kubernetes_version(reader: _Reader, today: date) -> str:
    version = reader.text("kubernetesVersion", DEFAULT_KUBERNETES_VERSION)
    supported = sorted(
        (r for r in KUBERNETES_RELEASES.values() if r.end_of_extended_support > today),
        key=lambda r: tuple(int(part) for part in r.version.split(".")),
    )
    allowed = ", ".join(r.version for r in supported)
    release = KUBERNETES_RELEASES.get(version)
    if release is None:
        reader.fail("kubernetesVersion", version, "not a version this app knows", allowed)
        return DEFAULT_KUBERNETES_VERSION
    if release.end_of_extended_support <= today:
        reader.fail(
            "kubernetesVersion",
            version,
            f"EKS extended support ended on {release.end_of_extended_support.isoformat()}; "
            "new clusters cannot be created",
            allowed,
        )
        return DEFAULT_KUBERNETES_VERSION
    if importlib.util.find_spec(release.layer_module) is None:
        reader.fail(
            "kubernetesVersion",
            version,
            f"its kubectl layer package {release.layer_package} is not installed",
            f"run: {release.pip_install}",
        )
    return version


def kubernetes_version_warning(version: str, today: date | None = None) -> str | None:
    """A warning for versions in paid EKS extended support, else None."""
    release = KUBERNETES_RELEASES[version]
    if release.end_of_standard_support <= (today or date.today()):
        return (
            f"kubernetesVersion={version} is in EKS extended support (billed at a higher hourly "
            f"rate) until {release.end_of_extended_support.isoformat()}; "
            f"consider {DEFAULT_KUBERNETES_VERSION}"
        )
    return None


def _read_cidrs(reader: _Reader) -> tuple[tuple[str, ...], bool, bool]:
    cidrs = reader.string_list("allowedCidrs")
    allow_public = reader.flag("allowPublicInternet", False)
    for cidr in cidrs:
        try:
            network = ipaddress.ip_network(cidr, strict=True)
        except ValueError:
            reader.fail("allowedCidrs", cidr, "not a valid CIDR", "e.g. 203.0.113.7/32")
            continue
        if network.version != 4:
            reader.fail("allowedCidrs", cidr, "IPv6 is not supported by this VPC", "IPv4 CIDRs")
        elif network.prefixlen == 0 and not allow_public:
            reader.fail(
                "allowedCidrs",
                cidr,
                "opens the endpoint to the whole internet",
                "set allowPublicInternet=true to really do this",
            )
    if not cidrs:
        return (DOCUMENTATION_CIDR,), True, allow_public
    return cidrs, False, allow_public


def _read_model(reader: _Reader, model_id: str) -> ModelSpec | None:
    given = {key: reader.integer(key, None, minimum=1) for key in MODEL_ARCHITECTURE_KEYS}
    present = [key for key, value in given.items() if value is not None]
    if present and len(present) != len(given):
        missing = sorted(set(given) - set(present))
        reader.fail(
            "modelId",
            model_id,
            f"architecture keys must be given together; missing {', '.join(missing)}",
            ", ".join(MODEL_ARCHITECTURE_KEYS),
        )
        return MODELS.get(model_id)
    if present:
        numbers = {MODEL_ARCHITECTURE_KEYS[key]: value for key, value in given.items()}
        # Parameters are only reported, never sized on: assume 16-bit weights.
        return ModelSpec(model_id=model_id, parameters=numbers["weight_bytes"] // 2, **numbers)
    return MODELS.get(model_id)


def build_config(context: Mapping[str, Any], today: date | None = None) -> Config:
    """Validate every setting and return the Config, or raise one ConfigError listing all."""
    reader = _Reader(context)
    today = today or date.today()
    kubernetes_version = _read_kubernetes_version(reader, today)

    model_id = reader.text("modelId", "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B") or ""
    if not (
        re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", model_id)
        or re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?", model_id)
    ):
        reader.fail("modelId", model_id, "not a model id", "a Hugging Face id org/name or s3://")
    model = _read_model(reader, model_id)

    gpu_instance_type = reader.text("gpuInstanceType", "p4d.24xlarge") or ""
    instance = INSTANCES.get(gpu_instance_type)
    if instance is None:
        reader.fail(
            "gpuInstanceType",
            gpu_instance_type,
            "not in the instance catalog",
            ", ".join(INSTANCES),
        )
        instance = INSTANCES["p4d.24xlarge"]

    gpu_node_count = reader.integer("gpuNodeCount", 2, minimum=1, maximum=64)
    replicas = reader.integer("replicas", 1, minimum=1, maximum=64)
    allowed_cidrs, cidrs_defaulted, allow_public = _read_cidrs(reader)

    fsx_type = reader.choice("fsxDeploymentType", "SCRATCH_2", FSX_DEPLOYMENT_TYPES)
    fsx_storage = reader.integer("fsxStorageGiB", 1200, minimum=1200)
    if fsx_storage is not None and fsx_storage not in (1200, 2400) and fsx_storage % 2400:
        reader.fail(
            "fsxStorageGiB",
            fsx_storage,
            "not a valid FSx for Lustre capacity",
            "1200, 2400, then multiples of 2400",
        )
    fsx_throughput = reader.integer("fsxThroughputPerTiB", None)
    if fsx_type == "PERSISTENT_2":
        if fsx_throughput is None:
            fsx_throughput = 250
        elif fsx_throughput not in PERSISTENT_2_THROUGHPUTS:
            reader.fail(
                "fsxThroughputPerTiB",
                fsx_throughput,
                "not a PERSISTENT_2 tier",
                ", ".join(str(t) for t in PERSISTENT_2_THROUGHPUTS),
            )
    elif fsx_throughput is not None:
        reader.fail(
            "fsxThroughputPerTiB",
            fsx_throughput,
            f"{fsx_type} has fixed throughput",
            "unset, or fsxDeploymentType=PERSISTENT_2",
        )
    # DESTROY for every type: with modelS3Uri the file system is a cache of S3, without it the
    # weights come back from the Hub. RETAIN is an explicit choice (synth then lists the leftovers).
    fsx_removal_policy = reader.choice("fsxRemovalPolicy", "DESTROY", REMOVAL_POLICIES)

    model_s3_uri = reader.matching(
        "modelS3Uri", r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?", "s3://bucket/prefix"
    )
    if model_s3_uri is None and model_id.startswith("s3://"):
        model_s3_uri = model_id

    values = {
        "kubernetes_version": kubernetes_version,
        "model_id": model_id,
        "model": model,
        "gpu_instance_type": gpu_instance_type,
        "instance": instance,
        "gpu_node_count": gpu_node_count,
        "replicas": replicas,
        "distributed_executor": reader.choice("distributedExecutor", "mp", ("mp", "ray")),
        "vllm_image": reader.matching(
            "vllmImage",
            r"[a-z0-9.-]+(:[0-9]+)?/[\w./-]+(:[\w.-]+|@sha256:[0-9a-f]{64})",
            "registry/repository:tag or @sha256:digest",
        ),
        "allowed_cidrs": allowed_cidrs,
        "allowed_cidrs_defaulted": cidrs_defaulted,
        "allow_public_internet": allow_public,
        **_read_edge(reader),
        "endpoint_scheme": reader.choice(
            "endpointScheme", "internet-facing", ("internet-facing", "internal")
        ),
        "endpoint_public_access_cidrs": _read_endpoint_cidrs(reader, allowed_cidrs, allow_public),
        "fsx_deployment_type": fsx_type,
        "fsx_storage_gib": fsx_storage,
        "fsx_throughput_per_tib": fsx_throughput,
        "fsx_removal_policy": fsx_removal_policy,
        "model_s3_uri": model_s3_uri,
        "capacity_reservation_id": reader.matching(
            "capacityReservationId", r"cr-[0-9a-f]{8,17}", "cr- followed by 8-17 hex digits"
        ),
        "capacity_block": reader.flag("capacityBlock", False),
        "placement_group_name": reader.matching(
            "placementGroupName", r"[\w.:/+=@-]{1,255}", "the name of an existing placement group"
        ),
        "gpu_memory_utilization": reader.number("gpuMemoryUtilization", 0.90, 0.5, 0.95),
        "gpu_availability_zone": reader.matching(
            "gpuAvailabilityZone", r"[a-z]{2}(-[a-z]+)+-\d[a-z]", "an AZ name such as us-west-2a"
        ),
        "availability_zones": _read_availability_zones(reader),
        "gpu_root_volume_gib": reader.integer("gpuRootVolumeGiB", 200, minimum=200, maximum=16384),
        "admin_principal_arn": reader.matching(
            "adminPrincipalArn",
            r"arn:aws[\w-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+",
            "an IAM role or user ARN",
        ),
        "hf_token_secret_name": reader.matching(
            "hfTokenSecretName", r"[\w/+=.@-]{1,512}", "a Secrets Manager secret name"
        ),
        "nat_gateways": reader.integer("natGateways", 1, minimum=1, maximum=3),
        "observability": reader.flag("observability", True),
        "alarm_email": reader.matching(
            "alarmEmail", r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}", "an email address, e.g. ops@example.com"
        ),
        "paused": reader.flag("paused", False),
    }
    if values["distributed_executor"] == "ray" and reader.text("vllmImage") is None:
        # vLLM no longer installs Ray, and the default DLC does not add it.
        reader.fail(
            "distributedExecutor",
            "ray",
            "needs an image with Ray: set vllmImage",
            "mp, or ray with vllmImage=<an image that has Ray>",
        )
    if values["alarm_email"] and not values["observability"]:
        reader.fail(
            "alarmEmail",
            values["alarm_email"],
            "alarms exist only with observability on",
            "unset, or observability=true",
        )
    if values["capacity_block"] and not values["capacity_reservation_id"]:
        reader.fail(
            "capacityBlock",
            True,
            "a Capacity Block is used through its reservation",
            "also set capacityReservationId=cr-...",
        )
    if values["capacity_reservation_id"] and not values["gpu_availability_zone"]:
        reader.fail(
            "capacityReservationId",
            values["capacity_reservation_id"],
            "a reservation lives in one AZ, so the GPU nodes' AZ must be named",
            "also set gpuAvailabilityZone=<the reservation's AZ> and "
            "availabilityZones=<2+ AZs including it>",
        )

    tensor_parallel_size = reader.integer("tensorParallelSize", None, minimum=1)
    pipeline_parallel_size = reader.integer("pipelineParallelSize", None, minimum=1)
    max_model_len = reader.integer("maxModelLen", None, minimum=1)
    plan = None
    # The planner's numbers only mean something once every input above is valid.
    if not reader.problems:
        try:
            plan = plan_capacity(
                model=model,
                instance=instance,
                nodes=gpu_node_count,
                tensor_parallel_size=tensor_parallel_size,
                pipeline_parallel_size=pipeline_parallel_size,
                gpu_memory_utilization=values["gpu_memory_utilization"],
                max_model_len=max_model_len,
                fsx_throughput_mb_s=fsx_throughput_mb_s(fsx_type, fsx_storage, fsx_throughput),
            )
        except ConfigError as error:
            reader.problems.extend(error.problems)
    if reader.problems:
        raise ConfigError(reader.problems)
    return Config(plan=plan, **values)


def _read_availability_zones(reader: _Reader) -> tuple[str, ...]:
    zones = reader.string_list("availabilityZones")
    gpu_zone = reader.text("gpuAvailabilityZone")
    if zones and len(set(zones)) < 2:
        reader.fail(
            "availabilityZones",
            ",".join(zones),
            "EKS needs subnets in 2 or more AZs",
            "two or more AZ names, e.g. us-west-2a,us-west-2b",
        )
    if gpu_zone and gpu_zone not in zones:
        reader.fail(
            "gpuAvailabilityZone",
            gpu_zone,
            "must be one of availabilityZones (the stacks are region-agnostic, so the VPC's AZs "
            "are only known when named)",
            f"one of: {','.join(zones)}" if zones else "also set availabilityZones",
        )
    return zones


def _read_edge(reader: _Reader) -> dict[str, Any]:
    """Host name, certificate, DNS zone, WAF and access-log settings (constructs/secure_edge.py)."""
    certificate_arn = reader.matching(
        "certificateArn",
        r"arn:aws[\w-]*:acm:[\w-]+:\d{12}:certificate/[\w-]+",
        "an ACM certificate ARN",
    )
    domain_name = reader.matching("domainName", DNS_NAME, "a lower-case DNS name, api.example.com")
    zone_id = reader.matching("hostedZoneId", r"Z[A-Z0-9]{1,31}", "a Route 53 zone id, Z...")
    # Route 53 shows zone names with the root's trailing dot; either spelling is the zone.
    zone_name = reader.matching(
        "hostedZoneName", rf"{DNS_NAME}\.?", "the zone's DNS name, example.com"
    )
    zone_name = zone_name.rstrip(".") if zone_name else None
    # Pairing is checked on what was given, so a malformed id is reported once, as malformed.
    id_given, name_given = (
        reader.raw(key) is not None for key in ("hostedZoneId", "hostedZoneName")
    )
    if id_given and not name_given:
        reader.fail("hostedZoneId", zone_id, "needs the zone's name", "also set hostedZoneName")
    if name_given and not id_given:
        reader.fail("hostedZoneName", zone_name, "needs the zone's id", "also set hostedZoneId")
    if certificate_arn and not domain_name:
        reader.fail(
            "certificateArn",
            certificate_arn,
            "a certificate only matches the host name it was issued for",
            "also set domainName=<a name on the certificate>",
        )
    if domain_name and zone_name:
        if domain_name == zone_name:
            reader.fail(
                "domainName",
                domain_name,
                "the zone apex cannot hold the CNAME that points at the load balancer",
                f"a name inside the zone, e.g. api.{zone_name}",
            )
        elif not domain_name.endswith(f".{zone_name}"):
            reader.fail(
                "domainName",
                domain_name,
                f"not inside hostedZoneName={zone_name}",
                f"a name ending in .{zone_name}",
            )
    elif domain_name and not (zone_id or certificate_arn):
        reader.fail(
            "domainName",
            domain_name,
            "without a Route 53 zone the app cannot validate a certificate for it",
            "also set certificateArn, or hostedZoneId and hostedZoneName",
        )
    if (zone_id or zone_name) and not domain_name:
        reader.fail(
            "hostedZoneId" if zone_id else "hostedZoneName",
            zone_id or zone_name,
            "a zone is only used for the endpoint's host name",
            "also set domainName",
        )

    waf = reader.flag("waf", False)
    waf_acl_arn = reader.matching(
        "wafAclArn",
        r"arn:aws[\w-]*:wafv2:[\w-]+:\d{12}:regional/webacl/[\w-]+/[\w-]+",
        "a regional WAFv2 web ACL ARN",
    )
    if waf and waf_acl_arn:
        reader.fail(
            "wafAclArn",
            waf_acl_arn,
            "waf=true creates a web ACL and an ALB takes only one",
            "waf=true or wafAclArn, not both",
        )
    rate_given = reader.raw("wafRateLimit") is not None
    waf_rate_limit = reader.integer("wafRateLimit", DEFAULT_WAF_RATE_LIMIT, *WAF_RATE_LIMIT_RANGE)
    if rate_given and not waf:
        reader.fail(
            "wafRateLimit",
            waf_rate_limit,
            "only the web ACL the app creates has a rate rule",
            "also set waf=true",
        )
    return {
        "certificate_arn": certificate_arn,
        "domain_name": domain_name,
        "hosted_zone_id": zone_id,
        "hosted_zone_name": zone_name,
        "waf": waf,
        "waf_acl_arn": waf_acl_arn,
        "waf_rate_limit": waf_rate_limit,
        "access_log_retention_days": reader.integer(
            "accessLogRetentionDays", 90, minimum=1, maximum=3650
        ),
        "access_log_removal_policy": reader.choice(
            "accessLogRemovalPolicy", "DESTROY", REMOVAL_POLICIES
        ),
    }


def _read_endpoint_cidrs(
    reader: _Reader, allowed_cidrs: tuple[str, ...], allow_public: bool
) -> tuple[str, ...]:
    """The EKS API's public CIDRs: allowedCidrs unless given, never the world by accident."""
    cidrs = reader.string_list("endpointPublicAccessCidrs")
    if not cidrs:
        # Already checked under their own key.
        return allowed_cidrs
    for cidr in cidrs:
        try:
            network = ipaddress.IPv4Network(cidr, strict=True)
        except ValueError:
            reader.fail(
                "endpointPublicAccessCidrs", cidr, "not a valid IPv4 CIDR", "e.g. 203.0.113.0/24"
            )
            continue
        if network.prefixlen == 0 and not allow_public:
            reader.fail(
                "endpointPublicAccessCidrs",
                cidr,
                "opens the EKS API endpoint to the whole internet",
                "set allowPublicInternet=true to really do this",
            )
    return cidrs


KNOWN_KEYS = frozenset(
    {
        "kubernetesVersion",
        "modelId",
        "gpuInstanceType",
        "gpuNodeCount",
        "tensorParallelSize",
        "pipelineParallelSize",
        "maxModelLen",
        "distributedExecutor",
        "vllmImage",
        "allowedCidrs",
        "allowPublicInternet",
        "certificateArn",
        "domainName",
        "hostedZoneId",
        "hostedZoneName",
        "waf",
        "wafAclArn",
        "wafRateLimit",
        "accessLogRetentionDays",
        "accessLogRemovalPolicy",
        "fsxDeploymentType",
        "fsxStorageGiB",
        "fsxThroughputPerTiB",
        "modelS3Uri",
        "capacityReservationId",
        "replicas",
        "gpuMemoryUtilization",
        "gpuAvailabilityZone",
        "adminPrincipalArn",
        "endpointScheme",
        "hfTokenSecretName",
        "fsxRemovalPolicy",
        "endpointPublicAccessCidrs",
        "gpuRootVolumeGiB",
        "natGateways",
        "availabilityZones",
        "capacityBlock",
        "observability",
        "alarmEmail",
        "placementGroupName",
        "paused",
        *MODEL_ARCHITECTURE_KEYS,
    }
)


def _misspelt_keys(context: Mapping[str, Any]) -> list[Problem]:
    """Context keys that look like a typo of one of ours; CDK's own keys never come close."""
    problems = []
    for key in context:
        if key in KNOWN_KEYS:
            continue
        close = difflib.get_close_matches(key, KNOWN_KEYS, n=1, cutoff=0.8)
        if close:
            problems.append(
                Problem(
                    key,
                    context[key],
                    f"not a setting; did you mean {close[0]}?",
                    ", ".join(sorted(KNOWN_KEYS)),
                )
            )
    return problems


def config_from_context(context: Mapping[str, Any]) -> Config:
    """Build the Config from a whole context (cdk.json merged with -c), refusing typos."""
    problems = _misspelt_keys(context)
    if problems:
        raise ConfigError(problems)
    return build_config({key: context.get(key) for key in KNOWN_KEYS})


def read_cdk_json_context() -> dict[str, Any]:
    return json.loads((PROJECT_ROOT / "cdk.json").read_text())["context"]


def load_config_from_cli(argv: list[str]) -> Config:
    """Parse `-c key=value` like the CDK CLI does, on top of cdk.json's context."""
    context = read_cdk_json_context()
    args = iter(argv)
    for arg in args:
        if arg in ("-c", "--context"):
            pair = next(args, "")
        elif arg.startswith(("-c=", "--context=")):
            pair = arg.split("=", 1)[1]
        else:
            raise ConfigError([Problem("argument", arg, "not understood", "-c key=value")])
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise ConfigError([Problem("argument", pair, "not a setting", "-c key=value")])
        context[key] = value
    return config_from_context(context)
