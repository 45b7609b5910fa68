"""The EKS control plane, its system node group, managed add-ons and kubectl provider."""

from __future__ import annotations

import importlib

from aws_cdk import Acknowledgment, Duration, Fn, Names, RemovalPolicy, Stack, Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct
from constructs.control_plane_log_group import ControlPlaneLogGroup

from config.versions import EKS_ADDONS, KUBERNETES_RELEASES

SYSTEM_NODE_LABELS = {"workload-class": "system"}
# The three AWS managed policies every EKS managed node group role must carry.
NODE_ROLE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonEKS_CNI_Policy",
)


# The AL2023 EKS AMIs (standard and NVIDIA) ship the Lustre kernel module but not the
# `lustre-client` userspace; the AMI maintainers point to user data for it
# (awslabs/amazon-eks-ami PR 2696). EKS merges its own nodeadm NodeConfig part into user data
# of a launch template without an AMI id, which it can only do with a MIME multi-part archive
# (EKS User Guide, "Customize managed nodes with launch templates").
USER_DATA_BOUNDARY = "==VLLM-NODE=="
LUSTRE_CLIENT_SCRIPT = "#!/bin/bash\nset -euo pipefail\ndnf install -y lustre-client\n"


def lustre_client_user_data() -> str:
    """Base64 MIME multi-part user data installing lustre-client, for EKS to merge nodeadm into."""
    return Fn.base64(
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/mixed; boundary="{USER_DATA_BOUNDARY}"\n\n'
        f"--{USER_DATA_BOUNDARY}\n"
        'Content-Type: text/x-shellscript; charset="us-ascii"\n\n'
        f"{LUSTRE_CLIENT_SCRIPT}\n"
        f"--{USER_DATA_BOUNDARY}--\n"
    )


def acknowledge_node_role_policies(nodegroup: eks.Nodegroup) -> None:
    """EKS requires these managed policies on a managed node group's role; say so to cdk-nag."""
    for policy in NODE_ROLE_POLICIES:
        Validations.of(nodegroup.role.node.default_child).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{policy}]",
                reason=f"EKS managed node groups need {policy} on the node role to join the "
                "cluster, pull images and run the VPC CNI; AWS maintains it with EKS.",
            )
        )


def pin_to_cluster_version(nodegroup: eks.Nodegroup, kubernetes_version: str) -> None:
    """Nodes follow the control plane: EKS refuses the next cluster upgrade while any managed
    node group is on an older version, and aws_eks_v2 leaves `Version` unset."""
    nodegroup.node.default_child.add_property_override("Version", kubernetes_version)


def kubectl_layer(
    scope: Construct, construct_id: str, kubernetes_version: str
) -> lambda_.ILayerVersion:
    """The kubectl/helm layer matching the cluster version (config checked it is installed)."""
    release = KUBERNETES_RELEASES[kubernetes_version]
    module = importlib.import_module(release.layer_module)
    return getattr(module, release.layer_class)(scope, construct_id)


