"""Kubernetes YAML templates, filled from the configuration.

A scalar that is exactly `${name}` becomes the value itself (a list, a dict, a number or a
CDK token); `${name}` inside a longer string is replaced by the value's text.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_DIR = Path(__file__).resolve().parent
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def read_text(name: str) -> str:
    """A non-YAML file kept beside the templates (a shell script run in a pod)."""
    return (TEMPLATE_DIR / name).read_text()


def render(template: str, /, **values: Any) -> list[dict[str, Any]]:
    """Load `template`.yaml (one or more documents) and fill every placeholder."""
    documents = [doc for doc in yaml.safe_load_all(read_text(f"{template}.yaml")) if doc]
    used: set[str] = set()
    filled = [_fill(document, values, template, used) for document in documents]
    unused = set(values) - used
    if unused:
        raise KeyError(f"{template}.yaml has no placeholder for {', '.join(sorted(unused))}")
    return filled


def _fill(node: Any, values: dict[str, Any], template: str, used: set[str]) -> Any:
    if isinstance(node, dict):
        return {key: _fill(value, values, template, used) for key, value in node.items()}
    if isinstance(node, list):
        return [_fill(item, values, template, used) for item in node]
    if not isinstance(node, str):
        return node

    def lookup(key: str) -> Any:
        if key not in values:
            raise KeyError(f"{template}.yaml needs a value for ${{{key}}}")
        used.add(key)
        return values[key]

    whole = _PLACEHOLDER.fullmatch(node)
    if whole:
        return lookup(whole.group(1))
    return _PLACEHOLDER.sub(lambda match: str(lookup(match.group(1))), node)


def job_name(prefix: str, pod_template: Any) -> str:
    """`<prefix>-<hash of the pod template>`: a Job's template is immutable, so any change to it
    (image, script, env, volumes) must come as a Job under a new name.

    Pass the template as CloudFormation sees it (`Stack.resolve`): a deploy-time value then
    enters the hash as its expression, which is stable from one synth to the next.
    """
    canonical = json.dumps(pod_template, sort_keys=True, separators=(",", ":"))
    return f"{prefix}-{hashlib.sha256(canonical.encode()).hexdigest()[:10]}"
