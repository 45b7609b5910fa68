"""The GitHub workflows: schema-valid, every action pinned, and they do what the README says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import PROJECT_ROOT

WORKFLOWS = PROJECT_ROOT / ".github" / "workflows"
# A full commit SHA with the release it is, e.g. `@3d3c42e... # v7.0.1`.
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


def _validate(*paths: Path) -> subprocess.CompletedProcess:
    """check-jsonschema (requirements.txt) with its vendored copy of SchemaStore's
    github-workflow schema: `--builtin-schema vendor.github-workflows` needs no network."""
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows"]
        + [str(path) for path in paths],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def _triggers(workflow: dict) -> dict:
    # YAML 1.1 reads the bare key `on` as the boolean True.
    return workflow.get("on", workflow.get(True))


def _steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_given_the_workflows_when_validated_against_the_schema_then_they_pass():
    result = _validate(*sorted(WORKFLOWS.glob("*.yml")))
    assert result.returncode == 0, result.stdout + result.stderr


def test_given_a_broken_workflow_when_validated_then_the_check_fails(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: pull_request\njobs:\n  x:\n    steps: [{run: true, uses: 3}]\n")
    assert _validate(broken).returncode != 0


@pytest.mark.parametrize("name", ["ci.yml", "diff.yml"])
def test_given_a_workflow_when_read_then_every_action_is_pinned_to_a_release_commit(name):
    lines = [
        line.split("uses:", 1)[1].strip()
        for line in (WORKFLOWS / name).read_text().splitlines()
        if "uses:" in line
    ]
    assert lines
    assert [line for line in lines if not PINNED.match(line)] == []


def test_given_ci_when_read_then_it_runs_make_test_on_prs_and_pushes_with_pip_and_npm_caches():
    workflow = _load("ci.yml")
    assert {"pull_request", "push"} <= set(_triggers(workflow))
    steps = _steps(workflow)
    assert any(step.get("run") == "make test" for step in steps)
    caches = {step.get("with", {}).get("cache") for step in steps}
    assert {"pip", "npm"} <= caches


def test_given_diff_when_read_then_it_assumes_the_role_by_oidc_and_posts_one_comment():
    workflow = _load("diff.yml")
    assert set(_triggers(workflow)) == {"pull_request"}
    assert workflow["permissions"]["id-token"] == "write"
    steps = _steps(workflow)
    credentials = next(s for s in steps if "configure-aws-credentials" in s.get("uses", ""))
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DIFF_ROLE_ARN }}"
    assert "aws-access-key-id" not in credentials["with"]
    runs = " ".join(step.get("run", "") for step in steps)
    assert "make --no-print-directory preflight" in runs
    assert "make --no-print-directory diff" in runs
    assert "--method template" in runs  # the lookup role, never the deploy role
    comments = [s for s in steps if "sticky-pull-request-comment" in s.get("uses", "")]
    assert len(comments) == 1
    # One header: later pushes update the same comment instead of adding one.
    assert comments[0]["with"]["header"] == "cdk-diff"
