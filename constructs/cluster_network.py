"""The VPC the cluster, the GPU nodes and the file system share."""

from __future__ import annotations

from aws_cdk import CrossStackReferences, ReferenceStrength, RemovalPolicy, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct


class ClusterNetwork(Construct):
    """Public and private subnets in 2+ AZs, NAT egress, an S3 endpoint and flow logs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        nat_gateways: int = 1,
        availability_zones: tuple[str, ...] = (),
        gpu_availability_zone: str | None = None,
        retain_gpu_subnet: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr("10.0.0.0/16"),
            # Named AZs only when the user gave them: the stacks stay environment-agnostic.
            availability_zones=list(availability_zones) or None,
            max_azs=None if availability_zones else 2,
            nat_gateways=nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24
                ),
                # /18 leaves room for one pod IP per GPU-node EFA interface and every pod.
                ec2.SubnetConfiguration(
                    name="Private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=18
                ),
            ],
            # Model weights and images come from S3/ECR: keep that traffic off the NAT.
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)
            },
        )
        flow_log_group = logs.LogGroup(
            self,
            "FlowLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        # The AWS Load Balancer Controller discovers subnets by role tag (no cluster tag needed).
        for subnet in self.vpc.public_subnets:
            Tags.of(subnet).add("kubernetes.io/role/elb", "1")
        for subnet in self.vpc.private_subnets:
            Tags.of(subnet).add("kubernetes.io/role/internal-elb", "1")

        # GPU nodes and the file system share one AZ: the first private subnet unless named.
        self.gpu_subnet = next(
            subnet
            for subnet in self.vpc.private_subnets
            if gpu_availability_zone in (None, subnet.availability_zone)
        )
        # Another subnet is picked when gpuAvailabilityZone changes; a strong export of it would
        # block that update ("Cannot delete export ... in use"). Weak references read the output
        # with Fn::GetStackOutput; the consumers' stack dependencies stay.
        CrossStackReferences.of(self.gpu_subnet).produce(ReferenceStrength.WEAK)
        if retain_gpu_subnet:
            # A retained file system keeps its network interface in this subnet: deleting the
            # subnet (and so the VPC) would end destroy in DELETE_FAILED. Keep both instead.
            for resource in (self.vpc.node.default_child, self.gpu_subnet.node.default_child):
                resource.apply_removal_policy(RemovalPolicy.RETAIN)
