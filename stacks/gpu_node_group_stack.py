"""The EFA-enabled GPU node group."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct
from constructs.efa_node_group import EfaNodeGroup

from config.settings import Config


class GpuNodeGroupStack(Stack):
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
        self.gpu_nodes = EfaNodeGroup(
            self,
            "GpuNodes",
            cluster=cluster,
            kubernetes_version=config.kubernetes_version,
            vpc=vpc,
            subnet=subnet,
            instance=config.instance,
            node_count=config.gpu_nodes_total,
            desired_count=config.gpu_nodes_desired,
            root_volume_gib=config.gpu_root_volume_gib,
            capacity_reservation_id=config.capacity_reservation_id,
            capacity_block=config.capacity_block,
            placement_group_name=config.placement_group_name,
        )
