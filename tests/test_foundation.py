"""The app's skeleton: stack graph, project layout, cdk.json flags and the CLI contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import PROJECT_ROOT, STACK_IDS, cdk_json_context


def _stack_dependencies(synthesized) -> dict[str, set[str]]:
    return {
        stack.stack_name: {dep.id for dep in stack.dependencies if not dep.id.endswith(".assets")}
        for stack in synthesized.assembly.stacks
    }


def test_given_default_app_then_fsx_and_gpu_stacks_depend_only_on_the_cluster(default_app):
    graph = _stack_dependencies(default_app)
    assert graph["VllmClusterStack"] == set()
    assert graph["VllmGpuNodeGroupStack"] == {"VllmClusterStack"}
    # No edge between these two, so `cdk deploy --concurrency` builds them side by side.
    assert graph["VllmFsxStack"] == {"VllmClusterStack"}
    assert graph["VllmWorkloadStack"] == {
        "VllmClusterStack",
        "VllmGpuNodeGroupStack",
        "VllmFsxStack",
    }


def test_given_default_app_then_cross_stack_references_are_cdk_generated_exports(default_app):
    """Stacks pass typed objects; no hand-named export or Fn::ImportValue is written by us."""
    for stack in default_app.assembly.stacks:
        for value in _values_of(stack.template, "Fn::ImportValue"):
            assert isinstance(value, str) and ":ExportsOutput" in value, value
        for output in stack.template.get("Outputs", {}).values():
            if "Export" in output:
                assert output["Export"]["Name"].startswith(f"{stack.stack_name}:ExportsOutput")


def _values_of(node, key):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            yield from _values_of(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from _values_of(item, key)


def test_constructs_folder_has_no_init_file():
    """An __init__.py in constructs/ would shadow the CDK's `constructs` package."""
    init = PROJECT_ROOT / "constructs" / "__init__.py"
    assert not init.exists(), (
        "constructs/__init__.py must not exist: it hides the CDK's own 'constructs' package "
        "and every `import aws_cdk` then fails with \"No module named 'constructs._jsii'\". "
        "Delete it; our modules are found through the library's namespace path."
    )


def test_cdk_json_sets_the_flags_the_design_relies_on():
    context = cdk_json_context()
    assert context["@aws-cdk/core:defaultCrossStackReferences"] == "strong"
    assert context["@aws-cdk/core:validateAgainstDefaultRules"] is True
    assert context["@aws-cdk/aws-eks:useNativeOidcProvider"] is True


def test_given_default_app_when_synthesized_then_no_warning_or_error_is_annotated(default_app):
    assert _annotation_levels(default_app) == set()


def _annotation_levels(synthesized) -> set[str]:
    manifest = json.loads((Path(synthesized.assembly.directory) / "manifest.json").read_text())
    return {
        entry["type"]
        for artifact in manifest["artifacts"].values()
        for entries in artifact.get("metadata", {}).values()
        for entry in entries
        if entry["type"] in ("aws:cdk:warning", "aws:cdk:error")
    }


def _run_app(context: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run app.py the way the CDK CLI does: context in CDK_CONTEXT_JSON, output in CDK_OUTDIR."""
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps(
            {**cdk_json_context(), **context, "aws:cdk:disable-asset-staging": True}
        ),
        "CDK_OUTDIR": str(tmp_path),
    }
    return subprocess.run(
        [sys.executable, "app.py"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_given_a_bad_setting_when_the_app_runs_then_one_line_names_it_and_exit_is_2(tmp_path):
    result = _run_app({"gpuNodeCount": "zero"}, tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "Invalid setting gpuNodeCount=zero: not a whole number "
        "(allowed: a whole number from 1 to 64)"
    ]
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "manifest.json").exists()


def test_given_two_bad_settings_when_the_app_runs_then_both_are_listed(tmp_path):
    result = _run_app({"gpuNodeCount": "0", "endpointScheme": "public"}, tmp_path)
    assert result.returncode == 2
    assert "gpuNodeCount=0" in result.stderr
    assert "endpointScheme=public" in result.stderr
    assert "Traceback" not in result.stderr


def test_readme_and_ci_use_the_two_commands():
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert "make synth" in readme and "make test" in readme
    assert "make test" in (PROJECT_ROOT / ".ci" / "run").read_text()


def test_every_helm_chart_and_the_cli_are_pinned():
    package = json.loads((PROJECT_ROOT / "package.json").read_text())
    assert all(ch.isdigit() or ch == "." for ch in package["devDependencies"]["aws-cdk"])
    requirements = (PROJECT_ROOT / "requirements.txt").read_text().splitlines()
    packages = [line for line in requirements if line and not line.startswith("#")]
    assert packages and all("==" in line for line in packages)


def test_given_default_config_then_destroy_retains_no_resource(default_app):
    """SCRATCH_2 defaults: `cdk destroy --all` leaves nothing that keeps costing or clutters."""
    retained = {
        (stack_id, logical_id)
        for stack_id in STACK_IDS
        for logical_id, resource in default_app.json(stack_id)["Resources"].items()
        if resource.get("DeletionPolicy", "Delete") != "Delete"
    }
    assert retained == set()
