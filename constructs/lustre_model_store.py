"""FSx for Lustre holding the model weights, next to the GPU nodes."""

from __future__ import annotations

import hashlib
import json

from aws_cdk import CrossStackReferences, Names, ReferenceStrength, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_fsx as fsx
from constructs import Construct

# Lustre clients reach the servers on 988 (LNet) and 1018-1023.
LUSTRE_PORT_RANGES = ((988, 988), (1018, 1023))
LUSTRE_PORTS = tuple(
    ec2.Port.tcp(low) if low == high else ec2.Port.tcp_range(low, high)
    for low, high in LUSTRE_PORT_RANGES
)
# Where a PERSISTENT_2 data repository association shows the S3 prefix inside the file system.
S3_LINK_PATH = "/s3-models"
# AWS::FSx::FileSystem properties whose change may replace the file system (CloudFormation
# resource reference: "Update requires: Replacement" for the type, subnets, security groups,
# storage type, KMS key and backup; LustreConfiguration whole, since its deployment type does
# and over-counting only renames a volume).
REPLACING_PROPERTIES = (
    "file_system_type",
    "subnet_ids",
    "security_group_ids",
    "storage_type",
    "kms_key_id",
    "backup_id",
    "file_system_type_version",
    "lustre_configuration",
)


def file_system_generation(file_system: fsx.LustreFileSystem) -> str:
    """A digest that changes whenever CloudFormation may replace the file system.

    Consumers read the file system's id, DNS name and mount name through weak references
    (Fn::GetStackOutput), which CloudFormation resolves only when the consumer's stack is
    deployed; and the CDK CLI skips a stack whose template did not change. So a consumer puts
    this digest into what it names after the file system: its template then changes when the
    file system is replaced, its stack is deployed, and it reads the new file system.
    """
    cfn = file_system.node.default_child
    stack = Stack.of(cfn)
    described = {name: stack.resolve(getattr(cfn, name)) for name in REPLACING_PROPERTIES}
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:8]


class LustreModelStore(Construct):
    """A Lustre file system in one subnet, reachable only from the cluster and itself."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnet: ec2.ISubnet,
        client_security_group: ec2.ISecurityGroup,
        deployment_type: str,
        storage_gib: int,
        throughput_per_tib: int | None,
        removal_policy: str,
        model_s3_uri: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="FSx for Lustre: Lustre ports from the EKS cluster and itself only",
            allow_all_outbound=False,
        )
        for peer, name in ((client_security_group, "EKS cluster"), (self.security_group, "itself")):
            for port in LUSTRE_PORTS:
                self.security_group.add_ingress_rule(peer, port, f"Lustre from {name}")
                self.security_group.add_egress_rule(peer, port, f"Lustre to {name}")
        # The client side of FSx's documented rules ("File system access control with Amazon
        # VPC"): the clients' group admits Lustre traffic from the file system's group. Declared
        # here, in the file system's stack, so the cluster's stack never refers back to it.
        for index, (from_port, to_port) in enumerate(LUSTRE_PORT_RANGES):
            ec2.CfnSecurityGroupIngress(
                self,
                f"ClientIngress{index}",
                group_id=client_security_group.security_group_id,
                source_security_group_id=self.security_group.security_group_id,
                ip_protocol="tcp",
                from_port=from_port,
                to_port=to_port,
                description="Lustre from the FSx file system",
            )

        self.file_system = fsx.LustreFileSystem(
            self,
            "FileSystem",
            vpc=vpc,
            vpc_subnet=subnet,
            security_group=self.security_group,
            storage_capacity_gib=storage_gib,
            lustre_configuration=fsx.LustreConfiguration(
                deployment_type=fsx.LustreDeploymentType[deployment_type],
                per_unit_storage_throughput=throughput_per_tib,
                data_compression_type=fsx.LustreDataCompressionType.LZ4,
            ),
            file_system_type_version=fsx.FileSystemTypeVersion.V_2_15,
            # Never leave the L2's RETAIN default implicit: the caller decides.
            removal_policy=RemovalPolicy[removal_policy],
        )
        if removal_policy == "RETAIN":
            # The retained file system's network interface keeps using its group.
            self.security_group.apply_removal_policy(RemovalPolicy.RETAIN)
        # Id, DNS name and mount name change when the file system is replaced (e.g. a new
        # deployment type): weak references let that update through where exports would not.
        CrossStackReferences.of(self.file_system).produce(ReferenceStrength.WEAK)
        # The L2 always adds its own self-referencing TCP 988-1023 rule; only 988 and
        # 1018-1023 are Lustre's, so drop the wider range.
        self.security_group.node.try_remove_child(
            f"from {Names.unique_id(self.security_group)}:988-1023"
        )
        # CreateFileSystem refuses a group that does not yet admit Lustre traffic, and the rules
        # are separate resources CloudFormation would otherwise create alongside the file system.
        self.file_system.node.add_dependency(self.security_group)
        # Where Lustre traffic stays in one AZ: clients that mount the file system run here.
        self.availability_zone = subnet.availability_zone
        self.s3_link_path: str | None = None
        if model_s3_uri and deployment_type == "PERSISTENT_2":
            # Files appear at once as metadata and load from S3 on first read.
            fsx.CfnDataRepositoryAssociation(
                self,
                "ModelRepository",
                file_system_id=self.file_system.file_system_id,
                file_system_path=S3_LINK_PATH,
                data_repository_path=model_s3_uri.rstrip("/") + "/",
                batch_import_meta_data_on_create=True,
                s3=fsx.CfnDataRepositoryAssociation.S3Property(
                    auto_import_policy=fsx.CfnDataRepositoryAssociation.AutoImportPolicyProperty(
                        events=["NEW", "CHANGED", "DELETED"]
                    )
                ),
            )
            self.s3_link_path = S3_LINK_PATH
