"""VPC, EKS control plane, system nodes and the kubectl provider."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct
from constructs.cluster_network import ClusterNetwork
from constructs.deploy_guard import DeployGuard
from constructs.inference_cluster import InferenceCluster
from constructs.library_provider_logs import keep_library_provider_logs_in_stack

from config.settings import Config


class ClusterStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: Config, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        DeployGuard(self, "DeployGuard", config=config)
        network = ClusterNetwork(
            self,
            "Network",
            nat_gateways=config.nat_gateways,
            availability_zones=config.availability_zones,
            gpu_availability_zone=config.gpu_availability_zone,
            retain_gpu_subnet=config.fsx_removal_policy == "RETAIN",
        )
        inference_cluster = InferenceCluster(
            self,
            "Eks",
            vpc=network.vpc,
            kubernetes_version=config.kubernetes_version,
            endpoint_public_access_cidrs=config.endpoint_public_access_cidrs,
            admin_principal_arn=config.admin_principal_arn,
        )
        self.vpc = network.vpc
        self.gpu_subnet = network.gpu_subnet
        self.cluster = inference_cluster.cluster
        keep_library_provider_logs_in_stack(self)
