"""Preflight check 7: the vLLM image exists where the nodes will pull it from."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import ClientError

from config.settings import Config
from config.versions import DLC_REGISTRY_ACCOUNTS, VLLM_DLC_REPOSITORY, VLLM_DLC_TAG
from ops.aws import DENIED, error_code, error_text
from ops.report import Check, failed, passed, warned

ECR_URI = re.compile(
    r"(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[^:@]+)(?::(?P<tag>[\w.-]+)|@(?P<digest>sha256:[0-9a-f]{64}))"
)


@dataclass(frozen=True)
class EcrImage:
    uri: str
    account: str
    region: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def image_id(self) -> dict[str, str]:
        return {"imageDigest": self.digest} if self.digest else {"imageTag": self.tag or ""}

    @property
    def registry(self) -> str:
        return self.uri.split("/", 1)[0]


def vllm_image_uri(config: Config, region: str) -> str | None:
    """What the pods will pull: vllmImage, else the DLC in the region's registry (None: no DLC)."""
    if config.vllm_image:
        return config.vllm_image
    account = DLC_REGISTRY_ACCOUNTS.get(region)
    if account is None:
        return None
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{suffix}/{VLLM_DLC_REPOSITORY}:{VLLM_DLC_TAG}"


def parse_ecr_uri(uri: str) -> EcrImage | None:
    match = ECR_URI.fullmatch(uri)
    if match is None:
        return None
    return EcrImage(uri=uri, **match.groupdict())


def manual_check(image: EcrImage | None, uri: str) -> str:
    """The exact commands that check the image by hand, with the user's own registry login."""
    inspect = f"docker manifest inspect {uri}"
    if image is None:
        return f"`{inspect}`"
    login = (
        f"aws ecr get-login-password --region {image.region} | "
        f"docker login --username AWS --password-stdin {image.registry}"
    )
    return f"`{login} && {inspect}`"


def check_vllm_image(
    ecr_for_region: Callable[[str], object], config: Config, region: str, account: str
) -> Check:
    """`DescribeImages` in the image's registry; a refusal (another account's) is only a WARN."""
    uri = vllm_image_uri(config, region)
    if uri is None:
        return failed(
            "vLLM image",
            f"no AWS Deep Learning Containers registry is known for {region}",
            "set -c vllmImage=<registry>/<repository>:<tag> to an image the nodes can pull",
        )
    subject = f"vLLM image {uri}"
    image = parse_ecr_uri(uri)
    if image is None:
        return warned(subject, "not in Amazon ECR, so not checked here", manual_check(None, uri))
    ecr = ecr_for_region(image.region)
    try:
        details = ecr.describe_images(
            registryId=image.account, repositoryName=image.repository, imageIds=[image.image_id]
        )["imageDetails"]
    except ClientError as error:
        code = error_code(error)
        # Another account's registry may hide its repositories rather than refuse outright.
        hidden = code == "RepositoryNotFoundException" and image.account != account
        if code in DENIED or hidden:
            return warned(
                subject,
                f"ECR would not describe it from this account ({error_text(error)})",
                manual_check(image, uri),
            )
        if code in ("ImageNotFoundException", "RepositoryNotFoundException"):
            return failed(
                subject,
                f"not found ({error_text(error)})",
                "push it, or set -c vllmImage to a tag that exists in this region",
            )
        raise
    pushed = details[0].get("imagePushedAt") if details else None
    when = f", pushed {pushed:%Y-%m-%d}" if pushed else ""
    return passed(subject, f"found in {image.region}{when}")
