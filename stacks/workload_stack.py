"""Helm releases and Kubernetes objects: the model volume, staging, and the vLLM service."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_fsx as fsx
from constructs import Construct
from constructs.cluster_controllers import ClusterControllers
from constructs.deploy_guard import DeployGuard
from constructs.model_staging import ModelStaging
from constructs.vllm_service import VllmService

import manifests
from config.settings import Config

NAMESPACE = "vllm"


class WorkloadStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        cluster: eks.Cluster,
        node_group: eks.Nodegroup,
        file_system: fsx.LustreFileSystem,
        file_system_zone: str,
        s3_link_path: str | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        DeployGuard(self, "DeployGuard", config=config)
        controllers = ClusterControllers(self, "Controllers", cluster=cluster)
        # Device plugins and LWS pods need the GPU nodes to exist before they can be scheduled.
        controllers.node.add_dependency(node_group)
        namespace = eks.KubernetesManifest(
            self,
            "Namespace",
            cluster=cluster,
            manifest=manifests.render("namespace", namespace=NAMESPACE),
        )
        staging = ModelStaging(
            self,
            "ModelStaging",
            cluster=cluster,
            namespace=NAMESPACE,
            file_system=file_system,
            file_system_zone=file_system_zone,
            storage_gib=config.fsx_storage_gib,
            model_id=config.model_id,
            model_s3_uri=config.model_s3_uri,
            s3_link_path=s3_link_path,
            hf_token_secret_name=config.hf_token_secret_name,
            csi_driver=controllers.fsx_csi_driver,
            secrets_provider=controllers.secrets_store_aws_provider,
        )
        staging.node.add_dependency(namespace)
        service = VllmService(
            self,
            "Vllm",
            cluster=cluster,
            config=config,
            namespace=NAMESPACE,
            model_dir=staging.model_dir,
            marker=staging.marker,
            claim_name=staging.claim_name,
            controllers=controllers,
        )
        service.node.add_dependency(namespace)
        service.leader_worker_set.node.add_dependency(staging.volume)
