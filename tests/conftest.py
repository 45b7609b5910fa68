"""Session-wide synthesis: each configuration is synthesized once and shared by every test."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template
from ops_fixtures import aws, aws_env, moto_endpoint  # noqa: F401 - fixtures for ops/ tests

import app as cdk_app

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STACK_IDS = ("VllmClusterStack", "VllmGpuNodeGroupStack", "VllmFsxStack", "VllmWorkloadStack")
# Tests need templates, not the staged kubectl-layer zips.
NO_ASSET_STAGING = {"aws:cdk:disable-asset-staging": True}
# Every non-default cluster, GPU and FSx setting in one variant, shared by the stack tests
# so the session synthesizes it once.
CUSTOM_VARIANT = {
    "natGateways": 2,
    "endpointPublicAccessCidrs": "203.0.113.0/24",
    "adminPrincipalArn": "arn:aws:iam::123456789012:role/PlatformAdmin",
    "availabilityZones": "us-west-2a,us-west-2b,us-west-2c",
    "gpuAvailabilityZone": "us-west-2b",
    "gpuRootVolumeGiB": 500,
    "capacityReservationId": "cr-0123456789abcdef0",
    "capacityBlock": True,
    "replicas": 2,
    "fsxStorageGiB": 2400,
    "fsxRemovalPolicy": "RETAIN",
    "hfTokenSecretName": "hf/token",
    "alarmEmail": "ops@example.com",
}
MANIFEST_TYPE = "Custom::AWSCDK-EKS-KubernetesResource"
HELM_TYPE = "Custom::AWSCDK-EKS-HelmChart"


def cdk_json_context() -> dict[str, Any]:
    """What the CDK CLI would merge in from cdk.json: the App alone does not read it."""
    return json.loads((PROJECT_ROOT / "cdk.json").read_text())["context"]


@dataclass
class Synthesized:
    """One synthesized app: its cloud assembly, templates and the objects inside them."""

    assembly: cdk.cx_api.CloudAssembly
    stacks: dict[str, cdk.Stack]
    _templates: dict[str, Template] = field(default_factory=dict)

    def template(self, stack_id: str) -> Template:
        if stack_id not in self._templates:
            self._templates[stack_id] = Template.from_json(self.json(stack_id))
        return self._templates[stack_id]

    def json(self, stack_id: str) -> dict[str, Any]:
        return self.assembly.get_stack_by_name(stack_id).template

    def resources(self, stack_id: str, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.json(stack_id)["Resources"].items()
            if resource["Type"] == resource_type
        }

    def kubernetes_objects(self, stack_id: str = "VllmWorkloadStack") -> list[dict[str, Any]]:
        """Every Kubernetes object applied through the kubectl provider, as plain dicts."""
        objects = []
        for resource in self.resources(stack_id, MANIFEST_TYPE).values():
            objects.extend(json.loads(render_tokens(resource["Properties"]["Manifest"])))
        return objects

    def kubernetes_object(self, kind: str, name: str | None = None) -> dict[str, Any]:
        matches = [
            obj
            for obj in self.kubernetes_objects()
            if obj["kind"] == kind and name in (None, obj["metadata"]["name"])
        ]
        assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
        return matches[0]

    def staging_job(self) -> dict[str, Any]:
        """The model staging Job (the app also runs a Job that checks the LWS webhook)."""
        jobs = [
            obj
            for obj in self.kubernetes_objects()
            if obj["kind"] == "Job"
            and obj["metadata"]["labels"]["app.kubernetes.io/name"] == "model-staging"
        ]
        assert len(jobs) == 1, f"expected one staging Job, found {len(jobs)}"
        return jobs[0]

    def manifest_logical_id(self, kind: str, name: str) -> str:
        """The logical id of the custom resource that applies a given object."""
        for logical_id, resource in self.resources("VllmWorkloadStack", MANIFEST_TYPE).items():
            for obj in json.loads(render_tokens(resource["Properties"]["Manifest"])):
                if obj["kind"] == kind and obj["metadata"]["name"] == name:
                    return logical_id
        raise AssertionError(f"no manifest applies {kind}/{name}")

    def helm_releases(self, stack_id: str = "VllmWorkloadStack") -> dict[str, dict[str, Any]]:
        """Helm releases by release name, with `Values` parsed and the logical id added."""
        releases = {}
        for logical_id, resource in self.resources(stack_id, HELM_TYPE).items():
            properties = dict(resource["Properties"])
            properties["Values"] = json.loads(render_tokens(properties.get("Values", "{}")))
            properties["LogicalId"] = logical_id
            properties["DependsOn"] = resource.get("DependsOn", [])
            releases[properties["Release"]] = properties
        return releases

    def depends_on(self, stack_id: str, logical_id: str) -> list[str]:
        return self.json(stack_id)["Resources"][logical_id].get("DependsOn", [])


def only(resources: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The single (logical id, resource) in `resources`, failing clearly if there are more."""
    assert len(resources) == 1, f"expected exactly one resource, found {sorted(resources)}"
    return next(iter(resources.items()))


