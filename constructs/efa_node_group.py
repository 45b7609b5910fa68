"""A managed GPU node group with every EFA network card wired, in one AZ and placement group."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct
from constructs.inference_cluster import (
    acknowledge_node_role_policies,
    lustre_client_user_data,
    pin_to_cluster_version,
)

from planning.catalog import InstanceSpec

GPU_TAINT = eks.TaintSpec(key="nvidia.com/gpu", value="true", effect=eks.TaintEffect.NO_SCHEDULE)
# `nvidia.com/gpu.present` is what the NVIDIA device plugin chart's node affinity selects on.
GPU_NODE_LABELS = {"workload-class": "gpu", "nvidia.com/gpu.present": "true"}


class EfaNodeGroup(Construct):
    """GPU nodes built from a raw launch template (the L2 cannot express network cards)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.Cluster,
        kubernetes_version: str,
        vpc: ec2.IVpc,
        subnet: ec2.ISubnet,
        instance: InstanceSpec,
        node_count: int,
        desired_count: int | None = None,
        root_volume_gib: int = 200,
        capacity_reservation_id: str | None = None,
        capacity_block: bool = False,
        placement_group_name: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.instance = instance
        self.efa_security_group = ec2.SecurityGroup(
            self,
            "EfaSecurityGroup",
            vpc=vpc,
            description="EFA traffic between GPU nodes: all protocols, only to and from itself",
            allow_all_outbound=False,
        )
        # EFA's SRD traffic is not IP-routed, so an all-addresses egress rule would not cover it:
        # it needs explicit self-referencing rules in both directions.
        self.efa_security_group.add_ingress_rule(
            self.efa_security_group, ec2.Port.all_traffic(), "EFA from peer GPU nodes"
        )
        self.efa_security_group.add_egress_rule(
            self.efa_security_group, ec2.Port.all_traffic(), "EFA to peer GPU nodes"
        )
        # An existing reservation cannot join a placement group created later, and forcing one
        # fails with insufficient capacity: with a reservation, use only the group it was made in.
        self.placement_group: ec2.CfnPlacementGroup | None = None
        if placement_group_name is None and capacity_reservation_id is None:
            self.placement_group = ec2.CfnPlacementGroup(self, "PlacementGroup", strategy="cluster")
            placement_group_name = self.placement_group.ref

        # EKS does not add the cluster security group when the template names groups itself.
        security_groups = [
            self.efa_security_group.security_group_id,
            cluster.cluster_security_group_id,
        ]
        self.launch_template = ec2.CfnLaunchTemplate(
            self,
            "LaunchTemplate",
            launch_template_data=ec2.CfnLaunchTemplate.LaunchTemplateDataProperty(
                # In the template, not the node group: aws-cdk-lib's AMI/instance check does
                # not know every GPU family (p5, g6e) and would refuse the NVIDIA AMI.
                instance_type=instance.name,
                network_interfaces=[
                    ec2.CfnLaunchTemplate.NetworkInterfaceProperty(
                        network_card_index=card,
                        device_index=0 if card == 0 else instance.secondary_device_index,
                        interface_type="efa" if card == 0 else instance.secondary_interface_type,
                        groups=security_groups,
                        delete_on_termination=True,
                    )
                    for card in range(instance.efa_interfaces)
                ]
                or None,
                # An instance without EFA keeps its default interface; the groups go here.
                security_group_ids=None if instance.efa_interfaces else security_groups,
                placement=ec2.CfnLaunchTemplate.PlacementProperty(group_name=placement_group_name)
                if placement_group_name
                else None,
                user_data=lustre_client_user_data(),
                metadata_options=ec2.CfnLaunchTemplate.MetadataOptionsProperty(
                    http_endpoint="enabled",
                    http_tokens="required",
                    # Hop limit 1: pods in their own network namespace cannot reach the node role
                    # (vLLM pods use Pod Identity). The EFA device plugin runs on the host network;
                    # the FSx CSI node plugin falls back to the Kubernetes API without IMDS.
                    http_put_response_hop_limit=1,
                ),
                block_device_mappings=[
                    ec2.CfnLaunchTemplate.BlockDeviceMappingProperty(
                        device_name="/dev/xvda",
                        ebs=ec2.CfnLaunchTemplate.EbsProperty(
                            volume_size=root_volume_gib,
                            volume_type="gp3",
                            encrypted=True,
                            delete_on_termination=True,
                        ),
                    )
                ],
                capacity_reservation_specification=_reservation(capacity_reservation_id),
                instance_market_options=(
                    ec2.CfnLaunchTemplate.InstanceMarketOptionsProperty(
                        market_type="capacity-block"
                    )
                    if capacity_block
                    else None
                ),
            ),
        )
        self.nodegroup = eks.Nodegroup(
            self,
            "Nodegroup",
            cluster=cluster,
            launch_template_spec=eks.LaunchTemplateSpec(
                id=self.launch_template.ref,
                version=self.launch_template.attr_latest_version_number,
            ),
            ami_type=eks.NodegroupAmiType.AL2023_X86_64_NVIDIA,
            capacity_type=eks.CapacityType.CAPACITY_BLOCK
            if capacity_block
            else eks.CapacityType.ON_DEMAND,
            subnets=ec2.SubnetSelection(subnets=[subnet]),
            min_size=0,
            # Paused is desired 0 with the maximum kept, so resuming is a scaling change only.
            desired_size=node_count if desired_count is None else desired_count,
            max_size=node_count,
            labels=GPU_NODE_LABELS,
            taints=[GPU_TAINT],
        )
        if capacity_reservation_id:
            # A reservation has no spare instances for the default surge-then-drain update, and
            # a Capacity Block must be at desired size 0 to update at all (README): replace nodes
            # in place, all at once, since a vLLM group cannot serve with a member missing.
            cfn_nodegroup = self.nodegroup.node.default_child
            cfn_nodegroup.add_property_override("UpdateConfig.MaxUnavailablePercentage", 100)
            cfn_nodegroup.add_property_override("UpdateConfig.UpdateStrategy", "MINIMAL")
        pin_to_cluster_version(self.nodegroup, kubernetes_version)
        acknowledge_node_role_policies(self.nodegroup)


def _reservation(
    capacity_reservation_id: str | None,
) -> ec2.CfnLaunchTemplate.CapacityReservationSpecificationProperty | None:
    if capacity_reservation_id is None:
        return None
    return ec2.CfnLaunchTemplate.CapacityReservationSpecificationProperty(
        capacity_reservation_target=ec2.CfnLaunchTemplate.CapacityReservationTargetProperty(
            capacity_reservation_id=capacity_reservation_id
        )
    )
