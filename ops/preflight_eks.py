"""Preflight checks 3-4: EKS offers the Kubernetes version, and every pinned add-on build."""

from __future__ import annotations

import re

from ops.report import Check, failed, passed, warned


def version_key(version: str) -> tuple[int, ...]:
    """Sort key for `1.35` and `v1.21.1-eksbuild.8` alike: every number in order."""
    return tuple(int(number) for number in re.findall(r"\d+", version))


def check_kubernetes_version(eks, version: str) -> Check:  # noqa: ANN001 - boto3 client
    """`DescribeClusterVersions`: the version can be created here; say so if a newer one is."""
    subject = f"Kubernetes {version}"
    offered = [
        info
        for page in eks.get_paginator("describe_cluster_versions").paginate()
        for info in page.get("clusterVersions", [])
        if info.get("versionStatus") != "UNSUPPORTED" and info.get("clusterType", "eks") == "eks"
    ]
    by_version = {info["clusterVersion"]: info for info in offered}
    allowed = ", ".join(sorted(by_version, key=version_key)) or "none returned"
    info = by_version.get(version)
    if info is None:
        return failed(
            subject,
            f"EKS does not offer it in this region (offered: {allowed})",
            "set -c kubernetesVersion to an offered version this app knows (config/versions.py)",
        )
    newer = sorted(
        (
            other
            for other, details in by_version.items()
            if version_key(other) > version_key(version)
            and details.get("versionStatus") == "STANDARD_SUPPORT"
        ),
        key=version_key,
    )
    if info.get("versionStatus") == "EXTENDED_SUPPORT":
        return warned(
            subject,
            "offered, but in paid extended support",
            f"move to {newer[-1] if newer else 'a standard-support version'}",
        )
    if newer:
        return warned(
            subject,
            f"offered; a newer standard-support version exists: {newer[-1]}",
            "upgrade when this app pins add-ons and a kubectl layer for it",
        )
    return passed(subject, f"offered, {info.get('versionStatus', 'status unknown')}")


def check_addons(eks, version: str, pins: dict[str, str]) -> list[Check]:  # noqa: ANN001
    """`DescribeAddonVersions`: each pinned build exists for this Kubernetes version."""
    checks = []
    for name, pinned in pins.items():
        subject = f"EKS add-on {name} {pinned}"
        builds = sorted(
            {
                build["addonVersion"]
                for page in eks.get_paginator("describe_addon_versions").paginate(
                    addonName=name, kubernetesVersion=version
                )
                for addon in page.get("addons", [])
                for build in addon.get("addonVersions", [])
                if any(c.get("clusterVersion") == version for c in build.get("compatibilities", []))
            },
            key=version_key,
        )
        if pinned in builds:
            checks.append(passed(subject, f"published for Kubernetes {version}"))
        elif builds:
            checks.append(
                failed(
                    subject,
                    f"not published for Kubernetes {version}; newest compatible: {builds[-1]}",
                    f'set {name} to "{builds[-1]}" in config/versions.py EKS_ADDONS["{version}"]',
                )
            )
        else:
            checks.append(
                failed(
                    subject,
                    f"EKS lists no {name} build for Kubernetes {version} in this region",
                    "choose another kubernetesVersion or region",
                )
            )
    return checks
