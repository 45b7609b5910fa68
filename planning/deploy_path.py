"""Time to first token: the deploy's critical path, computed from the configuration.

The path follows the dependency graph the app builds: ClusterStack, then GpuNodeGroupStack and
FsxStack side by side (`cdk deploy --all --concurrency 4`), then WorkloadStack, whose
controllers come first; after them the LeaderWorkerSet pods pull the vLLM image while the
staging Job fills the file system (their init container waits for the Job's marker), then vLLM
reads the weights, starts its engine and the ALB sees it healthy.

Every stage is a range in minutes, (fastest, slowest). Each rate below names its source; an
"assumption" is a stated estimate where no source in reach gave a figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from planning.prices import HOURS_PER_MONTH, fsx_price

MB = 1_000_000
MINUTE = 60

# The cold model load `make plan` aims for: vLLM reads its weights in under two minutes.
COLD_LOAD_TARGET_MIN = 2.0


@dataclass(frozen=True)
class Span:
    """Minutes from the fastest to the slowest expected case."""

    low: float
    high: float

    def __add__(self, other: Span) -> Span:
        return Span(self.low + other.low, self.high + other.high)

    def text(self) -> str:
        low, high = f"{self.low:.1f}", f"{self.high:.1f}"
        return low if low == high else f"{low}-{high}"


NONE = Span(0.0, 0.0)


def _seconds(low: float, high: float) -> Span:
    return Span(low / MINUTE, high / MINUTE)


def _longest(*spans: Span) -> Span:
    """Branches that run side by side finish with the slowest one."""
    return Span(max(s.low for s in spans), max(s.high for s in spans))


# --- durations ------------------------------------------------------------------------------

# DESIGN section 9, the seed's README (the AWS sample this app replaces): EKS cluster 15-20,
# GPU node group 10-15 (instance boot and node join, nodeadm on AL2023), FSx 5-10 (SCRATCH_2,
# 1.2 TiB), ALB 2-5 minutes.
CLUSTER = Span(15, 20)
GPU_NODE_GROUP = Span(10, 15)
SCRATCH_FSX_CREATE = Span(5, 10)
ALB_CREATE = Span(2, 5)
# Assumption: the seed's nodes did not install lustre-client; our user data installs it with
# dnf from the AL2023 repository before nodeadm joins the node (DESIGN section 8).
LUSTRE_CLIENT_INSTALL = Span(0.5, 1.5)
# Assumption (no published figure): PERSISTENT_2 replicates its storage within the AZ, so it
# is taken to create up to twice as slowly as SCRATCH_2; each 2.4 TiB beyond the first adds up
# to a minute of file servers; a data repository association (modelS3Uri) adds its own
# creation and the metadata import of the model's few files.
PERSISTENT_FSX_CREATE = Span(5, 20)
FSX_CREATE_PER_EXTRA_2400_GIB = Span(0, 1)
DATA_REPOSITORY_ASSOCIATION = Span(1, 5)
# Assumption: the kubectl provider installs the Helm charts (LB controller, FSx CSI, LWS, device
# plugins, Secrets Store) mostly in parallel, one to a few minutes each.
CONTROLLERS = Span(2, 5)
# AWS Machine Learning Blog, "Reducing container cold start times using SOCI index on DLAMI and
# DLC" (2026): "Standard Docker image pulls of 15-20 GB can take 4-6 minutes per instance".
# Assumption: the pinned vLLM DLC is in that range (its compressed size was not found); the
# same figures give the pull rate, 15 GB in 4 min to 20 GB in 6 min.
IMAGE_GB = (15.0, 20.0)
IMAGE_PULL_MB_S = (62.5, 55.5)
IMAGE_PULL = Span(
    IMAGE_GB[0] * 1000 / IMAGE_PULL_MB_S[0] / MINUTE,
    IMAGE_GB[1] * 1000 / IMAGE_PULL_MB_S[1] / MINUTE,
)
# Assumption: the staging Job's pod pulls python:3.12-slim (tens of MB) and pip-installs the
# pinned huggingface-hub, hf-xet and awscli before it copies anything.
STAGING_SETUP = Span(0.5, 1.5)
# Hub downloads: fast case from Hugging Face's own Xet benchmark (h-m-t-hf-buckets-benchmark
# space: hf-xet 1.4.2 on m5dn.24xlarge in us-east-1, ~400 MB/s for 50-100 GB); slow case an
# assumption for the small system node (m7i.xlarge, up to 12.5 Gbit/s) in another region.
HUB_DOWNLOAD_MB_S = (400.0, 100.0)
# Assumption: `aws s3 sync` (AWS CLI v1, 10 concurrent requests by default) on one system node
# in the bucket's region; the same benchmark read S3 at ~400 MB/s from a 100 Gbit/s host.
S3_SYNC_MB_S = (300.0, 150.0)
# FSx for Lustre user guide, "Performance characteristics of SSD and HDD storage classes", SSD
# table, MB/s per TiB: disk throughput is what bounds data that is not in the file servers'
# RAM cache (6.7 GiB per TiB on SCRATCH_2, far less than a model): SCRATCH_2 disks read 200
# and write 100; PERSISTENT_2 disks run at the tier, 125 and 250 bursting to 500. Network
# throughput (SCRATCH_2 200/1300, PERSISTENT 320/1300, 640/1300, 1300, 2600) is never lower.
# Keyed like prices.FSX_GB_MONTH; values are (burst, baseline).
FSX_DISK_READ_PER_TIB = {
    "SCRATCH_2": (200, 200),
    "PERSISTENT_2-125": (500, 125),
    "PERSISTENT_2-250": (500, 250),
    "PERSISTENT_2-500": (500, 500),
    "PERSISTENT_2-1000": (1000, 1000),
}
FSX_DISK_WRITE_PER_TIB = {**FSX_DISK_READ_PER_TIB, "SCRATCH_2": (100, 100)}
# Engine start, per start of the group. torch.compile: route179.dev, "Optimizing vLLM cold
# start with model streaming and compile caching" (June 2026) measured ~39 s for a 35B model on
# one GPU; assumption 0.5-2 min for our sizes. With the compile cache on the file system a
# start loads the compiled artifacts instead: Baseten's "Torch compile caching" docs give
# 5-20 s. CUDA graphs are captured again at every start (vLLM keeps no graph on disk) and the
# distributed init and memory profiling run every time: assumptions.
COMPILE_COLD = Span(0.5, 2.0)
COMPILE_WARM = _seconds(5, 20)
CUDA_GRAPH_CAPTURE = Span(0.25, 1.0)
ENGINE_INIT = Span(0.5, 1.0)
# AWS Load Balancer Controller defaults: health check every 15 s, 2 successes to be healthy.
TARGET_HEALTHY = Span(0.5, 1.0)
# Assumption: LWS recreates the group's pods on the same nodes, whose image is cached.
POD_RESTART = Span(0.25, 0.5)


# --- the path -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    label: str
    span: Span


@dataclass(frozen=True)
class Step:
    """One row of the path: a stage, or stages that run side by side."""

    branches: tuple[Stage, ...]

    @property
    def span(self) -> Span:
        return _longest(*(stage.span for stage in self.branches))

    @property
    def label(self) -> str:
        if len(self.branches) == 1:
            return self.branches[0].label
        return " || ".join(f"{stage.label} {stage.span.text()}" for stage in self.branches)


def _total(steps: tuple[Step, ...]) -> Span:
    total = NONE
    for step in steps:
        total += step.span
    return total


@dataclass(frozen=True)
class DeployPath:
    cold: tuple[Step, ...]
    restart: tuple[Step, ...]
    cold_load: Span | None
    fsx_read_mb_s: tuple[float, float]
    load_bound_by_network: bool

    @property
    def cold_total(self) -> Span:
        return _total(self.cold)

    @property
    def restart_total(self) -> Span:
        return _total(self.restart)


def _per_tib_key(deployment_type: str, throughput_per_tib: int | None) -> str:
    if deployment_type == "PERSISTENT_2":
        return f"PERSISTENT_2-{throughput_per_tib}"
    return deployment_type


def fsx_rate_mb_s(
    table: dict[str, tuple[int, int]],
    deployment_type: str,
    storage_gib: int,
    throughput_per_tib: int | None,
) -> tuple[float, float]:
    """(burst, baseline) MB/s of the whole file system from a per-TiB table."""
    fast, slow = table[_per_tib_key(deployment_type, throughput_per_tib)]
    tib = storage_gib / 1024
    return fast * tib, slow * tib


def fsx_create(deployment_type: str, storage_gib: int, s3_repository: bool) -> Span:
    base = SCRATCH_FSX_CREATE if deployment_type == "SCRATCH_2" else PERSISTENT_FSX_CREATE
    extra = max(0, storage_gib - 2400) // 2400
    per = FSX_CREATE_PER_EXTRA_2400_GIB
    span = base + Span(extra * per.low, extra * per.high)
    return span + DATA_REPOSITORY_ASSOCIATION if s3_repository else span


def _minutes(size_bytes: float, rates_mb_s: tuple[float, float]) -> Span:
    return Span(
        size_bytes / (rates_mb_s[0] * MB) / MINUTE, size_bytes / (rates_mb_s[1] * MB) / MINUTE
    )


def _rates_min(*rates: tuple[float, float]) -> tuple[float, float]:
    """A transfer runs at the slowest of the links it crosses, case by case."""
    return min(r[0] for r in rates), min(r[1] for r in rates)


def staging(config: Any) -> Stage:
    """The staging Job: download or copy the weights, writing them at the file system's rate."""
    s3_repository = bool(config.model_s3_uri) and config.fsx_deployment_type == "PERSISTENT_2"
    write = fsx_rate_mb_s(
        FSX_DISK_WRITE_PER_TIB,
        config.fsx_deployment_type,
        config.fsx_storage_gib,
        config.fsx_throughput_per_tib,
    )
    if s3_repository:
        # The association loads each file from S3 on first read; the Job reads every file once,
        # so the file system's own import, bounded by its disks, sets the pace (assumption).
        label, rates = "S3 lazy load", write
    elif config.model_s3_uri:
        label, rates = "S3 copy", _rates_min(S3_SYNC_MB_S, write)
    else:
        label, rates = "Hub download", _rates_min(HUB_DOWNLOAD_MB_S, write)
    if config.model is None:
        return Stage(f"{label} (size unknown)", STAGING_SETUP)
    slow, fast = f"{rates[1]:,.0f}", f"{rates[0]:,.0f}"
    rate_text = slow if slow == fast else f"{slow}-{fast}"
    return Stage(
        f"{label} {rate_text} MB/s", STAGING_SETUP + _minutes(config.model.weight_bytes, rates)
    )


