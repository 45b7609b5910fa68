"""Preflight checks 1-2: credentials, account and region; the CDK bootstrap version."""

from __future__ import annotations

import json
from pathlib import Path

from botocore.stub import Stubber
from ops_fixtures import ACCOUNT, REGION, create_stack

from ops.aws import client
from ops.preflight_account import (
    CLI_BOOTSTRAP_TEMPLATE,
    check_bootstrap,
    check_identity,
    cli_bootstrap_version,
    max_required_bootstrap_version,
    required_bootstrap_version,
)
from ops.report import Status


def test_given_working_credentials_when_identity_checked_then_pass_names_account_and_region(aws):
    check, account = check_identity(client(aws, "sts"), REGION, "AWS_DEFAULT_REGION")
    assert check.status is Status.PASS
    assert account == ACCOUNT
    assert f"account {ACCOUNT}" in check.line()
    assert f"region {REGION} (from AWS_DEFAULT_REGION)" in check.line()


def test_given_rejected_credentials_when_identity_checked_then_fail_says_credentials(aws):
    """STS answers an expired or bad key with a client error (moto accepts any key: Stubber)."""
    sts = client(aws, "sts")
    with Stubber(sts) as stub:
        stub.add_client_error("get_caller_identity", "ExpiredToken", "The token has expired")
        check, account = check_identity(sts, REGION, "AWS_DEFAULT_REGION")
    assert check.status is Status.FAIL
    assert account is None
    assert "credentials" in check.line()
    assert "ExpiredToken" in check.line()


def test_given_the_real_app_when_synthesized_then_it_requires_what_the_probe_reports(default_app):
    """The cloud assembly manifest carries `requiresBootstrapStackVersion` per stack and per
    lookup role (aws-cdk-lib DefaultStackSynthesizer); the probe must match the app's maximum."""
    manifest = json.loads((Path(default_app.assembly.directory) / "manifest.json").read_text())
    required = max_required_bootstrap_version(manifest)
    assert required_bootstrap_version() == required
    assert required >= 6  # the default synthesizer's documented minimum


def test_given_the_pinned_cli_when_its_template_is_read_then_the_version_is_its_output():
    """aws-cdk (package.json) ships lib/api/bootstrap/bootstrap-template.yaml whose
    BootstrapVersion output is the version `cdk bootstrap` deploys."""
    version = cli_bootstrap_version()
    assert CLI_BOOTSTRAP_TEMPLATE.is_file()
    assert version is not None
    assert version >= required_bootstrap_version()


def test_given_no_cli_installed_when_template_read_then_none(tmp_path):
    assert cli_bootstrap_version(tmp_path / "absent.yaml") is None


def test_given_no_toolkit_stack_when_bootstrap_checked_then_fail_with_bootstrap_command(aws):
    check = check_bootstrap(aws, ACCOUNT, REGION, required=8, cli_version=33)
    assert check.status is Status.FAIL
    assert f"npx cdk bootstrap aws://{ACCOUNT}/{REGION}" in check.fix


def test_given_an_old_toolkit_when_bootstrap_checked_then_fail(aws):
    create_stack(aws, "CDKToolkit", {"BootstrapVersion": "5"})
    check = check_bootstrap(aws, ACCOUNT, REGION, required=8, cli_version=33)
    assert check.status is Status.FAIL
    assert "version 5 is older than the 8" in check.detail


def test_given_a_toolkit_older_than_the_cli_when_bootstrap_checked_then_warn(aws):
    create_stack(aws, "CDKToolkit", {"BootstrapVersion": "21"})
    check = check_bootstrap(aws, ACCOUNT, REGION, required=8, cli_version=33)
    assert check.status is Status.WARN
    assert "ships 33" in check.detail


def test_given_a_current_toolkit_when_bootstrap_checked_then_pass(aws):
    create_stack(aws, "CDKToolkit", {"BootstrapVersion": "33"})
    check = check_bootstrap(aws, ACCOUNT, REGION, required=8, cli_version=33)
    assert check.status is Status.PASS
    assert check.detail == "version 33 (needs >= 8)"
