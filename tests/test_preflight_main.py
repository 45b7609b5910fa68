"""`make preflight` end to end: bad settings, no credentials, and a whole run against moto."""

from __future__ import annotations

import subprocess

from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError, EndpointConnectionError
from ops_fixtures import ACCOUNT, REGION, clean_aws_environment

from ops.preflight import guarded, main
from ops.report import Status, passed

from conftest import PROJECT_ROOT

# The nine concerns of issue 11, by the subject each one's line starts with.
EVERY_CONCERN = (
    "credentials",
    "CDK bootstrap",
    "Kubernetes 1.35",
    "EKS add-on",
    "p4d.24xlarge offered",
    "On-Demand P vCPU quota|GPU vCPU quota",
    "vLLM image",
    "secret hfTokenSecretName=hf/token|hfTokenSecretName",
    "certificate",
    "FSx in region",
    "FSx for Lustre SCRATCH_2 1200 GiB|FSx storage quota",
)


def test_given_bad_settings_when_run_then_exit_2_with_the_config_error_lines(capsys):
    code = main(["-c", "gpuNodeCount=zero", "-c", "fsxStorageGiB=1000"])
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert "Invalid setting gpuNodeCount=zero: not a whole number" in err[0]
    assert any(line.startswith("Invalid setting fsxStorageGiB=1000") for line in err)


def test_given_no_credentials_when_run_then_one_line_about_credentials_exit_1_no_traceback(
    monkeypatch, tmp_path, capsys
):
    clean_aws_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    code = main([])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.splitlines() == [captured.out.strip()]
    assert captured.out.startswith("FAIL credentials: no AWS credentials found")
    assert captured.err == ""


def test_given_an_empty_moto_account_when_run_then_every_check_prints_a_line_and_it_ends(
    aws_env, capsys, monkeypatch
):
    """moto has none of this app's data and lacks several of the APIs: the run still finishes,
    one PASS/WARN/FAIL line per check, exit 0 or 1 (here 1: no bootstrap stack, no secret)."""
    # moto answers an API it lacks with HTTP 500, which botocore retries with backoff.
    monkeypatch.setattr(
        "ops.aws.RETRIES", BotoConfig(retries={"mode": "standard", "max_attempts": 1})
    )
    code = main(
        [
            "-c",
            "hfTokenSecretName=hf/token",
            "-c",
            f"certificateArn=arn:aws:acm:{REGION}:{ACCOUNT}:certificate/0000",
            "-c",
            "domainName=api.example.com",
        ]
    )
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert code == 1
    assert all(line.split(" ", 1)[0] in ("PASS", "WARN", "FAIL") for line in lines), lines
    for concern in EVERY_CONCERN:
        assert any(line.split(" ", 1)[1].startswith(tuple(concern.split("|"))) for line in lines), (
            f"no line for {concern}"
        )
    assert "Traceback" not in captured.err


def test_given_access_denied_when_guarded_then_warn_pointing_at_the_permissions():
    def denied():
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "Op")

    [check] = guarded("thing", denied)
    assert check.status is Status.WARN
    assert "README" in check.fix


def test_given_an_unreachable_endpoint_when_guarded_then_warn_and_carry_on():
    def unreachable():
        raise EndpointConnectionError(endpoint_url="https://eks.example")

    [check] = guarded("thing", unreachable)
    assert check.status is Status.WARN
    assert "run again" in check.fix
    assert guarded("ok", lambda: passed("ok")) == [passed("ok")]


def test_given_skip_preflight_when_make_deploy_is_planned_then_preflight_runs_only_without_it():
    def planned(*args: str) -> str:
        return subprocess.run(
            ["make", "-n", "deploy", *args],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    assert "-m ops.preflight" in planned()
    assert planned().index("-m ops.preflight") < planned().index("cdk deploy")
    assert "-m ops.preflight" not in planned("SKIP_PREFLIGHT=1")
