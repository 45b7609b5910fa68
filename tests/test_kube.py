"""Cluster access for the operator commands: outputs by name, kubeconfig from the stack."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from ops.aws import find_output
from ops.kube import Kubectl, KubectlError, connect

OUTPUTS = {
    "VllmEndpointUrl0B165A79": "http://alb/v1",
    "VllmApiKeySecretArnDEADBEEF": "arn:aws:secretsmanager:us-west-2:123456789012:secret:k",
    "PlainOutput": "plain",
}


@pytest.mark.parametrize(
    "name,expected",
    [
        ("EndpointUrl", "http://alb/v1"),
        ("ApiKeySecretArn", OUTPUTS["VllmApiKeySecretArnDEADBEEF"]),
        ("PlainOutput", "plain"),
        ("ApiKey", None),  # a prefix of another output's id is not that output
        ("ClusterName", None),
    ],
)
def test_given_cdk_output_keys_when_found_by_id_then_hash_suffix_is_ignored(name, expected):
    assert find_output(OUTPUTS, name) == expected


def deploy_outputs(outputs: dict[str, str]) -> None:
    template = {
        "Resources": {"Marker": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(
        StackName="VllmWorkloadStack", TemplateBody=json.dumps(template)
    )


def test_given_no_workload_stack_when_connecting_then_one_line_says_deploy_first(aws_env):
    with pytest.raises(KubectlError, match="VllmWorkloadStack has no ClusterName output"):
        connect(None)


def test_given_cluster_output_when_connecting_then_kubeconfig_written_by_aws_eks(
    aws_env, tmp_path, monkeypatch
):
    """The kubeconfig goes to a file of its own, never ~/.kube/config."""
    deploy_outputs({"VllmClusterName1A2B3C4D": "InferenceCluster-abc"})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "aws-args.json"
    fake_aws = bin_dir / "aws"
    fake_aws.write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
    )
    fake_aws.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    kubectl = connect(None)
    args = json.loads(record.read_text())
    assert args[:6] == [
        "eks",
        "update-kubeconfig",
        "--name",
        "InferenceCluster-abc",
        "--region",
        "us-west-2",
    ]
    assert args[6] == "--kubeconfig" and args[7] == kubectl.kubeconfig
    assert Path(kubectl.kubeconfig).name == "kubeconfig"
    assert not kubectl.kubeconfig.startswith(str(Path.home() / ".kube"))


def test_given_a_kubeconfig_file_when_connecting_then_no_aws_is_asked(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    assert connect("/tmp/my-kubeconfig") == Kubectl(kubeconfig="/tmp/my-kubeconfig")


def test_given_no_kubectl_on_path_when_run_then_error_says_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KubectlError, match="kubectl is not on PATH"):
        Kubectl().run("get", "pods")
