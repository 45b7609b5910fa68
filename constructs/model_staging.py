"""The FSx volume in Kubernetes, and the Job that puts the weights on it exactly once."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from aws_cdk import Acknowledgment, Aws, Stack, Validations
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_fsx as fsx
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct
from constructs.inference_cluster import SYSTEM_NODE_LABELS
from constructs.lustre_model_store import file_system_generation

import manifests
from config.versions import PYTHON_IMAGE, STAGING_PIP_PACKAGES

FSX_MOUNT_PATH = "/fsx"
HF_TOKEN_MOUNT = "/mnt/hf-token"
HF_TOKEN_KEY = "hf-token"
# The well-known label the kubelet sets to the node's AZ.
ZONE_LABEL = "topology.kubernetes.io/zone"


def model_slug(model_id: str) -> str:
    """A directory/name-safe form of the model id, stable across deploys."""
    readable = re.sub(r"[^a-z0-9]+", "-", model_id.lower().removeprefix("s3://")).strip("-")
    digest = hashlib.sha256(model_id.encode()).hexdigest()[:8]
    return f"{readable[:40].strip('-')}-{digest}"


class ModelStaging(Construct):
    """Static PV/PVC for the file system, and a Job that stages the model and writes a marker."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.Cluster,
        namespace: str,
        file_system: fsx.LustreFileSystem,
        file_system_zone: str,
        storage_gib: int,
        model_id: str,
        model_s3_uri: str | None,
        s3_link_path: str | None,
        hf_token_secret_name: str | None,
        csi_driver: Construct,
        secrets_store: Sequence[Construct],
    ) -> None:
        super().__init__(scope, construct_id)
        slug = model_slug(model_id)
        # Named after the file system's generation: a replaced file system gets a new volume
        # (a PersistentVolume's volumeHandle and a claim's volumeName are immutable).
        generation = file_system_generation(file_system)
        self.claim_name = f"model-store-{generation}"
        if s3_link_path:
            self.model_dir = f"{FSX_MOUNT_PATH}{s3_link_path}"
        else:
            self.model_dir = f"{FSX_MOUNT_PATH}/models/{slug}"
        self.marker = f"{FSX_MOUNT_PATH}/.staged/{slug}.done"

        self.volume = eks.KubernetesManifest(
            self,
            "Volume",
            cluster=cluster,
            manifest=manifests.render(
                "model-volume",
                volume_name=f"{namespace}-model-store-{generation}",
                claim_name=self.claim_name,
                namespace=namespace,
                capacity=f"{storage_gib}Gi",
                file_system_id=file_system.file_system_id,
                dns_name=file_system.dns_name,
                mount_name=file_system.mount_name,
            ),
        )
        self.volume.node.add_dependency(csi_driver)

        self.service_account = eks.ServiceAccount(
            self,
            "ServiceAccount",
            cluster=cluster,
            name="model-stager",
            namespace=namespace,
            identity_type=eks.IdentityType.POD_IDENTITY,
        )
        volume_mounts = [{"name": "model-store", "mountPath": FSX_MOUNT_PATH}]
        volumes = [{"name": "model-store", "persistentVolumeClaim": {"claimName": self.claim_name}}]
        hf_token_file = ""
        self.token_provider: eks.KubernetesManifest | None = None
        if hf_token_secret_name:
            token = secretsmanager.Secret.from_secret_name_v2(self, "HfToken", hf_token_secret_name)
            token.grant_read(self.service_account)
            # The token is mounted as a file and read inside the container: its value never
            # reaches a template, an environment listing or a log line.
            self.token_provider = eks.KubernetesManifest(
                self,
                "HfTokenProvider",
                cluster=cluster,
                manifest=manifests.render(
                    "secret-provider-class",
                    name="hf-token",
                    namespace=namespace,
                    secret_arn=token.secret_arn,
                    key=HF_TOKEN_KEY,
                ),
            )
            self.token_provider.node.add_dependency(*secrets_store)
            volume_mounts.append(
                {"name": "hf-token", "mountPath": HF_TOKEN_MOUNT, "readOnly": True}
            )
            volumes.append(
                {
                    "name": "hf-token",
                    "csi": {
                        "driver": "secrets-store.csi.k8s.io",
                        "readOnly": True,
                        "volumeAttributes": {"secretProviderClass": "hf-token"},
                    },
                }
            )
            hf_token_file = f"{HF_TOKEN_MOUNT}/{HF_TOKEN_KEY}"
        if model_s3_uri:
            self._grant_s3_read(model_s3_uri)

        job = manifests.render(
            "model-staging-job",
            name="",  # set below, from the rendered pod template
            namespace=namespace,
            service_account=self.service_account.service_account_name,
            # In the file system's AZ, so Lustre traffic never crosses AZs. The zone may be a
            # token (Fn::Select over Fn::GetAZs) that CloudFormation resolves at deploy time.
            node_selector={**SYSTEM_NODE_LABELS, ZONE_LABEL: file_system_zone},
            image=PYTHON_IMAGE,
            script=manifests.read_text("stage-model.sh"),
            model_id=model_id,
            model_dir=self.model_dir,
            marker=self.marker,
            model_s3_uri=model_s3_uri or "",
            preload_only=str(bool(s3_link_path)).lower(),
            pip_packages=" ".join(STAGING_PIP_PACKAGES),
            hf_token_file=hf_token_file,
            volume_mounts=volume_mounts,
            volumes=volumes,
        )
        # The template names the model, so the slug's own digest adds nothing; 57 chars at most.
        job[0]["metadata"]["name"] = manifests.job_name(
            f"stage-{slug.rsplit('-', 1)[0]}", Stack.of(self).resolve(job[0]["spec"]["template"])
        )
        self.job = eks.KubernetesManifest(self, "Job", cluster=cluster, manifest=job)
        self.job.node.add_dependency(self.volume)
        self.job.node.add_dependency(self.service_account)
        # Destroy deletes the Job while the CSI node plugins it mounts through can unmount.
        self.job.node.add_dependency(csi_driver)
        if self.token_provider:
            self.job.node.add_dependency(self.token_provider, *secrets_store)

    def _grant_s3_read(self, model_s3_uri: str) -> None:
        """Read-only access to the model's prefix: list it, get its objects, nothing else."""
        bucket_name, _, prefix = model_s3_uri.removeprefix("s3://").partition("/")
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        objects_arn = f"arn:{Aws.PARTITION}:s3:::{bucket_name}/{prefix}*"
        self.service_account.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[objects_arn])
        )
        self.service_account.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[f"arn:{Aws.PARTITION}:s3:::{bucket_name}"],
                conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
            )
        )
        policy = self.service_account.role.node.find_child("DefaultPolicy").node.default_child
        Validations.of(policy).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{bucket_name}/{prefix}*]",
                reason=f"The staging Job copies every object under {model_s3_uri}; the weight "
                "files' names are only known in the bucket. Read-only, that prefix only.",
            )
        )
