"""Preflight checks 1-2: who and where we are, and whether the CDK bootstrap stack can deploy."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import boto3
import yaml

from ops.aws import AWS_ERRORS, error_text, stack_outputs
from ops.report import Check, failed, passed, warned

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TOOLKIT_STACK = "CDKToolkit"
# The pinned CLI's own bootstrap template: what `cdk bootstrap` would deploy today.
CLI_BOOTSTRAP_TEMPLATE = (
    PROJECT_ROOT / "node_modules" / "aws-cdk" / "lib" / "api" / "bootstrap"
) / "bootstrap-template.yaml"


def check_identity(sts, region: str, region_source: str) -> tuple[Check, str | None]:  # noqa: ANN001
    """Credentials work: the check, and the account the rest of the report is about (or None)."""
    subject = "credentials"
    try:
        identity = sts.get_caller_identity()
    except AWS_ERRORS as error:
        return (
            failed(
                subject,
                f"AWS did not accept the credentials ({error_text(error)})",
                "refresh them (`aws sso login`, or new access keys) and run again",
            ),
            None,
        )
    account = identity["Account"]
    detail = f"account {account} as {identity['Arn']}, region {region} (from {region_source})"
    return passed(subject, detail), account


def required_bootstrap_version() -> int:
    """The bootstrap version aws-cdk-lib's default synthesizer requires, read from an assembly.

    Our stacks use the default synthesizer; a one-stack app with it synthesizes in a second and
    its manifest carries the same `requiresBootstrapStackVersion` numbers (the stack's and its
    lookup role's, which `cdk diff` assumes). tests/test_preflight_account.py holds this equal
    to the real app's assembly.
    """
    import aws_cdk as cdk  # jsii starts a Node.js process: only when this check runs

    with tempfile.TemporaryDirectory() as outdir:
        app = cdk.App(outdir=outdir)
        stack = cdk.Stack(app, "BootstrapProbe", synthesizer=cdk.DefaultStackSynthesizer())
        cdk.CfnWaitConditionHandle(stack, "Nothing")
        manifest = json.loads((Path(app.synth().directory) / "manifest.json").read_text())
    return max_required_bootstrap_version(manifest)


def max_required_bootstrap_version(manifest: dict) -> int:
    """The highest `requiresBootstrapStackVersion` anywhere in a cloud assembly manifest."""
    found: list[int] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "requiresBootstrapStackVersion":
                    found.append(int(value))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(manifest)
    return max(found)


def cli_bootstrap_version(template: Path = CLI_BOOTSTRAP_TEMPLATE) -> int | None:
    """The bootstrap version the pinned CLI would deploy (its template's BootstrapVersion output);
    None before `npm ci` has installed the CLI."""
    if not template.is_file():
        return None
    return int(yaml.safe_load(template.read_text())["Outputs"]["BootstrapVersion"]["Value"])


def check_bootstrap(
    aws: boto3.Session, account: str, region: str, required: int, cli_version: int | None
) -> Check:
    """CDKToolkit exists and its BootstrapVersion output is at least what the stacks require."""
    subject = "CDK bootstrap"
    bootstrap = f"npx cdk bootstrap aws://{account}/{region}"
    deployed = stack_outputs(aws, [TOOLKIT_STACK])[TOOLKIT_STACK].get("BootstrapVersion", "")
    if not deployed.isdigit():
        return failed(
            subject,
            f"no {TOOLKIT_STACK} stack with a BootstrapVersion output in {region}",
            f"run `{bootstrap}`",
        )
    version = int(deployed)
    if version < required:
        return failed(
            subject,
            f"version {version} is older than the {required} this app's stacks require",
            f"run `{bootstrap}`",
        )
    if cli_version is not None and version < cli_version:
        return warned(
            subject,
            f"version {version} deploys (needs >= {required}); the pinned CLI ships {cli_version}",
            f"`{bootstrap}` upgrades it when convenient",
        )
    return passed(subject, f"version {version} (needs >= {required})")
