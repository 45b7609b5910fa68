"""The controllers and device plugins the vLLM workload needs, as pinned Helm releases."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, Duration, Stack, Validations
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct
from constructs.efa_node_group import GPU_NODE_LABELS, GPU_TAINT
from constructs.inference_cluster import SYSTEM_NODE_LABELS

import manifests
from config.versions import ALB_CONTROLLER_IMAGE, ALB_CONTROLLER_VERSION, CHARTS, PYTHON_IMAGE

CHART_TIMEOUT = Duration.minutes(10)
# The LWS chart's admission webhooks for LeaderWorkerSets (kubernetes-sigs/lws
# charts/lws/templates/webhook/webhook.yaml): the Service and the paths it must serve.
LWS_WEBHOOK_SERVICE = "lws-webhook-service"
LWS_WEBHOOK_PATHS = (
    "/mutate-leaderworkerset-x-k8s-io-v1-leaderworkerset",
    "/validate-leaderworkerset-x-k8s-io-v1-leaderworkerset",
)
# How long the check Job may wait, and the stack resource that reads its result a little longer;
# both inside the kubectl provider Lambda's 15 minutes.
WEBHOOK_WAIT = Duration.minutes(9)
WEBHOOK_READ_TIMEOUT = Duration.minutes(10)
GPU_TOLERATIONS = [
    {"key": GPU_TAINT.key, "operator": "Exists", "effect": "NoSchedule"},
]
GPU_NODE_SELECTOR = {"workload-class": GPU_NODE_LABELS["workload-class"]}
SECRETS_TOKEN_AUDIENCES = ("sts.amazonaws.com", "pods.eks.amazonaws.com")
# Resources named by the controller at run time, in the policy aws-cdk-lib bundles for it.
CONTROLLER_POLICY_WILDCARDS = (
    "*",
    "arn:<AWS::Partition>:ec2:*:*:security-group/*",
    *(
        f"arn:<AWS::Partition>:elasticloadbalancing:*:*:{kind}"
        for kind in (
            "loadbalancer/app/*/*",
            "loadbalancer/net/*/*",
            "targetgroup/*/*",
            "listener-rule/app/*/*/*",
            "listener-rule/net/*/*/*",
            "listener/app/*/*/*",
            "listener/net/*/*/*",
        )
    ),
)


class ClusterControllers(Construct):
    """AWS Load Balancer Controller, FSx CSI, Secrets Store CSI, LWS, NVIDIA and EFA plugins.

    Every release waits for nothing longer than its own pods, well inside the kubectl
    provider's 15-minute Lambda limit.
    """

    def __init__(self, scope: Construct, construct_id: str, *, cluster: eks.Cluster) -> None:
        super().__init__(scope, construct_id)
        self._cluster = cluster
        self.load_balancer_controller = eks.AlbController(
            self,
            "LoadBalancerController",
            cluster=cluster,
            version=getattr(eks.AlbControllerVersion, ALB_CONTROLLER_VERSION),
            additional_helm_chart_values={"nodeSelector": SYSTEM_NODE_LABELS},
            # The public gallery serves every region; the library default pulls across
            # regions from us-west-2's private registry.
            repository=ALB_CONTROLLER_IMAGE,
        )
        # Leave Helm's wait inside the kubectl Lambda's 15 minutes, as for every other chart.
        release = self.load_balancer_controller.node.find_child("Resource")
        release.node.default_child.node.default_child.add_property_override(
            "Timeout", f"{CHART_TIMEOUT.to_seconds():.0f}s"
        )
        self._acknowledge_controller_policy()
        self.fsx_csi_driver = self._chart(
            "aws-fsx-csi-driver",
            {
                # Static volumes only: the controller provisions nothing, so keep it on the
                # system nodes; the node plugin must reach the GPU nodes despite their taint.
                "controller": {"nodeSelector": SYSTEM_NODE_LABELS},
                "node": {"tolerateAllTaints": False, "tolerations": GPU_TOLERATIONS},
            },
        )
        self.leader_worker_set = self._chart("lws", {"nodeSelector": SYSTEM_NODE_LABELS})
        self.leader_worker_set_webhook = self._webhook_ready(
            "LwsWebhookReady", self.leader_worker_set, "lws", LWS_WEBHOOK_SERVICE, LWS_WEBHOOK_PATHS
        )
        self.nvidia_device_plugin = self._chart(
            "nvidia-device-plugin",
            {
                "nodeSelector": GPU_NODE_SELECTOR,
                "tolerations": GPU_TOLERATIONS,
                "gfd": {"enabled": False},
                "nfd": {"enabled": False},
            },
        )
        self.efa_device_plugin = self._chart(
            "aws-efa-k8s-device-plugin",
            {"nodeSelector": GPU_NODE_SELECTOR, "tolerations": GPU_TOLERATIONS},
        )
        self.secrets_store_driver = self._chart(
            "secrets-store-csi-driver",
            {
                # Mirror mounted secrets into Kubernetes Secrets so pods can use secretKeyRef.
                "syncSecret": {"enabled": True},
                "enableSecretRotation": True,
                "linux": {"tolerations": GPU_TOLERATIONS},
                # The AWS provider (3.x) mints no tokens itself: the driver hands it the pod's
                # service-account tokens for these audiences (IRSA and Pod Identity).
                "tokenRequests": [{"audience": audience} for audience in SECRETS_TOKEN_AUDIENCES],
            },
        )
        self.secrets_store_aws_provider = self._chart(
            "secrets-store-csi-driver-provider-aws",
            {
                # The driver is its own pinned release above.
                "secrets-store-csi-driver": {"install": False},
                "tolerations": GPU_TOLERATIONS,
            },
        )
        self.secrets_store_aws_provider.node.add_dependency(self.secrets_store_driver)

    @property
    def secrets_store(self) -> tuple[eks.HelmChart, eks.HelmChart]:
        """The driver and the AWS provider: a pod mounting a secret needs both to unmount it."""
        return (self.secrets_store_driver, self.secrets_store_aws_provider)

    def _acknowledge_controller_policy(self) -> None:
        policy = (
            self.load_balancer_controller.node.find_child("alb-sa")
            .node.find_child("Role")
            .node.find_child("DefaultPolicy")
            .node.default_child
        )
        for resource in CONTROLLER_POLICY_WILDCARDS:
            Validations.of(policy).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::{resource}]",
                    reason="The AWS Load Balancer Controller's upstream IAM policy, bundled by "
                    "aws-cdk-lib for this controller version: it creates and tags load balancers, "
                    "target groups, listeners and security groups whose names it chooses at "
                    "run time, and scopes mutations by the elbv2.k8s.aws/cluster tag instead.",
                )
            )

    def _webhook_ready(
        self,
        construct_id: str,
        chart: eks.HelmChart,
        release: str,
        service: str,
        paths: tuple[str, ...],
    ) -> eks.KubernetesObjectValue:
        """A Job that completes once `chart`'s webhook `service` answers on `paths`, and the
        stack resource that waits for it: whatever the webhook admits depends on the result."""
        namespace = CHARTS[release].namespace
        job = manifests.render(
            "webhook-ready-job",
            name="",  # set below, from the rendered pod template
            namespace=namespace,
            deadline_seconds=int(WEBHOOK_WAIT.to_seconds()),
            node_selector=SYSTEM_NODE_LABELS,
            image=PYTHON_IMAGE,
            script=manifests.read_text("wait-for-webhook.py"),
            host=f"{service}.{namespace}.svc",
            paths=" ".join(paths),
        )
        name = manifests.job_name(
            f"{service}-ready", Stack.of(self).resolve(job[0]["spec"]["template"])
        )
        job[0]["metadata"]["name"] = name
        check = eks.KubernetesManifest(
            self, f"{construct_id}Job", cluster=self._cluster, manifest=job
        )
        ready = eks.KubernetesObjectValue(
            self,
            construct_id,
            cluster=self._cluster,
            object_type="job",
            object_name=name,
            object_namespace=namespace,
            json_path=".status.succeeded",
            timeout=WEBHOOK_READ_TIMEOUT,
        )
        check.node.add_dependency(chart)
        ready.node.add_dependency(check)
        return ready

    def _chart(self, release: str, values: dict[str, Any]) -> eks.HelmChart:
        pin = CHARTS[release]
        chart = eks.HelmChart(
            self,
            release,
            cluster=self._cluster,
            release=pin.release,
            repository=pin.repository,
            chart=pin.chart,
            version=pin.version,
            namespace=pin.namespace,
            create_namespace=True,
            values=values,
            wait=True,
            timeout=CHART_TIMEOUT,
        )
        # The controller's Service webhook rejects Services until its pods answer.
        chart.node.add_dependency(self.load_balancer_controller)
        return chart
