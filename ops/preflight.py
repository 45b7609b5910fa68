"""`make preflight`: read-only checks that the account can take this deployment, before any spend.

Usage: python -m ops.preflight [-c key=value ...]   (the same ARGS as `make synth`)
Prints one PASS/WARN/FAIL line per check; exits 1 if any FAILs, 2 for bad settings.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

import boto3

from config.errors import ConfigError
from config.settings import Config, load_config_from_cli
from config.versions import EKS_ADDONS
from ops.aws import (
    AWS_ERRORS,
    DENIED,
    AwsUnavailable,
    client,
    error_code,
    error_text,
    region_source,
    session,
)
from ops.preflight_account import (
    check_bootstrap,
    check_identity,
    cli_bootstrap_version,
    required_bootstrap_version,
)
from ops.preflight_capacity import check_instance_offered, check_reservation, check_vcpu_quota
from ops.preflight_eks import check_addons, check_kubernetes_version
from ops.preflight_fsx import check_fsx_offered, check_fsx_storage
from ops.preflight_image import check_vllm_image
from ops.preflight_secrets import check_certificate, check_hf_token_secret
from ops.report import EXIT_FAILED, EXIT_USAGE, Check, failed, print_report, warned


def guarded(subject: str, call: Callable[[], Check | list[Check]]) -> list[Check]:
    """Run one check; an AWS error it does not handle (access denied, an API the endpoint does
    not offer) becomes a WARN for that check instead of ending the report."""
    try:
        result = call()
    except AWS_ERRORS as error:
        fix = (
            "grant the read-only permissions listed in the README's Preflight section"
            if error_code(error) in DENIED
            else "run again; if it repeats, check this by hand"
        )
        return [warned(subject, f"could not check ({error_text(error)})", fix)]
    return result if isinstance(result, list) else [result]


def run_checks(aws: boto3.Session, config: Config) -> Iterator[Check]:
    """Every check in order; stops after the first if the credentials do not work."""
    region = aws.region_name
    identity, account = check_identity(client(aws, "sts"), region, region_source(aws))
    yield identity
    if account is None:
        return
    ec2 = client(aws, "ec2")
    eks = client(aws, "eks")
    quotas = client(aws, "service-quotas")
    version = config.kubernetes_version

    yield from guarded(
        "CDK bootstrap",
        lambda: check_bootstrap(
            aws, account, region, required_bootstrap_version(), cli_bootstrap_version()
        ),
    )
    yield from guarded(f"Kubernetes {version}", lambda: check_kubernetes_version(eks, version))
    yield from guarded(
        "EKS add-ons",
        lambda: check_addons(eks, version, EKS_ADDONS[version].by_addon_name()),
    )
    yield from guarded(
        f"{config.gpu_instance_type} offered", lambda: check_instance_offered(ec2, config, region)
    )
    if config.capacity_reservation_id:
        yield from guarded("capacity reservation", lambda: check_reservation(ec2, config))
    else:
        yield from guarded("GPU vCPU quota", lambda: check_vcpu_quota(quotas, config, region))
    yield from guarded(
        "vLLM image",
        lambda: check_vllm_image(
            lambda image_region: client(aws, "ecr", image_region),
            config,
            region,
            account,
        ),
    )
    if config.hf_token_secret_name:
        yield from guarded(
            "hfTokenSecretName",
            lambda: check_hf_token_secret(
                client(aws, "secretsmanager"), config.hf_token_secret_name
            ),
        )
    if config.certificate_arn:
        yield from guarded(
            "certificateArn",
            lambda: check_certificate(
                client(aws, "acm"),
                config.certificate_arn,
                region,
                config.domain_name,
            ),
        )
    yield from guarded("FSx in region", lambda: check_fsx_offered(client(aws, "ssm"), region))
    yield from guarded(
        "FSx storage quota",
        lambda: check_fsx_storage(quotas, client(aws, "fsx"), config, region),
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        config = load_config_from_cli(argv)
    except ConfigError as error:
        for problem in error.problems:
            print(f"Invalid setting {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        aws = session()
    except AwsUnavailable as error:
        print(failed("credentials", str(error)).line())
        return EXIT_FAILED
    return print_report(run_checks(aws, config))


if __name__ == "__main__":
    sys.exit(main())