def reference_to(app: Synthesized, producer: str, value: Any) -> dict[str, Any]:
    """The intrinsic another stack uses for `value` of stack `producer`: Fn::ImportValue of its
    export (strong reference) or Fn::GetStackOutput of its output (weak reference)."""
    for output_id, output in app.json(producer).get("Outputs", {}).items():
        if output["Value"] != value:
            continue
        if "Export" in output:
            return {"Fn::ImportValue": output["Export"]["Name"]}
        return {
            "Fn::GetStackOutput": {
                "StackName": producer,
                "Region": {"Ref": "AWS::Region"},
                "OutputName": output_id,
            }
        }
    raise AssertionError(f"{producer} has no output for {value}")


def render_tokens(value: Any) -> str:
    """Flatten an Fn::Join of strings and intrinsics into text, intrinsics as <...> markers."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render_tokens(part) for part in parts)
    return "<" + json.dumps(value, sort_keys=True).replace('"', "'") + ">"


def synthesize(overrides: dict[str, Any] | None = None, stage_assets: bool = False) -> Synthesized:
    context = {**cdk_json_context(), **(overrides or {})}
    if not stage_assets:
        context.update(NO_ASSET_STAGING)
    app = cdk.App(context=context, outdir=tempfile.mkdtemp(prefix="cdk-test-"))
    cdk_app.build_app(app)
    assembly = app.synth()
    stacks = {stack_id: app.node.find_child(stack_id) for stack_id in STACK_IDS}
    return Synthesized(assembly=assembly, stacks=stacks)


@pytest.fixture(scope="session")
def synth_variant() -> Callable[..., Synthesized]:
    """synth_variant(key=value, ...) synthesizes that configuration once per session."""
    cache: dict[tuple[tuple[str, str], ...], Synthesized] = {}

    def get(**overrides: Any) -> Synthesized:
        key = tuple(sorted((k, json.dumps(v)) for k, v in overrides.items()))
        if key not in cache:
            cache[key] = synthesize(overrides)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def default_app(synth_variant: Callable[..., Synthesized]) -> Synthesized:
    """The app exactly as `make synth` builds it with no -c settings."""
    return synth_variant()


@pytest.fixture(scope="session")
def custom_app(synth_variant: Callable[..., Synthesized]) -> Synthesized:
    """Every non-default cluster, GPU and FSx setting at once (CUSTOM_VARIANT)."""
    return synth_variant(**CUSTOM_VARIANT)


@dataclass
class FakeCluster:
    """A directory of recorded kubectl answers, served by tests/fake_kubectl.py on PATH."""

    root: Path

    def pods(self, *pods: tuple[str, int]) -> None:
        """Recorded `kubectl get pods` of the LeaderWorkerSet: (name, worker index) each."""
        items = [
            {
                "metadata": {
                    "name": name,
                    "labels": {
                        "leaderworkerset.sigs.k8s.io/name": "vllm",
                        "leaderworkerset.sigs.k8s.io/group-index": "0",
                        "leaderworkerset.sigs.k8s.io/worker-index": str(index),
                    },
                }
            }
            for name, index in pods
        ]
        self.answer("pods.json", json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))

    def answer(self, name: str, text: str) -> None:
        (self.root / name).write_text(text)

    def calls(self) -> list[list[str]]:
        path = self.root / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def applied(self) -> list[dict[str, Any]]:
        """Every object piped to `kubectl apply -f -`, in order."""
        objects = []
        for path in sorted(self.root.glob("stdin-*.json"), key=lambda p: int(p.stem[6:])):
            objects.extend(json.loads(path.read_text())["items"])
        return objects


@pytest.fixture
def fake_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    """`kubectl` on PATH is tests/fake_kubectl.py, answering from a fresh directory."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").symlink_to(PROJECT_ROOT / "tests" / "fake_kubectl.py")
    answers = tmp_path / "cluster"
    answers.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_KUBECTL_DIR", str(answers))
    return FakeCluster(answers)
