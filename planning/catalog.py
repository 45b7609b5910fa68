"""Hardware and model facts shared by the node group, the workload and the capacity planner.

Instance figures are from the EC2 accelerated-computing instance pages (network bandwidth:
the "Network bandwidth (Gbps)" column of the EC2 accelerated computing specifications, as
written down in November 2026 and not re-checked against a live page since); model figures from
each model's config.json and safetensors index on Hugging Face.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GIB = 1024**3


@dataclass(frozen=True)
class InstanceSpec:
    """One GPU instance type: what the launch template and the pods must request."""

    name: str
    gpu_model: str
    gpus: int
    gpu_memory_gib: int
    vcpus: int
    memory_gib: int
    efa_interfaces: int
    # Network card 0 always carries an EFA+ENA interface at device index 0; the other cards
    # take what AWS documents for the family (EFA-only interfaces need no IP address).
    secondary_interface_type: str = "efa"
    secondary_device_index: int = 1
    bf16: bool = True
    # Aggregate network bandwidth of the instance in Gbit/s (all network cards): the most a
    # node can read from FSx while loading weights. "Up to" figures are the burst value.
    network_gbps: float = field(kw_only=True)

    @property
    def efa_gbps(self) -> float:
        """EFA line rate that `make nccl-test` compares bus bandwidth with; 0 without EFA."""
        return self.network_gbps if self.efa_interfaces else 0

    @property
    def gpu_memory_bytes(self) -> int:
        return self.gpu_memory_gib * GIB


@dataclass(frozen=True)
class ModelSpec:
    """Architecture numbers that decide how much GPU memory a model needs."""

    model_id: str
    parameters: int
    weight_bytes: int
    layers: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    max_context: int
    dtype_bytes: int = 2


INSTANCES: dict[str, InstanceSpec] = {
    spec.name: spec
    for spec in (
        # Network bandwidths (EFA line rates where the instance has EFA): p4d/p4de 4 x 100
        # Gbit/s, p5/p5e/p5en 3200, g6e.48xlarge 400 (EC2 accelerated-computing instance pages).
        InstanceSpec("p4d.24xlarge", "A100 40GB", 8, 40, 96, 1152, 4, network_gbps=400),
        InstanceSpec("p4de.24xlarge", "A100 80GB", 8, 80, 96, 1152, 4, network_gbps=400),
        InstanceSpec(
            "p5.48xlarge", "H100 80GB", 8, 80, 192, 2048, 32, "efa-only", network_gbps=3200
        ),
        InstanceSpec(
            "p5e.48xlarge", "H200 141GB", 8, 141, 192, 2048, 32, "efa-only", network_gbps=3200
        ),
        InstanceSpec(
            "p5en.48xlarge", "H200 141GB", 8, 141, 192, 2048, 16, "efa-only", network_gbps=3200
        ),
        InstanceSpec("g6e.48xlarge", "L40S 48GB", 8, 48, 192, 1536, 4, network_gbps=400),
        InstanceSpec("g5.xlarge", "A10G 24GB", 1, 24, 4, 16, 0, network_gbps=10),
    )
}

MODELS: dict[str, ModelSpec] = {
    spec.model_id: spec
    for spec in (
        ModelSpec(
            model_id="deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
            parameters=32_763_876_352,
            weight_bytes=65_527_841_532,
            layers=64,
            attention_heads=40,
            kv_heads=8,
            head_dim=128,
            max_context=131_072,
        ),
    )
}