def weight_load(config: Any, read_mb_s: tuple[float, float]) -> tuple[Span | None, bool]:
    """Minutes for the GPUs to read their weights from FSx, and whether the node network binds.

    Each node reads the layers of its pipeline stage(s) once: its TP ranks share the node's
    page cache. A node holds weight / min(nodes, PP) bytes (TP spanning nodes makes every node
    of a stage read the whole stage). All nodes of all replicas read at once from FSx, and each
    node is also bounded by its own network bandwidth.
    """
    if config.model is None:
        return None, False
    nodes = config.gpu_node_count
    per_node = config.model.weight_bytes / min(nodes, config.plan.pipeline_parallel_size)
    total = per_node * nodes * config.replicas
    file_system = _minutes(total, read_mb_s)
    node_mb_s = config.instance.network_gbps * 1000 / 8
    network = _minutes(per_node, (node_mb_s, node_mb_s))
    return _longest(file_system, network), network.high > file_system.high


def engine_start(warm: bool) -> Stage:
    compile_span = COMPILE_WARM if warm else COMPILE_COLD
    span = compile_span + CUDA_GRAPH_CAPTURE + ENGINE_INIT
    cache = "compile cache hit" if warm else "torch.compile"
    return Stage(f"engine start ({cache}, CUDA graphs, init)", span)


