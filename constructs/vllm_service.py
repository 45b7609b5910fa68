"""vLLM across GPU nodes on a LeaderWorkerSet, behind an ALB that only the allowed CIDRs reach."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import (
    Acknowledgment,
    Aws,
    CfnMapping,
    CfnOutput,
    Duration,
    Fn,
    Names,
    RemovalPolicy,
    Validations,
)
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct
from constructs.cluster_controllers import GPU_NODE_SELECTOR, GPU_TOLERATIONS, ClusterControllers
from constructs.model_staging import FSX_MOUNT_PATH, model_slug
from constructs.secure_edge import LOAD_BALANCER_ATTRIBUTES, SecureEdge

import manifests
from config.settings import Config
from config.versions import DLC_REGISTRY_ACCOUNTS, VLLM_DLC_REPOSITORY, VLLM_DLC_TAG

PORT = 8000
# The leader's API port; it also serves /metrics, which the CloudWatch agent scrapes by name.
PORT_NAME = "http"
MASTER_PORT = 29501
API_KEY_KEY = "api-key"
API_KEY_MOUNT = "/mnt/api-key"
# What the startup probe allows a leader for weight loading, compile and the workers joining
# before liveness may act; vLLM's own wait for its engine gets the same budget, so the probe,
# not an earlier engine timeout, is what ends a start that really hangs.
STARTUP_BUDGET_SECONDS = 60 * 60
STARTUP_PROBE_PERIOD_SECONDS = 10
# A saturated vLLM can take seconds to answer /health. Readiness must not give up after the
# kubelet's 1 s default: a not-ready leader leaves the endpoints, the load balancer controller
# deregisters it, and with one replica the ALB has no target at the busiest moment.
HEALTH_TIMEOUT_SECONDS = 10
# The ALB keeps idle client connections this long (its 60 s default cuts long generations).
ALB_IDLE_TIMEOUT_SECONDS = 600
# The server must keep an idle connection open longer than the ALB does, or the ALB reuses a
# connection vLLM has just closed and the client gets a 502.
SERVER_KEEP_ALIVE_SECONDS = ALB_IDLE_TIMEOUT_SECONDS + 60
# What the kubelet, the CNI, the device plugins and the CSI node plugins keep on a GPU node:
# one vCPU in twelve (8 of p4d's 96) and 15% of memory.
NODE_RESERVED_VCPU_SHARE = 12
NODE_MEMORY_SHARE = 0.85
# vLLM writes its torch.compile artifacts under VLLM_CACHE_ROOT/torch_compile_cache (vllm/envs.py,
# vllm/compilation/backends.py). On the shared file system a recreated group loads them instead
# of compiling again.
COMPILE_CACHE_ROOT = f"{FSX_MOUNT_PATH}/vllm-cache"


class VllmService(Construct):
    """API key, LeaderWorkerSet, leader Service and Ingress, and the outputs to use them."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.Cluster,
        config: Config,
        namespace: str,
        model_dir: str,
        marker: str,
        claim_name: str,
        controllers: ClusterControllers,
    ) -> None:
        super().__init__(scope, construct_id)
        self.name = "vllm"
        # LWS makes a headless Service named exactly like the LeaderWorkerSet, and leaves it
        # out if that name is taken: the one the Ingress uses must be named otherwise.
        self.leader_service_name = f"{self.name}-leader"
        self.api_key = secretsmanager.Secret(
            self,
            "ApiKey",
            description="Bearer token clients send to the vLLM OpenAI-compatible endpoint",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=48, exclude_punctuation=True
            ),
            removal_policy=RemovalPolicy.DESTROY,
        )
        Validations.of(self.api_key.node.default_child).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SMG4",
                reason="A bearer token held by API clients: automatic rotation would lock them out "
                "unannounced. Rotate on purpose with put-secret-value, then restart the "
                "LeaderWorkerSet so the leaders read the new key.",
            )
        )
        self.service_account = eks.ServiceAccount(
            self,
            "ServiceAccount",
            cluster=cluster,
            name=self.name,
            namespace=namespace,
            identity_type=eks.IdentityType.POD_IDENTITY,
        )
        self.api_key.grant_read(self.service_account)
        api_key_provider = eks.KubernetesManifest(
            self,
            "ApiKeyProvider",
            cluster=cluster,
            manifest=manifests.render(
                "secret-provider-class",
                name=f"{self.name}-api-key",
                namespace=namespace,
                secret_arn=self.api_key.secret_arn,
                key=API_KEY_KEY,
            ),
        )
        api_key_provider.node.add_dependency(controllers.secrets_store_aws_provider)

        self.leader_worker_set = eks.KubernetesManifest(
            self,
            "LeaderWorkerSet",
            cluster=cluster,
            manifest=manifests.render(
                "leaderworkerset",
                **leader_worker_set_values(
                    config,
                    name=self.name,
                    namespace=namespace,
                    image=vllm_image(self, config),
                    service_account=self.name,
                    model_dir=model_dir,
                    marker=marker,
                    claim_name=claim_name,
                ),
            ),
        )
        for dependency in (
            controllers.leader_worker_set,
            controllers.leader_worker_set_webhook,
            controllers.nvidia_device_plugin,
            controllers.efa_device_plugin,
            controllers.fsx_csi_driver,
            *controllers.secrets_store,
            api_key_provider,
            self.service_account,
        ):
            self.leader_worker_set.node.add_dependency(dependency)

        self.service = eks.KubernetesManifest(
            self,
            "LeaderService",
            cluster=cluster,
            manifest=manifests.render(
                "leader-service",
                name=self.leader_service_name,
                namespace=namespace,
                lws_name=self.name,
                port=PORT,
            ),
        )
        self.service.node.add_dependency(controllers.load_balancer_controller)
        # A fixed ALB name lets the dashboard and alarms find the ALB once it exists.
        self.load_balancer_name = Names.unique_resource_name(
            self, max_length=32, separator="-"
        ).lower()
        self.edge = SecureEdge(self, "Edge", config=config)
        self.ingress = eks.KubernetesManifest(
            self,
            "Ingress",
            cluster=cluster,
            manifest=ingress_manifest(
                config,
                name=self.name,
                namespace=namespace,
                service_name=self.leader_service_name,
                load_balancer_name=self.load_balancer_name,
                edge=self.edge,
            ),
        )
        for prerequisite in self.edge.ingress_prerequisites:
            self.ingress.node.add_dependency(prerequisite)
        # Destroy removes the Ingress, and so the ALB the controller made, before the controller.
        self.ingress.node.add_dependency(controllers.load_balancer_controller)
        self.ingress.node.add_dependency(self.service)
        self._add_outputs(cluster, config, namespace)

    def _add_outputs(self, cluster: eks.Cluster, config: Config, namespace: str) -> None:
        hostname = eks.KubernetesObjectValue(
            self,
            "LoadBalancerHostname",
            cluster=cluster,
            object_type="ingress",
            object_name=self.name,
            object_namespace=namespace,
            json_path=".status.loadBalancer.ingress[0].hostname",
            timeout=Duration.minutes(10),
        )
        hostname.node.add_dependency(self.ingress)
        self.load_balancer_hostname = hostname
        self.edge.point_domain_at(self, hostname.value)
        # What an OpenAI SDK takes as its base URL.
        url = f"{self.edge.base_url(hostname.value)}/v1"
        key_command = (
            f"aws secretsmanager get-secret-value --region {Aws.REGION} "
            f"--secret-id {self.api_key.secret_arn} --query SecretString --output text"
        )
        CfnOutput(self, "EndpointUrl", value=url, description="OpenAI-compatible base URL")
        CfnOutput(self, "ApiKeyCommand", value=key_command, description="Prints the API key")
        # What `make smoke`, `make verify-efa` and `make bench` read instead of parsing commands.
        CfnOutput(
            self,
            "ApiKeySecretArn",
            value=self.api_key.secret_arn,
            description="Secrets Manager secret holding the API key",
        )
        CfnOutput(self, "ClusterName", value=cluster.cluster_name, description="EKS cluster name")
        for output_id, path, body in (
            (
                "CurlCompletions",
                "completions",
                {
                    "model": config.served_model_name,
                    "prompt": "The capital of France is",
                    "max_tokens": 32,
                },
            ),
            (
                "CurlChatCompletions",
                "chat/completions",
                {
                    "model": config.served_model_name,
                    # A reasoning model thinks first: room to finish <think> and still answer.
                    "max_tokens": 1024,
                    "messages": [{"role": "user", "content": "Say hello in one sentence."}],
                },
            ),
        ):
            CfnOutput(
                self,
                output_id,
                value=(
                    f'curl -sS {url}/{path} -H "Authorization: Bearer $({key_command})" '
                    f"-H 'Content-Type: application/json' -d '{json.dumps(body)}'"
                ),
                description=f"A ready request to /v1/{path}",
            )
        CfnOutput(
            self,
            "KubeconfigCommand",
            value=f"aws eks update-kubeconfig --region {Aws.REGION} --name {cluster.cluster_name}",
            description="Points kubectl at the cluster (needs an access entry, see README)",
        )


