"""FSx for Lustre for the model weights."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct
from constructs.lustre_model_store import LustreModelStore

from config.settings import Config


class FsxStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        cluster: eks.Cluster,
        vpc: ec2.IVpc,
        subnet: ec2.ISubnet,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.model_store = LustreModelStore(
            self,
            "ModelStore",
            vpc=vpc,
            subnet=subnet,
            client_security_group=cluster.cluster_security_group,
            deployment_type=config.fsx_deployment_type,
            storage_gib=config.fsx_storage_gib,
            throughput_per_tib=config.fsx_throughput_per_tib,
            removal_policy=config.fsx_removal_policy,
            model_s3_uri=config.model_s3_uri,
        )