def deploy_path(config: Any) -> DeployPath:
    """The cold deploy's critical path and a restart's path, from the configuration."""
    s3_repository = bool(config.model_s3_uri) and config.fsx_deployment_type == "PERSISTENT_2"
    read = fsx_rate_mb_s(
        FSX_DISK_READ_PER_TIB,
        config.fsx_deployment_type,
        config.fsx_storage_gib,
        config.fsx_throughput_per_tib,
    )
    load, network_bound = weight_load(config, read)
    if load is None:
        load_stage = Stage("weight load (size unknown)", NONE)
    else:
        via = "node network" if network_bound else f"{read[1]:,.0f} MB/s baseline"
        load_stage = Stage(
            f"weight load {config.model.weight_bytes / 1e9:.1f} GB x {config.replicas} ({via})",
            load,
        )
    cold = (
        Step((Stage("ClusterStack", CLUSTER),)),
        Step(
            (
                Stage("GpuNodeGroupStack", GPU_NODE_GROUP + LUSTRE_CLIENT_INSTALL),
                Stage(
                    f"FsxStack {config.fsx_deployment_type}",
                    fsx_create(config.fsx_deployment_type, config.fsx_storage_gib, s3_repository),
                ),
            )
        ),
        Step((Stage("WorkloadStack controllers", CONTROLLERS),)),
        Step((Stage("image pull", IMAGE_PULL), staging(config), Stage("ALB", ALB_CREATE))),
        Step((load_stage,)),
        Step((engine_start(warm=False),)),
        Step((Stage("ALB target healthy", TARGET_HEALTHY),)),
    )
    restart = (
        Step((Stage("pods recreated (image cached, weights staged)", POD_RESTART),)),
        Step((load_stage,)),
        Step((engine_start(warm=True),)),
        Step((Stage("ALB target healthy", TARGET_HEALTHY),)),
    )
    return DeployPath(cold, restart, load, read, network_bound)


