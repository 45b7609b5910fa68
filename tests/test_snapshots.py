"""One snapshot per stack; `make update-snapshots` refreshes them on purpose."""

from __future__ import annotations

import json
import re

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from conftest import STACK_IDS

# Asset hashes change with every aws-cdk-lib or layer release; what they point at does not.
_ASSET_HASH = re.compile(r"[0-9a-f]{64}")


def normalised(template: dict) -> dict:
    return json.loads(_ASSET_HASH.sub("<asset-hash>", json.dumps(template, sort_keys=True)))


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("stack_id", STACK_IDS)
def test_given_default_config_then_template_matches_snapshot(default_app, snapshot_json, stack_id):
    assert normalised(default_app.json(stack_id)) == snapshot_json
