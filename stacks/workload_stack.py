"""Helm releases and Kubernetes objects: the model volume, staging, and the vLLM service."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_fsx as fsx
from constructs import Construct
from constructs.cluster_controllers import ClusterControllers
from constructs.deploy_guard import DeployGuard
from constructs.inference_dashboard import InferenceDashboard
from constructs.inference_observability import InferenceObservability
from constructs.library_provider_logs import keep_library_provider_logs_in_stack
from constructs.load_balancer_lookup import LoadBalancerLookup
from constructs.model_staging import ModelStaging
from constructs.vllm_service import PORT_NAME, VllmService

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
            secrets_store=controllers.secrets_store,
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
        if config.observability:
            self._add_observability(config, cluster, service)
        keep_library_provider_logs_in_stack(self)

    def _add_observability(
        self, config: Config, cluster: eks.Cluster, service: VllmService
    ) -> None:
        """Collection, dashboard and alarms. The add-on lives here rather than in ClusterStack:
        its scrape configuration names the workload, its DCGM exporter is only useful once the
        GPU nodes exist, and `observability=false` then touches one stack only."""
        InferenceObservability(
            self,
            "Observability",
            cluster=cluster,
            kubernetes_version=config.kubernetes_version,
            workload_namespace=NAMESPACE,
            workload_name=service.name,
            metrics_port_name=PORT_NAME,
        )
        load_balancer = LoadBalancerLookup(
            self, "LoadBalancerLookup", load_balancer_name=service.load_balancer_name
        )
        # The ALB exists once the Ingress reports its hostname.
        load_balancer.node.add_dependency(service.load_balancer_hostname)
        InferenceDashboard(
            self,
            "Dashboard",
            cluster_name=cluster.cluster_name,
            model_name=config.served_model_name,
            load_balancer=load_balancer.load_balancer,
            target_group=load_balancer.target_group,
            alarm_email=config.alarm_email,
            notify=not config.paused,
        )
