#!/usr/bin/env python3
"""Builds the configuration, the four stacks and the cdk-nag checks."""

from __future__ import annotations

import sys

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from config.errors import ConfigError
from config.settings import (
    DOCUMENTATION_CIDR,
    Config,
    config_from_context,
    kubernetes_version_warning,
)
from stacks.cluster_stack import ClusterStack
from stacks.fsx_stack import FsxStack
from stacks.gpu_node_group_stack import GpuNodeGroupStack
from stacks.workload_stack import WorkloadStack


def build_app(app: cdk.App) -> cdk.App:
    """Add the stacks to `app`; raises ConfigError for bad settings (tests call this too)."""
    config = config_from_context(app.node.get_all_context())
    cluster_stack = ClusterStack(app, "VllmClusterStack", config=config)
    gpu_stack = GpuNodeGroupStack(
        app,
        "VllmGpuNodeGroupStack",
        config=config,
        cluster=cluster_stack.cluster,
        vpc=cluster_stack.vpc,
        subnet=cluster_stack.gpu_subnet,
    )
    fsx_stack = FsxStack(
        app,
        "VllmFsxStack",
        config=config,
        cluster=cluster_stack.cluster,
        vpc=cluster_stack.vpc,
        subnet=cluster_stack.gpu_subnet,
    )
    WorkloadStack(
        app,
        "VllmWorkloadStack",
        config=config,
        cluster=cluster_stack.cluster,
        node_group=gpu_stack.gpu_nodes.nodegroup,
        file_system=fsx_stack.model_store.file_system,
        file_system_zone=fsx_stack.model_store.availability_zone,
        s3_link_path=fsx_stack.model_store.s3_link_path,
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    for notice in _notices(config):
        print(notice, file=sys.stderr)
    return app


def _notices(config: Config) -> list[str]:
    notices = []
    if config.allowed_cidrs_defaulted:
        notices.append(
            f"NOTE: allowedCidrs is not set; synthesized with the documentation CIDR "
            f"{DOCUMENTATION_CIDR}. Deploy refuses this: pass -c allowedCidrs=<CIDR>[,<CIDR>]."
        )
    if config.endpoint_scheme == "internet-facing" and not config.https:
        notices.append(
            "NOTE: the endpoint is internet-facing over plain HTTP: the API key and every "
            "prompt travel in clear text. Set domainName (with hostedZoneId and hostedZoneName, "
            "or certificateArn) for HTTPS; see README, Exposing the endpoint."
        )
    if config.access_log_removal_policy == "RETAIN":
        notices.append(
            "NOTE: accessLogRemovalPolicy=RETAIN: cdk destroy leaves the ALB access-log "
            "bucket and its logs behind."
        )
    if config.fsx_removal_policy == "RETAIN":
        notices.append(
            "NOTE: fsxRemovalPolicy=RETAIN: `cdk destroy` keeps the FSx for Lustre file system "
            "(billed until you delete it) and, because it still occupies them, its security "
            "group, the GPU subnet and the VPC; delete them yourself, the file system first."
        )
    warning = kubernetes_version_warning(config.kubernetes_version)
    if warning:
        notices.append(f"WARNING: {warning}")
    return notices


def main() -> int:
    app = cdk.App()
    try:
        build_app(app)
    except ConfigError as error:
        for problem in error.problems:
            print(f"Invalid setting {problem}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
