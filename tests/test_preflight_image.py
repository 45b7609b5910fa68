"""Preflight check 7: the vLLM image exists in ECR, or the report says how to check it by hand."""

from __future__ import annotations

import json

from botocore.stub import Stubber
from ops_fixtures import ACCOUNT, REGION, config_with

from config.versions import VLLM_DLC_REPOSITORY, VLLM_DLC_TAG
from ops.aws import client, session
from ops.preflight_image import check_vllm_image, parse_ecr_uri, vllm_image_uri
from ops.report import Status

OWN_IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/vllm-custom:v1"


def _push(aws, repository: str, tag: str) -> None:
    ecr = client(aws, "ecr")
    ecr.create_repository(repositoryName=repository)
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}
    ecr.put_image(repositoryName=repository, imageManifest=json.dumps(manifest), imageTag=tag)


def _ecr_for():
    return lambda region: client(session(region), "ecr")


def test_given_no_vllm_image_when_resolved_then_the_regions_dlc_registry_is_used():
    """Same URI the workload's CfnMapping builds (config/versions.py DLC_REGISTRY_ACCOUNTS)."""
    assert vllm_image_uri(config_with(), "af-south-1") == (
        f"626614931356.dkr.ecr.af-south-1.amazonaws.com/{VLLM_DLC_REPOSITORY}:{VLLM_DLC_TAG}"
    )
    assert vllm_image_uri(config_with(), "cn-north-1").startswith(
        "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/"
    )
    assert vllm_image_uri(config_with(), "xx-nowhere-1") is None


def test_given_an_own_image_that_exists_when_checked_then_pass(aws, aws_env):
    _push(aws, "vllm-custom", "v1")
    check = check_vllm_image(_ecr_for(), config_with(f"vllmImage={OWN_IMAGE}"), REGION, ACCOUNT)
    assert check.status is Status.PASS
    assert f"found in {REGION}" in check.detail


def test_given_an_own_image_with_a_missing_tag_when_checked_then_fail(aws, aws_env):
    _push(aws, "vllm-custom", "v0")
    check = check_vllm_image(_ecr_for(), config_with(f"vllmImage={OWN_IMAGE}"), REGION, ACCOUNT)
    assert check.status is Status.FAIL
    assert "ImageNotFoundException" in check.detail


def test_given_the_dlc_in_another_account_when_ecr_hides_it_then_warn_with_exact_commands(
    aws, aws_env
):
    check = check_vllm_image(_ecr_for(), config_with(), REGION, ACCOUNT)
    uri = f"763104351884.dkr.ecr.{REGION}.amazonaws.com/{VLLM_DLC_REPOSITORY}:{VLLM_DLC_TAG}"
    assert check.status is Status.WARN
    assert check.fix == (
        f"`aws ecr get-login-password --region {REGION} | docker login --username AWS "
        f"--password-stdin 763104351884.dkr.ecr.{REGION}.amazonaws.com && "
        f"docker manifest inspect {uri}`"
    )


def test_given_ecr_refuses_when_checked_then_warn_not_fail(aws, aws_env):
    ecr = client(aws, "ecr")
    with Stubber(ecr) as stub:
        stub.add_client_error("describe_images", "AccessDeniedException", "not authorized")
        check = check_vllm_image(lambda region: ecr, config_with(), REGION, ACCOUNT)
    assert check.status is Status.WARN
    assert "docker manifest inspect" in check.fix


def test_given_an_image_outside_ecr_when_checked_then_warn_with_docker_command():
    image = "docker.io/vllm/vllm-openai:v0.27.1"
    check = check_vllm_image(
        lambda region: None, config_with(f"vllmImage={image}"), REGION, ACCOUNT
    )
    assert check.status is Status.WARN
    assert check.fix == f"`docker manifest inspect {image}`"


def test_given_a_region_without_dlc_when_checked_then_fail_asking_for_vllm_image():
    check = check_vllm_image(lambda region: None, config_with(), "xx-nowhere-1", ACCOUNT)
    assert check.status is Status.FAIL
    assert "vllmImage" in check.fix


def test_given_ecr_uris_when_parsed_then_tag_digest_and_region_are_found():
    digest = "sha256:" + "a" * 64
    by_digest = parse_ecr_uri(f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/team/vllm@{digest}")
    assert by_digest is not None
    assert (by_digest.region, by_digest.repository, by_digest.image_id) == (
        "eu-west-1",
        "team/vllm",
        {"imageDigest": digest},
    )
    assert parse_ecr_uri("ghcr.io/org/vllm:1") is None
