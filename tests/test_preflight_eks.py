"""Preflight checks 3-4: EKS offers the Kubernetes version and every pinned add-on build.

moto 5.2.5 implements neither DescribeClusterVersions nor DescribeAddonVersions (its server
answers 404), so botocore's Stubber answers with responses shaped as the EKS API reference
documents them (ClusterVersionInformation.versionStatus: UNSUPPORTED | STANDARD_SUPPORT |
EXTENDED_SUPPORT; AddonVersionInfo.compatibilities[].clusterVersion); Stubber validates every
request and response against botocore's EKS model.
"""

from __future__ import annotations

import pytest
from botocore.stub import Stubber

from config.versions import EKS_ADDONS
from ops.aws import client
from ops.preflight_eks import check_addons, check_kubernetes_version, version_key
from ops.report import Status


@pytest.fixture
def eks(aws):
    eks = client(aws, "eks")
    with Stubber(eks) as stub:
        yield eks, stub
        stub.assert_no_pending_responses()


def _versions(statuses: dict[str, str]) -> dict:
    return {
        "clusterVersions": [
            {"clusterVersion": version, "versionStatus": status}
            for version, status in statuses.items()
        ]
    }


def test_given_the_version_is_the_newest_standard_one_when_checked_then_pass(eks):
    api, stub = eks
    stub.add_response(
        "describe_cluster_versions",
        _versions(
            {"1.34": "STANDARD_SUPPORT", "1.35": "STANDARD_SUPPORT", "1.32": "EXTENDED_SUPPORT"}
        ),
    )
    check = check_kubernetes_version(api, "1.35")
    assert check.status is Status.PASS


@pytest.mark.parametrize(
    ("statuses", "version", "detail", "fix"),
    [
        (
            {"1.35": "STANDARD_SUPPORT", "1.36": "STANDARD_SUPPORT"},
            "1.35",
            "a newer standard-support version exists: 1.36",
            "upgrade when this app pins add-ons and a kubectl layer for it",
        ),
        (
            {"1.32": "EXTENDED_SUPPORT", "1.35": "STANDARD_SUPPORT"},
            "1.32",
            "offered, but in paid extended support",
            "move to 1.35",
        ),
    ],
)
def test_given_a_newer_or_paid_version_when_checked_then_warn_naming_the_way_out(
    eks, statuses, version, detail, fix
):
    api, stub = eks
    stub.add_response("describe_cluster_versions", _versions(statuses))
    check = check_kubernetes_version(api, version)
    assert check.status is Status.WARN
    assert detail in check.detail
    assert check.fix == fix


def test_given_the_version_is_not_offered_when_checked_then_fail_listing_offered(eks):
    api, stub = eks
    stub.add_response(
        "describe_cluster_versions", _versions({"1.31": "UNSUPPORTED", "1.33": "STANDARD_SUPPORT"})
    )
    check = check_kubernetes_version(api, "1.31")
    assert check.status is Status.FAIL
    assert "offered: 1.33" in check.detail


def _addon(name: str, *builds: tuple[str, str]) -> dict:
    return {
        "addons": [
            {
                "addonName": name,
                "addonVersions": [
                    {"addonVersion": build, "compatibilities": [{"clusterVersion": k8s}]}
                    for build, k8s in builds
                ],
            }
        ]
    }


def test_given_the_pinned_builds_are_published_when_checked_then_one_pass_per_addon(eks):
    api, stub = eks
    pins = EKS_ADDONS["1.35"].by_addon_name()
    for name, build in pins.items():
        stub.add_response(
            "describe_addon_versions",
            _addon(name, (build, "1.35")),
            {"addonName": name, "kubernetesVersion": "1.35"},
        )
    checks = check_addons(api, "1.35", pins)
    assert [check.status for check in checks] == [Status.PASS] * len(pins)
    assert [check.subject for check in checks] == [f"EKS add-on {n} {b}" for n, b in pins.items()]


def test_given_a_pin_not_published_when_checked_then_fail_naming_newest_compatible(eks):
    api, stub = eks
    stub.add_response(
        "describe_addon_versions",
        _addon(
            "coredns",
            ("v1.14.2-eksbuild.1", "1.35"),
            ("v1.14.10-eksbuild.2", "1.35"),
            ("v1.15.0-eksbuild.1", "1.36"),  # newer, but not for this Kubernetes version
        ),
    )
    [check] = check_addons(api, "1.35", {"coredns": "v1.14.2-eksbuild.4"})
    assert check.status is Status.FAIL
    assert "newest compatible: v1.14.10-eksbuild.2" in check.detail
    assert 'EKS_ADDONS["1.35"]' in check.fix


def test_given_no_build_for_the_version_when_checked_then_fail(eks):
    api, stub = eks
    stub.add_response("describe_addon_versions", {"addons": []})
    [check] = check_addons(api, "1.35", {"vpc-cni": "v1.21.1-eksbuild.8"})
    assert check.status is Status.FAIL
    assert "no vpc-cni build" in check.detail


def test_given_build_strings_when_sorted_then_numeric_not_lexical():
    assert version_key("v1.14.10-eksbuild.2") > version_key("v1.14.2-eksbuild.9")
    assert version_key("1.10") > version_key("1.9")
