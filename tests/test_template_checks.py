"""Every synthesized template passes cfn-lint; every Kubernetes object passes strict schemas."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest
from cfnlint.api import lint

from conftest import STACK_IDS

KUBERNETES_VERSION = "1.35"
# Regions that offer every default resource (p4d, FSx for Lustre); the app is region-agnostic.
LINT_REGIONS = ["us-east-1", "us-west-2"]
# Kinds served by the CRDs our charts install; the schema set knows only built-in kinds.
CUSTOM_KINDS = {"LeaderWorkerSet", "SecretProviderClass"}


@pytest.mark.parametrize("stack_id", STACK_IDS)
def test_given_default_config_when_linted_then_cfn_lint_reports_no_errors(default_app, stack_id):
    matches = lint(json.dumps(default_app.json(stack_id)), regions=LINT_REGIONS)
    errors = [
        f"{m.rule.id} {m.message} at {'/'.join(map(str, m.path))}"
        for m in matches
        if m.rule.id.startswith("E")
    ]
    assert errors == []


def test_given_default_config_then_only_known_custom_kinds_escape_schema_validation(default_app):
    kinds = {obj["kind"] for obj in default_app.kubernetes_objects()}
    unchecked = {kind for kind in kinds if kind in CUSTOM_KINDS}
    assert unchecked == CUSTOM_KINDS


def _built_in_objects(synthesized):
    return [o for o in synthesized.kubernetes_objects() if o["kind"] not in CUSTOM_KINDS]


def _pod_templates(synthesized):
    lws = synthesized.kubernetes_object("LeaderWorkerSet")["spec"]["leaderWorkerTemplate"]
    return {
        role: {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": f"vllm-{role}"},
            "template": lws[f"{role}Template"],
        }
        for role in ("leader", "worker")
    }


def test_given_default_config_when_validated_strictly_then_every_built_in_object_is_valid(
    default_app,
):
    objects = _built_in_objects(default_app)
    assert len(objects) >= 8
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"distributedExecutor": "ray", "vllmImage": "my.registry.example.com/vllm:ray"},
        {"gpuInstanceType": "p5.48xlarge"},
        {"hfTokenSecretName": "hf/token"},
    ],
    ids=["mp", "ray", "p5", "hf-token"],
)
def test_given_a_variant_when_validated_then_lws_pod_templates_and_job_are_valid(
    synth_variant, overrides
):
    synthesized = synth_variant(**overrides)
    for template in _pod_templates(synthesized).values():
        kubernetes_validate.validate(template, KUBERNETES_VERSION, strict=True)
    kubernetes_validate.validate(synthesized.staging_job(), KUBERNETES_VERSION, strict=True)


def test_given_an_unknown_field_when_validated_strictly_then_it_is_rejected(default_app):
    """The check has teeth: a misspelt field in the leader template fails validation."""
    template = _pod_templates(default_app)["leader"]
    template["template"]["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(template, KUBERNETES_VERSION, strict=True)
