"""Every pinned component version lives here (Python deps: requirements.txt; CLI: package.json)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class KubernetesRelease:
    version: str
    end_of_standard_support: date
    end_of_extended_support: date
    # PyPI package of the kubectl/helm Lambda layer, and the class it exports.
    layer_package: str
    layer_package_version: str
    layer_module: str
    layer_class: str

    @property
    def pip_install(self) -> str:
        return f".venv/bin/pip install '{self.layer_package}=={self.layer_package_version}'"


def _release(
    version: str, standard: date, extended: date, layer: int, layer_version: str
) -> KubernetesRelease:
    return KubernetesRelease(
        version=version,
        end_of_standard_support=standard,
        end_of_extended_support=extended,
        layer_package=f"aws-cdk.lambda-layer-kubectl-v{layer}",
        layer_package_version=layer_version,
        layer_module=f"aws_cdk.lambda_layer_kubectl_v{layer}",
        layer_class=f"KubectlV{layer}Layer",
    )


# EKS support calendar. kubectl is supported within one minor version of the cluster, so
# 1.32 keeps the v31 layer for users who must stay there; newer versions use their own.
KUBERNETES_RELEASES: dict[str, KubernetesRelease] = {
    release.version: release
    for release in (
        _release("1.31", date(2025, 11, 26), date(2026, 11, 26), 31, "2.1.0"),
        _release("1.32", date(2026, 3, 23), date(2027, 3, 23), 31, "2.1.0"),
        _release("1.33", date(2026, 7, 29), date(2027, 7, 29), 33, "2.2.2"),
        _release("1.34", date(2026, 12, 2), date(2027, 12, 2), 34, "2.2.2"),
        _release("1.35", date(2027, 3, 27), date(2028, 3, 27), 35, "2.2.2"),
    )
}
DEFAULT_KUBERNETES_VERSION = "1.35"


@dataclass(frozen=True)
class AddonVersions:
    vpc_cni: str
    coredns: str
    kube_proxy: str
    pod_identity_agent: str

    def by_addon_name(self) -> dict[str, str]:
        return {
            "vpc-cni": self.vpc_cni,
            "kube-proxy": self.kube_proxy,
            "eks-pod-identity-agent": self.pod_identity_agent,
            "coredns": self.coredns,
        }


# EKS managed add-on builds per Kubernetes version (EKS user guide add-on tables, Nov 2026).
# Check with `aws eks describe-addon-versions --kubernetes-version V --addon-name NAME`.
EKS_ADDONS: dict[str, AddonVersions] = {
    "1.32": AddonVersions(
        "v1.21.1-eksbuild.8", "v1.11.4-eksbuild.24", "v1.32.13-eksbuild.16", "v1.3.10-eksbuild.2"
    ),
    "1.33": AddonVersions(
        "v1.21.1-eksbuild.8", "v1.12.4-eksbuild.1", "v1.33.10-eksbuild.13", "v1.3.10-eksbuild.2"
    ),
    "1.34": AddonVersions(
        "v1.21.1-eksbuild.8", "v1.13.2-eksbuild.7", "v1.34.6-eksbuild.13", "v1.3.10-eksbuild.2"
    ),
    "1.35": AddonVersions(
        "v1.21.1-eksbuild.8", "v1.14.2-eksbuild.4", "v1.35.3-eksbuild.13", "v1.3.10-eksbuild.2"
    ),
}


# amazon-cloudwatch-observability add-on (Container Insights with enhanced observability).
# NVIDIA GPU (its own DCGM exporter) and EFA metrics need no more than this build; Pod
# Identity for its agent needs v3.1.0+ (CloudWatch user guide, "Quick start with the Amazon
# CloudWatch Observability EKS add-on"). v6.2.0-eksbuild.1 is named in that guide; the same
# build serves every Kubernetes version here. Check with `aws eks describe-addon-versions
# --addon-name amazon-cloudwatch-observability --kubernetes-version V`.
CLOUDWATCH_OBSERVABILITY_ADDON = "amazon-cloudwatch-observability"
CLOUDWATCH_OBSERVABILITY_VERSIONS: dict[str, str] = {
    version: "v6.2.0-eksbuild.1" for version in ("1.32", "1.33", "1.34", "1.35")
}


@dataclass(frozen=True)
class ChartPin:
    release: str
    repository: str
    chart: str
    version: str
    namespace: str


# OCI charts: `repository` is the full chart reference (the kubectl handler pulls it as is).
CHARTS: dict[str, ChartPin] = {
    pin.release: pin
    for pin in (
        ChartPin(
            "aws-fsx-csi-driver",
            "https://kubernetes-sigs.github.io/aws-fsx-csi-driver",
            "aws-fsx-csi-driver",
            "1.17.0",
            "kube-system",
        ),
        ChartPin("lws", "oci://registry.k8s.io/lws/charts/lws", "lws", "0.10.0", "lws-system"),
        ChartPin(
            "nvidia-device-plugin",
            "https://nvidia.github.io/k8s-device-plugin",
            "nvidia-device-plugin",
            "0.19.3",
            "kube-system",
        ),
        ChartPin(
            "aws-efa-k8s-device-plugin",
            "https://aws.github.io/eks-charts",
            "aws-efa-k8s-device-plugin",
            "v0.5.30",
            "kube-system",
        ),
        ChartPin(
            "secrets-store-csi-driver",
            "https://kubernetes-sigs.github.io/secrets-store-csi-driver/charts",
            "secrets-store-csi-driver",
            "1.6.0",
            "kube-system",
        ),
        ChartPin(
            "secrets-store-csi-driver-provider-aws",
            "https://aws.github.io/secrets-store-csi-driver-provider-aws",
            "secrets-store-csi-driver-provider-aws",
            # Newest in the chart repository's index.yaml (gh-pages) in Nov 2026; 3.2.0 is not.
            "3.1.1",
            "kube-system",
        ),
    )
}

# aws-cdk-lib bundles the controller's IAM policy per version; V3_2_2 is the newest it has.
ALB_CONTROLLER_VERSION = "V3_2_2"
ALB_CONTROLLER_IMAGE = "public.ecr.aws/eks/aws-load-balancer-controller"

# AWS vLLM Deep Learning Container (ENTRYPOINT is `vllm serve "$@"`). The full tag: the
# short `0.27.1-gpu-py312-ec2` is re-pushed on every rebuild. CUDA 13.0: NVIDIA driver >= 580.
VLLM_DLC_REPOSITORY = "vllm"
VLLM_DLC_TAG = "0.27.1-gpu-py312-cu130-ubuntu22.04-ec2"
# Jobs on the small system nodes (model staging, the LWS webhook check) use a small Python
# image, not the DLC; staging installs exactly these PyPI releases (hf_xet speeds up Hub
# downloads).
PYTHON_IMAGE = "public.ecr.aws/docker/library/python:3.12.12-slim-bookworm"
STAGING_PIP_PACKAGES = ("huggingface-hub==2.4.0", "hf-xet==1.8.0", "awscli==1.46.2")

# Registry account of the AWS Deep Learning Containers per region (DLC region_availability).
_DLC_DEFAULT_ACCOUNT = "763104351884"
DLC_REGISTRY_ACCOUNTS: dict[str, str] = {
    **{
        region: _DLC_DEFAULT_ACCOUNT
        for region in (
            "us-east-1",
            "us-east-2",
            "us-west-1",
            "us-west-2",
            "ap-south-1",
            "ap-northeast-1",
            "ap-northeast-2",
            "ap-southeast-1",
            "ap-southeast-2",
            "ca-central-1",
            "eu-central-1",
            "eu-west-1",
            "eu-west-2",
            "eu-west-3",
            "eu-north-1",
            "sa-east-1",
        )
    },
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-east-2": "975050140332",
    "ap-south-2": "772153158452",
    "ap-southeast-3": "907027046896",
    "ap-southeast-4": "457447274322",
    "ap-southeast-5": "550225433462",
    "ap-southeast-6": "633930458069",
    "ap-southeast-7": "590183813437",
    "ap-northeast-3": "364406365360",
    "ca-west-1": "204538143572",
    "eu-south-1": "692866216735",
    "eu-south-2": "503227376785",
    "eu-central-2": "380420809688",
    "il-central-1": "780543022126",
    "mx-central-1": "637423239942",
    "me-south-1": "217643126080",
    "me-central-1": "914824155844",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
}