# --- the cheapest file system that meets the cold-load target ---------------------------------

# FSx for Lustre capacities this app accepts (1200, 2400, then steps of 2400), searched up to
# the 100,800 GiB the SageMaker FSxLustreConfig API allows.
MAX_SEARCH_GIB = 100_800
PERSISTENT_2_TIERS = (125, 250, 500, 1000)


@dataclass(frozen=True)
class FsxOption:
    deployment_type: str
    storage_gib: int
    throughput_per_tib: int | None

    @property
    def settings(self) -> str:
        text = f"-c fsxDeploymentType={self.deployment_type} -c fsxStorageGiB={self.storage_gib}"
        if self.throughput_per_tib:
            text += f" -c fsxThroughputPerTiB={self.throughput_per_tib}"
        return text

    def usd_per_hour(self) -> float:
        price = fsx_price(self.deployment_type, self.throughput_per_tib)
        return self.storage_gib * price.usd / HOURS_PER_MONTH

    def confirmed_price(self) -> bool:
        return fsx_price(self.deployment_type, self.throughput_per_tib).confirmed


def fsx_options() -> list[FsxOption]:
    sizes = [1200, *range(2400, MAX_SEARCH_GIB + 1, 2400)]
    options = [FsxOption("SCRATCH_2", size, None) for size in sizes]
    options += [
        FsxOption("PERSISTENT_2", size, tier) for tier in PERSISTENT_2_TIERS for size in sizes
    ]
    return options


@dataclass(frozen=True)
class Recommendation:
    current_load: Span
    option: FsxOption | None
    option_load: Span | None
    extra_usd_per_hour: float
    confirmed: bool

    @property
    def met_now(self) -> bool:
        return self.current_load.high < COLD_LOAD_TARGET_MIN


def _load_with(config: Any, option: FsxOption) -> Span | None:
    read = fsx_rate_mb_s(
        FSX_DISK_READ_PER_TIB, option.deployment_type, option.storage_gib, option.throughput_per_tib
    )
    return weight_load(config, read)[0]


def recommend(config: Any) -> Recommendation | None:
    """The cheapest file system whose baseline cold load stays under the target, or None.

    None when the model's size is unknown. The option must also hold the weights.
    """
    current = FsxOption(
        config.fsx_deployment_type, config.fsx_storage_gib, config.fsx_throughput_per_tib
    )
    current_load = _load_with(config, current)
    if current_load is None:
        return None
    meeting = []
    for option in fsx_options():
        if option.storage_gib * 1024**3 < config.model.weight_bytes:
            continue
        load = _load_with(config, option)
        if load.high < COLD_LOAD_TARGET_MIN:
            meeting.append((option.usd_per_hour(), load.high, option, load))
    if not meeting:
        return Recommendation(current_load, None, None, 0.0, True)
    cost, _, option, load = min(meeting, key=lambda item: (item[0], item[1]))
    return Recommendation(
        current_load,
        option,
        load,
        cost - current.usd_per_hour(),
        option.confirmed_price() and current.confirmed_price(),
    )
