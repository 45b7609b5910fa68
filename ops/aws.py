"""The boto3 session every operator command shares, and the deployed stacks' outputs."""

from __future__ import annotations

import re
from collections.abc import Iterable

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

# Throttling and transient faults are retried by botocore itself (standard mode).
RETRIES = BotoConfig(retries={"mode": "standard", "max_attempts": 5})

# Errors a person can act on without a traceback: no credentials, no region, access denied.
AWS_ERRORS: tuple[type[Exception], ...] = (BotoCoreError, ClientError)


class AwsUnavailable(Exception):
    """AWS cannot be asked at all (no credentials, no region): one line, no traceback."""


def session(region: str | None = None, profile: str | None = None) -> boto3.Session:
    """A session for the region given, else the one the environment or profile sets."""
    result = boto3.Session(region_name=region, profile_name=profile)
    if not result.region_name:
        raise AwsUnavailable(
            "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION) or a region in your profile"
        )
    if result.get_credentials() is None:
        raise AwsUnavailable(
            "no AWS credentials found: run `aws configure`, `aws sso login` or export "
            "AWS_PROFILE / AWS_ACCESS_KEY_ID"
        )
    return result


def client(aws: boto3.Session, service: str):  # noqa: ANN201 - boto3 clients are untyped
    return aws.client(service, config=RETRIES)


def error_text(error: Exception) -> str:
    """The AWS error code and message, or botocore's own sentence."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'Error')}: {details.get('Message', '')}".strip()
    if isinstance(error, NoCredentialsError):
        return "no AWS credentials found"
    if isinstance(error, NoRegionError):
        return "no AWS region set"
    return str(error)


def stack_outputs(aws: boto3.Session, stack_names: Iterable[str]) -> dict[str, dict[str, str]]:
    """Outputs of each named stack (OutputKey -> OutputValue); a missing stack maps to {}."""
    cloudformation = client(aws, "cloudformation")
    outputs: dict[str, dict[str, str]] = {}
    for name in stack_names:
        try:
            stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
        except ClientError as error:
            if "does not exist" in error_text(error):
                outputs[name] = {}
                continue
            raise
        outputs[name] = {
            output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])
        }
    return outputs


def find_output(outputs: dict[str, str], name: str) -> str | None:
    """An output by the id given in code: CDK appends an 8-character hash to nested ones."""
    if name in outputs:
        return outputs[name]
    for key, value in outputs.items():
        if re.fullmatch(rf"\w*{re.escape(name)}[0-9A-F]{{8}}", key):
            return value
    return None
