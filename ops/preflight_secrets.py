"""Preflight check 8: the Hugging Face token secret and the certificate named in the settings."""

from __future__ import annotations

from botocore.exceptions import ClientError

from ops.aws import error_code
from ops.report import Check, failed, passed


def check_hf_token_secret(secretsmanager, name: str) -> Check:  # noqa: ANN001 - boto3 client
    """`DescribeSecret`: exists, is not being deleted and has a current value to read.

    Only metadata is read: the staging Job reads the value with its own role at deploy time, so
    the person running preflight (or the read-only review role) never needs GetSecretValue.
    """
    subject = f"secret hfTokenSecretName={name}"
    create = f"aws secretsmanager create-secret --name {name} --secret-string <your HF token>"
    try:
        secret = secretsmanager.describe_secret(SecretId=name)
    except ClientError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
        return failed(subject, "not found in this region", f"`{create}`")
    if secret.get("DeletedDate"):
        return failed(
            subject,
            f"scheduled for deletion on {secret['DeletedDate']:%Y-%m-%d}",
            f"`aws secretsmanager restore-secret --secret-id {name}`",
        )
    stages = {stage for stages in secret.get("VersionIdsToStages", {}).values() for stage in stages}
    if "AWSCURRENT" not in stages:
        return failed(
            subject,
            "has no current value",
            f"`aws secretsmanager put-secret-value --secret-id {name} --secret-string <token>`",
        )
    return passed(subject, "exists with a current value")


def covers(certificate_names: list[str], domain: str) -> bool:
    """ACM name matching: exact, or a wildcard standing for exactly one leftmost label."""
    domain = domain.lower().rstrip(".")
    for name in (n.lower() for n in certificate_names):
        if name == domain:
            return True
        if name.startswith("*.") and domain.split(".", 1)[-1] == name[2:] and "." in domain:
            return True
    return False


def check_certificate(acm, arn: str, region: str, domain: str | None) -> Check:  # noqa: ANN001
    """`DescribeCertificate`: ISSUED, in the deploy region (an ALB needs that) and covering the
    domain name when one is set."""
    subject = f"certificate {arn}"
    if arn.split(":")[3] != region:
        return failed(
            subject,
            f"is in {arn.split(':')[3]}; the load balancer in {region} can only use one from "
            f"{region}",
            f"request or import a certificate in {region} and set certificateArn to it",
        )
    try:
        certificate = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    except ClientError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
        return failed(subject, "not found", "check certificateArn")
    status = certificate.get("Status")
    if status != "ISSUED":
        return failed(subject, f"status {status}, not ISSUED", "finish its validation in ACM")
    names = [certificate.get("DomainName", ""), *certificate.get("SubjectAlternativeNames", [])]
    if domain and not covers(names, domain):
        return failed(
            subject,
            f"does not cover {domain} (it covers {', '.join(sorted(set(names)))})",
            "use a certificate for that name",
        )
    return passed(subject, f"ISSUED for {certificate.get('DomainName')}")
