"""ops/report.py and ops/aws.py: the report lines and AWS session every operator command shares."""

from __future__ import annotations

import io

import boto3
import pytest
from botocore.exceptions import ClientError, NoCredentialsError
from ops_fixtures import ACCOUNT, clean_aws_environment, create_stack, fake_credentials

from ops.aws import (
    AwsUnavailable,
    client,
    error_code,
    error_text,
    region_source,
    session,
    stack_outputs,
)
from ops.report import (
    EXIT_FAILED,
    EXIT_OK,
    Check,
    Status,
    failed,
    passed,
    print_report,
    warned,
)


def test_given_checks_when_printed_then_one_line_each_status_first_and_fix_only_when_not_pass():
    stream = io.StringIO()
    code = print_report(
        [
            passed("a", "fine"),
            warned("b", "meh", "look"),
            passed("c", "ok"),
        ],
        stream,
    )
    assert stream.getvalue().splitlines() == [
        "PASS a: fine",
        "WARN b: meh -> fix: look",
        "PASS c: ok",
    ]
    assert code == EXIT_OK


def test_given_a_pass_with_a_fix_when_printed_then_the_fix_is_not_shown():
    assert Check(Status.PASS, "a", "fine", "never shown").line() == "PASS a: fine"


def test_given_one_failure_when_printed_then_exit_code_is_1():
    stream = io.StringIO()
    assert print_report([passed("a"), failed("b", "broken", "mend")], stream) == EXIT_FAILED
    assert stream.getvalue().splitlines()[-1] == "FAIL b: broken -> fix: mend"


@pytest.fixture
def bare_environment(monkeypatch, tmp_path):
    """No AWS variables or config files at all: what a fresh machine has."""
    clean_aws_environment(monkeypatch, tmp_path)
    return monkeypatch


def test_given_no_credentials_when_session_then_aws_unavailable_names_credentials(
    bare_environment,
):
    # Credentials are reported first even when the region is missing too.
    with pytest.raises(AwsUnavailable, match="credentials"):
        session()


def test_given_a_missing_profile_when_session_then_aws_unavailable_not_a_traceback(
    bare_environment,
):
    bare_environment.setenv("AWS_PROFILE", "nobody")
    with pytest.raises(AwsUnavailable, match="credentials"):
        session()


def test_given_credentials_but_no_region_when_session_then_it_says_how_to_set_one(
    bare_environment,
):
    fake_credentials(bare_environment)
    with pytest.raises(AwsUnavailable, match="region"):
        session()


def test_given_aws_region_only_when_session_then_it_is_used_like_the_cdk_cli_does(
    bare_environment,
):
    """botocore reads only AWS_DEFAULT_REGION (botocore/configprovider.py 'region'); the CDK CLI
    and AWS CLI v2 read AWS_REGION too, so a deploy and its preflight see the same region."""
    fake_credentials(bare_environment)
    bare_environment.setenv("AWS_REGION", "eu-west-1")
    assert boto3.Session().region_name is None
    aws = session()
    assert aws.region_name == "eu-west-1"
    assert region_source(aws) == "AWS_REGION"


def test_given_aws_endpoint_url_when_client_then_requests_go_to_the_emulator(aws, aws_env):
    sts = client(aws, "sts")
    assert sts.meta.endpoint_url == aws_env
    assert sts.get_caller_identity()["Account"] == ACCOUNT
    assert sts.meta.config.retries["mode"] == "standard"
    assert client(aws, "ecr", "eu-west-1").meta.region_name == "eu-west-1"


def test_given_stacks_in_moto_when_stack_outputs_then_outputs_by_key_and_missing_is_empty(aws):
    create_stack(aws, "Deployed", {"Endpoint": "http://example.test"})
    assert stack_outputs(aws, ["Deployed", "Absent"]) == {
        "Deployed": {"Endpoint": "http://example.test"},
        "Absent": {},
    }


def _client_error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "Op")


def test_given_errors_when_described_then_one_line_with_the_code():
    assert error_text(_client_error("AccessDenied", "no\nmore")) == "AccessDenied: no"
    assert error_code(_client_error("AccessDenied", "no")) == "AccessDenied"
    assert error_text(_client_error("404", "<!doctype html>\n<html>")) == (
        "HTTP 404 from the endpoint, not an AWS API answer"
    )
    assert error_text(NoCredentialsError()) == "no AWS credentials found"
    assert error_code(NoCredentialsError()) == ""
