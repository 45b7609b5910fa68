"""Fixtures for the operator commands in ops/: a real AWS emulator on 127.0.0.1, never AWS.

moto runs in server mode in a thread; every boto3 client finds it through AWS_ENDPOINT_URL,
which botocore honours natively (botocore/configprovider.py, "AWS_ENDPOINT_URL"; AWS SDKs and
Tools reference guide, "Service-specific endpoints"), so ops/ needs no test hook. APIs moto does
not implement are answered with botocore's Stubber instead.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from config.settings import Config, load_config_from_cli
from ops.aws import session

REGION = "us-west-2"
ACCOUNT = "123456789012"  # moto's default account


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server for the session, on a free port of 127.0.0.1."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def clean_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS_* variables and no config files from the machine running the tests."""
    for variable in list(os.environ):
        if variable.startswith("AWS_"):
            monkeypatch.delenv(variable)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    # Nothing may fall back to the instance metadata service.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Fake credentials and a region in the environment, every client pointed at a fresh moto."""
    clean_aws_environment(monkeypatch, tmp_path)
    fake_credentials(monkeypatch)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass
    return moto_endpoint


@pytest.fixture
def aws(aws_env: str) -> boto3.Session:
    """The session ops/ builds, talking to moto."""
    return session()


def config_with(*settings: str) -> Config:
    """The Config `make preflight ARGS="-c key=value ..."` would build."""
    args = []
    for setting in settings:
        args += ["-c", setting]
    return load_config_from_cli(args)


def create_stack(aws: boto3.Session, name: str, outputs: dict[str, str]) -> None:
    """A stack in moto with the given outputs (one SSM parameter, a resource moto implements)."""
    properties = {"Name": f"/{name}/marker", "Type": "String", "Value": "x"}
    marker = {"Type": "AWS::SSM::Parameter", "Properties": properties}
    template = {
        "Resources": {"Marker": marker},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    aws.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))