def vllm_image(scope: Construct, config: Config) -> str:
    """The configured image, else the vLLM DLC from the deploying region's registry account."""
    if config.vllm_image:
        return config.vllm_image
    mapping = CfnMapping(
        scope,
        "DlcRegistry",
        mapping={region: {"account": account} for region, account in DLC_REGISTRY_ACCOUNTS.items()},
    )
    account = mapping.find_in_map(Aws.REGION, "account")
    return Fn.join(
        "",
        [
            account,
            ".dkr.ecr.",
            Aws.REGION,
            ".",
            Aws.URL_SUFFIX,
            f"/{VLLM_DLC_REPOSITORY}:{VLLM_DLC_TAG}",
        ],
    )


def serve_args(config: Config, model_dir: str) -> list[str]:
    """`vllm serve` arguments shared by both executors; the planner fixed TP, PP and length."""
    plan = config.plan
    args = [
        model_dir,
        "--served-model-name",
        config.served_model_name,
        "--port",
        str(PORT),
        "--download-dir",
        f"{FSX_MOUNT_PATH}/models",
        "--tensor-parallel-size",
        str(plan.tensor_parallel_size),
        "--pipeline-parallel-size",
        str(plan.pipeline_parallel_size),
        "--gpu-memory-utilization",
        f"{config.gpu_memory_utilization:.2f}",
    ]
    if plan.max_model_len:
        args += ["--max-model-len", str(plan.max_model_len)]
    return args


