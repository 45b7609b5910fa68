"""Preflight check 8: hfTokenSecretName and certificateArn, against moto Secrets Manager and ACM."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from ops_fixtures import ACCOUNT, REGION

from ops.aws import client
from ops.preflight_secrets import check_certificate, check_hf_token_secret, covers
from ops.report import Status


def test_given_a_secret_with_a_value_when_checked_then_pass(aws):
    secrets = client(aws, "secretsmanager")
    secrets.create_secret(Name="hf/token", SecretString="hf_x")
    assert check_hf_token_secret(secrets, "hf/token").status is Status.PASS


def test_given_no_secret_when_checked_then_fail_with_create_command(aws):
    check = check_hf_token_secret(client(aws, "secretsmanager"), "hf/token")
    assert check.status is Status.FAIL
    assert "aws secretsmanager create-secret --name hf/token" in check.fix


def test_given_a_secret_scheduled_for_deletion_when_checked_then_fail_with_restore(aws):
    secrets = client(aws, "secretsmanager")
    secrets.create_secret(Name="hf/token", SecretString="hf_x")
    secrets.delete_secret(SecretId="hf/token", RecoveryWindowInDays=7)
    check = check_hf_token_secret(secrets, "hf/token")
    assert check.status is Status.FAIL
    assert "restore-secret --secret-id hf/token" in check.fix


def test_given_a_secret_without_a_value_when_checked_then_fail(aws):
    secrets = client(aws, "secretsmanager")
    secrets.create_secret(Name="hf/token")
    check = check_hf_token_secret(secrets, "hf/token")
    assert check.status is Status.FAIL
    assert "no current value" in check.detail


def _self_signed(*names: str) -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def _imported(aws, *names: str) -> str:
    certificate, key = _self_signed(*names)
    return client(aws, "acm").import_certificate(Certificate=certificate, PrivateKey=key)[
        "CertificateArn"
    ]


def test_given_an_issued_certificate_for_the_domain_when_checked_then_pass(aws):
    arn = _imported(aws, "api.example.com")
    check = check_certificate(client(aws, "acm"), arn, REGION, "api.example.com")
    assert check.status is Status.PASS


def test_given_a_certificate_for_another_name_when_checked_then_fail_listing_its_names(aws):
    arn = _imported(aws, "www.example.com")
    check = check_certificate(client(aws, "acm"), arn, REGION, "api.example.com")
    assert check.status is Status.FAIL
    assert "does not cover api.example.com" in check.detail


def test_given_a_pending_certificate_when_checked_then_fail(aws):
    """moto keeps a requested certificate PENDING_VALIDATION for its first 60 s, like ACM does
    until DNS validation succeeds."""
    acm = client(aws, "acm")
    arn = acm.request_certificate(DomainName="api.example.com", ValidationMethod="DNS")[
        "CertificateArn"
    ]
    check = check_certificate(acm, arn, REGION, None)
    assert check.status is Status.FAIL
    assert "PENDING_VALIDATION" in check.detail


def test_given_a_certificate_in_another_region_when_checked_then_fail_without_asking(aws):
    arn = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/0000"
    check = check_certificate(None, arn, REGION, None)
    assert check.status is Status.FAIL
    assert "is in us-east-1" in check.detail


def test_given_an_unknown_certificate_when_checked_then_fail(aws):
    arn = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/0000"
    assert check_certificate(client(aws, "acm"), arn, REGION, None).status is Status.FAIL


def test_given_wildcards_when_matched_then_one_label_only():
    """ACM: a wildcard name protects one subdomain level (ACM user guide, "Wildcard names")."""
    assert covers(["*.example.com"], "api.example.com")
    assert not covers(["*.example.com"], "a.b.example.com")
    assert not covers(["*.example.com"], "example.com")
    assert covers(["example.com", "API.example.com"], "api.example.com.")
