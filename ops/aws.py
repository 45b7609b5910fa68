"""The boto3 session every operator command shares, and the deployed stacks' outputs."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError
from botocore.parsers import ResponseParserError

# Throttling and transient faults are retried by botocore itself (standard mode).
RETRIES = BotoConfig(retries={"mode": "standard", "max_attempts": 5})

# Errors a person can act on without a traceback: no credentials, no region, access denied, and
# an endpoint that answers in no AWS format (a proxy's error page, an emulator lacking the API).
AWS_ERRORS: tuple[type[Exception], ...] = (BotoCoreError, ClientError, ResponseParserError)

# Error codes meaning "not allowed", across services (IAM, ECR and EC2 spell it differently).
DENIED = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation")


class AwsUnavailable(Exception):
    """AWS cannot be asked at all (no credentials, no region): one line, no traceback."""


def session(region: str | None = None, profile: str | None = None) -> boto3.Session:
    """A session for the region given, else the one the environment or profile sets."""
    # botocore reads only AWS_DEFAULT_REGION; the CDK CLI also reads AWS_REGION, first.
    region = region or os.environ.get("AWS_REGION") or None
    try:
        result = boto3.Session(region_name=region, profile_name=profile)
        credentials = result.get_credentials()
    except BotoCoreError as error:  # e.g. a named profile that does not exist
        raise AwsUnavailable(f"no usable AWS credentials: {error}") from error
    # Credentials first: without them nothing else can be checked, and the user fixes that first.
    if credentials is None:
        raise AwsUnavailable(
            "no AWS credentials found: run `aws configure`, `aws sso login` or export "
            "AWS_PROFILE / AWS_ACCESS_KEY_ID"
        )
    if not result.region_name:
        raise AwsUnavailable(
            "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION) or a region in your profile"
        )
    return result


def region_source(aws: boto3.Session) -> str:
    """Where the session's region came from, so the report says whether it was explicit."""
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if os.environ.get(variable) == aws.region_name:
            return variable
    return f"profile {aws.profile_name}"


def client(aws: boto3.Session, service: str, region: str | None = None):  # noqa: ANN201 - untyped
    """A client with standard retries, in the session's region unless another is named."""
    return aws.client(service, region_name=region, config=RETRIES)


def error_code(error: Exception) -> str:
    """The AWS error code of a ClientError (e.g. AccessDeniedException), else ''."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


def error_text(error: Exception) -> str:
    """The AWS error code and message, or botocore's own sentence."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code, message = details.get("Code", "Error"), _first_line(details.get("Message", ""))
        if message.startswith("<"):  # an HTML error page: not AWS answering
            return f"HTTP {code} from the endpoint, not an AWS API answer"
        return f"{code}: {message}".strip().rstrip(":")
    if isinstance(error, NoCredentialsError):
        return "no AWS credentials found"
    if isinstance(error, NoRegionError):
        return "no AWS region set"
    return _first_line(str(error))


def _first_line(text: str) -> str:
    """Reports are one line per check; some endpoints answer with a whole HTML page."""
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""


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