def executor_commands(config: Config, model_dir: str) -> dict[str, Any]:
    """Leader and worker command/args for the configured distributed executor."""
    args = serve_args(config, model_dir)
    if config.distributed_executor == "ray":
        return {
            "leader_command": [
                "/bin/bash",
                "-c",
                manifests.read_text("ray-leader.sh"),
                "ray-leader",
            ],
            "leader_args": [*args, "--distributed-executor-backend", "ray"],
            "worker_command": ["/bin/bash", "-c", manifests.read_text("ray-worker.sh")],
            "worker_args": [],
        }
    multinode = [
        "--distributed-executor-backend",
        "mp",
        "--nnodes",
        str(config.gpu_node_count),
        "--node-rank",
        "$(LWS_WORKER_INDEX)",
        "--master-addr",
        "$(LWS_LEADER_ADDRESS)",
        "--master-port",
        str(MASTER_PORT),
    ]
    return {
        # The DLC's entrypoint is `vllm serve "$@"`; name the command so args mean the same.
        "leader_command": ["vllm", "serve"],
        "leader_args": [*args, *multinode],
        "worker_command": ["vllm", "serve"],
        "worker_args": [*args, *multinode, "--headless"],
    }


def compile_cache_dir(config: Config) -> str:
    """vLLM's cache root on FSx, one per model, image and TP/PP layout.

    vLLM hashes its config, traced code and compiler settings into the directory below this
    root; naming the model, image and layout in the path keeps deployments apart by
    construction rather than by trusting that hash alone, and lets an operator delete one
    deployment's cache by name.
    """
    image = config.vllm_image or f"{VLLM_DLC_REPOSITORY}:{VLLM_DLC_TAG}"
    plan = config.plan
    layout = f"tp{plan.tensor_parallel_size}-pp{plan.pipeline_parallel_size}"
    return f"{COMPILE_CACHE_ROOT}/{model_slug(config.model_id)}/{model_slug(image)}/{layout}"