class InferenceCluster(Construct):
    """An aws_eks_v2 cluster with logging, KMS secrets encryption and a system node group."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        kubernetes_version: str,
        endpoint_public_access_cidrs: tuple[str, ...] = (),
        admin_principal_arn: str | None = None,
        system_instance_type: str = "m7i.xlarge",
        system_node_count: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        secrets_key = kms.Key(
            self,
            "SecretsKey",
            description="Envelope encryption of Kubernetes secrets",
            enable_key_rotation=True,
            # Destroy leaves nothing behind; KMS still waits 7 days before deleting it.
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        # Fixed at synth (never random: that would replace the cluster on every deploy). The
        # log group EKS writes to is adopted, not owned, and deleted after the VPC, so a
        # redeploy after destroy never meets "already exists" (see ControlPlaneLogGroup).
        cluster_name = Names.unique_resource_name(self, max_length=100, separator="-")
        control_plane_logs = ControlPlaneLogGroup(
            self,
            "ControlPlaneLogs",
            cluster_name=cluster_name,
            outlived_by=[vpc.node.default_child] if vpc.node.default_child else [],
        )
        endpoint_access = eks.EndpointAccess.PUBLIC_AND_PRIVATE
        if endpoint_public_access_cidrs:
            endpoint_access = endpoint_access.only_from(*endpoint_public_access_cidrs)
        self.cluster = eks.Cluster(
            self,
            "Cluster",
            cluster_name=cluster_name,
            version=eks.KubernetesVersion.of(kubernetes_version),
            vpc=vpc,
            vpc_subnets=[ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)],
            default_capacity_type=eks.DefaultCapacityType.NODEGROUP,
            default_capacity=0,
            endpoint_access=endpoint_access,
            secrets_encryption_key=secrets_key,
            cluster_logging=[
                eks.ClusterLoggingTypes.API,
                eks.ClusterLoggingTypes.AUDIT,
                eks.ClusterLoggingTypes.AUTHENTICATOR,
                eks.ClusterLoggingTypes.CONTROLLER_MANAGER,
                eks.ClusterLoggingTypes.SCHEDULER,
            ],
            kubectl_provider_options=eks.KubectlProviderOptions(
                kubectl_layer=kubectl_layer(self, "KubectlLayer", kubernetes_version),
            ),
        )
        self.cluster.node.add_dependency(control_plane_logs)
        # The system nodes run the model staging Job, which mounts the file system.
        system_launch_template = ec2.CfnLaunchTemplate(
            self,
            "SystemNodeLaunchTemplate",
            launch_template_data=ec2.CfnLaunchTemplate.LaunchTemplateDataProperty(
                user_data=lustre_client_user_data(),
                metadata_options=ec2.CfnLaunchTemplate.MetadataOptionsProperty(
                    http_endpoint="enabled",
                    http_tokens="required",
                    # Controllers here (LB controller, FSx CSI controller) may read IMDS from pods.
                    http_put_response_hop_limit=2,
                ),
            ),
        )
        # One system node per AZ (the Auto Scaling group balances them), so the staging Job
        # always finds one in the file system's AZ.
        system_node_count = system_node_count or max(2, len(vpc.private_subnets))
        self.system_nodes = self.cluster.add_nodegroup_capacity(
            "SystemNodes",
            launch_template_spec=eks.LaunchTemplateSpec(
                id=system_launch_template.ref,
                version=system_launch_template.attr_latest_version_number,
            ),
            instance_types=[ec2.InstanceType(system_instance_type)],
            ami_type=eks.NodegroupAmiType.AL2023_X86_64_STANDARD,
            capacity_type=eks.CapacityType.ON_DEMAND,
            min_size=system_node_count,
            desired_size=system_node_count,
            max_size=system_node_count + 1,
            labels=SYSTEM_NODE_LABELS,
            subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        )
        pin_to_cluster_version(self.system_nodes, kubernetes_version)
        self._add_managed_addons(kubernetes_version)
        self._acknowledge_library_findings()
        # The kubectl provider's Lambda log groups default to RETAIN; destroy leaves nothing.
        for child in self.cluster.node.find_child("KubectlProvider").node.find_all():
            if isinstance(child, logs.CfnLogGroup):
                child.apply_removal_policy(RemovalPolicy.DESTROY)
        if admin_principal_arn:
            self.cluster.grant_access(
                "AdminAccess",
                admin_principal_arn,
                [
                    eks.AccessPolicy.from_access_policy_name(
                        "AmazonEKSClusterAdminPolicy", access_scope_type=eks.AccessScopeType.CLUSTER
                    )
                ],
            )

    def _add_managed_addons(self, kubernetes_version: str) -> None:
        versions = EKS_ADDONS[kubernetes_version].by_addon_name()
        # aws_eks_v2 owns the Pod Identity agent add-on (service accounts using Pod Identity
        # reach for it), so pin that one rather than declare a duplicate.
        agent = self.cluster.eks_pod_identity_agent
        agent.node.default_child.add_property_override(
            "AddonVersion", versions.pop("eks-pod-identity-agent")
        )
        addons = [agent]
        for name, version in versions.items():
            addons.append(
                eks.Addon(
                    self,
                    f"Addon-{name}",
                    cluster=self.cluster,
                    addon_name=name,
                    addon_version=version,
                    preserve_on_delete=False,
                )
            )
        for addon in addons:
            # EKS bootstraps self-managed vpc-cni, kube-proxy and CoreDNS; take them over.
            addon.node.default_child.add_property_override("ResolveConflicts", "OVERWRITE")
            # CoreDNS and the agents need somewhere to run before the add-on reports ACTIVE.
            addon.node.add_dependency(self.system_nodes)

    def _acknowledge_library_findings(self) -> None:
        """cdk-nag findings on what aws_eks_v2 builds for us, each with its own reason."""
        Validations.of(self.cluster.role.node.default_child).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
                "AmazonEKSClusterPolicy]",
                reason="The EKS control plane role must carry AmazonEKSClusterPolicy; EKS "
                "documents no customer-managed replacement.",
            )
        )
        acknowledge_node_role_policies(self.system_nodes)
        provider = self.cluster.node.find_child("KubectlProvider")
        handler = provider.node.find_child("Handler")
        framework = provider.node.find_child("Provider").node.find_child("framework-onEvent")
        lambda_policies = {
            "service-role/AWSLambdaBasicExecutionRole": "write its CloudWatch logs",
            "service-role/AWSLambdaVPCAccessExecutionRole": "attach to the cluster's private "
            "subnets to reach the API endpoint",
        }
        for role_owner in (handler, framework):
            role = role_owner.node.find_child("ServiceRole").node.default_child
            for policy, purpose in lambda_policies.items():
                Validations.of(role).acknowledge(
                    Acknowledgment(
                        id=f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{policy}]",
                        reason=f"The kubectl provider Lambda built by aws_eks_v2 uses {policy} to "
                        f"{purpose}.",
                    )
                )
        handler_role = handler.node.find_child("ServiceRole").node.default_child
        stack = Stack.of(self)
        ecr_public_condition = stack.resolve(handler.node.find_child("HasEcrPublic").logical_id)
        for policy in (
            "arn:<AWS::Partition>:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
            '{"Fn::If":["' + ecr_public_condition + '",{"Fn::Join":["",["arn:",'
            '{"Ref":"AWS::Partition"},":iam::aws:policy/AmazonElasticContainerRegistryPublicReadOnly"'
            ']]},{"Ref":"AWS::NoValue"}]}',
        ):
            Validations.of(handler_role).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions-IAM4[Policy::{policy}]",
                    reason="The kubectl provider pulls OCI Helm charts (LeaderWorkerSet) from "
                    "registries, which needs read-only registry access.",
                )
            )
        Validations.of(handler.node.default_child).acknowledge(
            Acknowledgment(
                id="AwsSolutions-L1",
                reason="aws_eks_v2 pins the kubectl handler's runtime to what its kubectl and helm "
                "layer is built for; it is not ours to change.",
            )
        )
        Validations.of(
            framework.node.find_child("ServiceRole")
            .node.find_child("DefaultPolicy")
            .node.default_child
        ).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::<"
                + stack.resolve(handler.node.default_child.logical_id)
                + ".Arn>:*]",
                reason="The custom-resource framework may invoke any version of the kubectl "
                "handler function only; the wildcard is the version qualifier.",
            )
        )