def leader_worker_set_values(
    config: Config,
    *,
    name: str,
    namespace: str,
    image: str,
    service_account: str,
    model_dir: str,
    marker: str,
    claim_name: str,
) -> dict[str, Any]:
    instance = config.instance
    shm_gib = min(256, instance.memory_gib // 8)
    memory = f"{int(instance.memory_gib * NODE_MEMORY_SHARE)}Gi"
    accelerators = {"nvidia.com/gpu": instance.gpus}
    efa_env = []
    if instance.efa_interfaces:
        accelerators["vpc.amazonaws.com/efa"] = instance.efa_interfaces
        # libfabric picks EFA for NCCL; NVLink, shared memory and GPUDirect stay on.
        efa_env = [{"name": "FI_PROVIDER", "value": "efa"}]
    common_env: list[dict[str, Any]] = [
        *efa_env,
        # INFO on INIT and NET only: the lines that name the network NCCL chose (NET/OFI and
        # its provider, or NET/Socket), which `make verify-efa` reads; nothing per operation.
        {"name": "NCCL_DEBUG", "value": "INFO"},
        {"name": "NCCL_DEBUG_SUBSYS", "value": "INIT,NET"},
        # Weights come from FSx only; a pod never reaches for the Hub.
        {"name": "HF_HUB_OFFLINE", "value": "1"},
        {"name": "GPUS_PER_NODE", "value": str(instance.gpus)},
        {"name": "VLLM_HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "VLLM_CACHE_ROOT", "value": compile_cache_dir(config)},
        # vLLM's engine-ready wait (600 s by default) would end a slow multi-node start first.
        {"name": "VLLM_ENGINE_READY_TIMEOUT_S", "value": str(STARTUP_BUDGET_SECONDS)},
    ]
    api_key_env = {
        "name": "VLLM_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": f"{name}-api-key", "key": API_KEY_KEY}},
    }
    model_mount = {"name": "model-store", "mountPath": FSX_MOUNT_PATH}
    shm_mount = {"name": "dshm", "mountPath": "/dev/shm"}
    api_key_mount = {"name": "api-key", "mountPath": API_KEY_MOUNT, "readOnly": True}
    base_volumes = [
        {"name": "model-store", "persistentVolumeClaim": {"claimName": claim_name}},
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{shm_gib}Gi"}},
    ]
    api_key_volume = {
        "name": "api-key",
        "csi": {
            "driver": "secrets-store.csi.k8s.io",
            "readOnly": True,
            "volumeAttributes": {"secretProviderClass": f"{name}-api-key"},
        },
    }
    wait_for_model = {
        "name": "wait-for-model",
        "image": image,
        "command": [
            "/bin/sh",
            "-c",
            f'until [ -f "{marker}" ]; do echo "waiting for {marker}"; sleep 15; done',
        ],
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "128Mi"},
        },
        "volumeMounts": [{**model_mount, "readOnly": True}],
    }
    return {
        "name": name,
        "namespace": namespace,
        "replicas": config.lws_replicas,
        "size": config.gpu_node_count,
        "service_account": service_account,
        "node_selector": {**GPU_NODE_SELECTOR, "node.kubernetes.io/instance-type": instance.name},
        "tolerations": GPU_TOLERATIONS,
        "init_containers": [wait_for_model],
        "image": image,
        "port": PORT,
        "port_name": PORT_NAME,
        "leader_env": [
            *common_env,
            api_key_env,
            {"name": "VLLM_HTTP_TIMEOUT_KEEP_ALIVE", "value": str(SERVER_KEEP_ALIVE_SECONDS)},
        ],
        "worker_env": common_env,
        "resources": {
            "requests": {
                "cpu": str(instance.vcpus - max(1, instance.vcpus // NODE_RESERVED_VCPU_SHARE)),
                "memory": memory,
                **accelerators,
            },
            "limits": {"memory": memory, **accelerators},
        },
        "security_context": {"privileged": False, "capabilities": {"add": ["IPC_LOCK"]}},
        "leader_volume_mounts": [model_mount, shm_mount, api_key_mount],
        "worker_volume_mounts": [model_mount, shm_mount],
        "leader_volumes": [*base_volumes, api_key_volume],
        "worker_volumes": base_volumes,
        "startup_period_seconds": STARTUP_PROBE_PERIOD_SECONDS,
        "health_timeout_seconds": HEALTH_TIMEOUT_SECONDS,
        "startup_failure_threshold": STARTUP_BUDGET_SECONDS // STARTUP_PROBE_PERIOD_SECONDS,
        **executor_commands(config, model_dir),
    }


def ingress_manifest(
    config: Config,
    *,
    name: str,
    namespace: str,
    service_name: str,
    load_balancer_name: str,
    edge: SecureEdge,
) -> list[dict[str, Any]]:
    manifest = manifests.render(
        "ingress",
        name=name,
        namespace=namespace,
        scheme=config.endpoint_scheme,
        load_balancer_name=load_balancer_name,
        inbound_cidrs=",".join(config.allowed_cidrs),
        listen_ports=json.dumps(edge.listen_ports),
        idle_timeout_seconds=ALB_IDLE_TIMEOUT_SECONDS,
        service_name=service_name,
        port=PORT,
    )
    annotations = manifest[0]["metadata"]["annotations"]
    annotations.update(edge.ingress_annotations(annotations[LOAD_BALANCER_ATTRIBUTES]))
    return manifest
