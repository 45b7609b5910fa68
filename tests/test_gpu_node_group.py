"""GpuNodeGroupStack (issue 3): the EFA launch template, its security group and the node group.

Every per-instance property is checked for p4d.24xlarge (the default, 4 EFA cards) and for
p5.48xlarge (32 EFA cards).
"""

from __future__ import annotations

import json

import pytest

from planning.catalog import INSTANCES

from conftest import CUSTOM_VARIANT as CUSTOM
from conftest import only, reference_to

STACK = "VllmGpuNodeGroupStack"
CLUSTER_STACK = "VllmClusterStack"
P5 = {"gpuInstanceType": "p5.48xlarge"}
GPU_TAINT = {"Key": "nvidia.com/gpu", "Value": "true", "Effect": "NO_SCHEDULE"}
# (instance type, overrides, EFA network cards AWS documents for it)
INSTANCE_CASES = [("p4d.24xlarge", {}, 4), ("p5.48xlarge", P5, 32)]


@pytest.fixture(scope="module", params=INSTANCE_CASES, ids=[case[0] for case in INSTANCE_CASES])
def gpu_case(request, synth_variant):
    """(instance type, synthesized app, expected EFA interface count) for each instance type."""
    instance_type, overrides, efa_cards = request.param
    return instance_type, synth_variant(**overrides), efa_cards


def launch_template_data(app) -> dict:
    _, template = only(app.resources(STACK, "AWS::EC2::LaunchTemplate"))
    return template["Properties"]["LaunchTemplateData"]


def nodegroup(app) -> dict:
    _, resource = only(app.resources(STACK, "AWS::EKS::Nodegroup"))
    return resource["Properties"]


def efa_security_group_id(app) -> str:
    logical_id, _ = only(app.resources(STACK, "AWS::EC2::SecurityGroup"))
    return logical_id


def cluster_security_group_import(app) -> dict:
    cluster_id, _ = only(app.resources(CLUSTER_STACK, "AWS::EKS::Cluster"))
    return reference_to(app, CLUSTER_STACK, {"Fn::GetAtt": [cluster_id, "ClusterSecurityGroupId"]})


def private_subnet_in(app, zone) -> str:
    """Logical id of the VPC's private subnet in `zone` (a name or an Fn::Select of GetAZs)."""
    private = {"Key": "aws-cdk:subnet-type", "Value": "Private"}
    matches = [
        logical_id
        for logical_id, subnet in app.resources(CLUSTER_STACK, "AWS::EC2::Subnet").items()
        if private in subnet["Properties"]["Tags"]
        and subnet["Properties"]["AvailabilityZone"] == zone
    ]
    assert len(matches) == 1, f"private subnets in {zone}: {matches}"
    return matches[0]


FIRST_AZ = {"Fn::Select": [0, {"Fn::GetAZs": ""}]}


# --- Launch template: network interfaces ---------------------------------------------------


def test_given_instance_type_when_synthesized_then_one_interface_per_efa_network_card(gpu_case):
    instance_type, app, efa_cards = gpu_case
    assert INSTANCES[instance_type].efa_interfaces == efa_cards
    interfaces = launch_template_data(app)["NetworkInterfaces"]
    assert len(interfaces) == efa_cards
    assert sorted(i["NetworkCardIndex"] for i in interfaces) == list(range(efa_cards))


def test_given_instance_type_when_synthesized_then_card_0_is_device_0_efa(gpu_case):
    _, app, _ = gpu_case
    interfaces = launch_template_data(app)["NetworkInterfaces"]
    (primary,) = [i for i in interfaces if i["NetworkCardIndex"] == 0]
    assert primary["DeviceIndex"] == 0
    assert primary["InterfaceType"] == "efa"


def test_given_instance_type_when_synthesized_then_other_cards_follow_the_catalog(gpu_case):
    instance_type, app, _ = gpu_case
    spec = INSTANCES[instance_type]
    others = [i for i in launch_template_data(app)["NetworkInterfaces"] if i["NetworkCardIndex"]]
    assert others
    for interface in others:
        assert interface["DeviceIndex"] == spec.secondary_device_index
        assert interface["InterfaceType"] == spec.secondary_interface_type


def test_given_p5_when_synthesized_then_secondary_cards_are_efa_only(synth_variant):
    interfaces = launch_template_data(synth_variant(**P5))["NetworkInterfaces"]
    assert {i["InterfaceType"] for i in interfaces if i["NetworkCardIndex"]} == {"efa-only"}


def test_given_instance_type_when_synthesized_then_every_interface_has_efa_and_cluster_sgs(
    gpu_case,
):
    _, app, _ = gpu_case
    efa_group = {"Fn::GetAtt": [efa_security_group_id(app), "GroupId"]}
    cluster_group = cluster_security_group_import(app)
    for interface in launch_template_data(app)["NetworkInterfaces"]:
        groups = interface["Groups"]
        assert efa_group in groups, f"card {interface['NetworkCardIndex']} lacks the EFA SG"
        assert cluster_group in groups, f"card {interface['NetworkCardIndex']} lacks the cluster SG"


# --- Launch template: placement, metadata, storage, reservations ---------------------------


def test_given_instance_type_when_synthesized_then_nodes_launch_in_a_cluster_placement_group(
    gpu_case,
):
    _, app, _ = gpu_case
    group_id, group = only(app.resources(STACK, "AWS::EC2::PlacementGroup"))
    assert group["Properties"]["Strategy"] == "cluster"
    assert launch_template_data(app)["Placement"] == {"GroupName": {"Ref": group_id}}


def test_given_instance_type_when_synthesized_then_imdsv2_is_required(gpu_case):
    _, app, _ = gpu_case
    metadata = launch_template_data(app)["MetadataOptions"]
    assert metadata["HttpTokens"] == "required"
    assert metadata.get("HttpEndpoint", "enabled") == "enabled"


def test_given_instance_type_when_synthesized_then_root_volume_is_encrypted_gp3_of_200_gib_plus(
    gpu_case,
):
    _, app, _ = gpu_case
    (root,) = launch_template_data(app)["BlockDeviceMappings"]
    assert root["DeviceName"] == "/dev/xvda"  # the AL2023 root device
    assert root["Ebs"]["VolumeType"] == "gp3"
    assert root["Ebs"]["Encrypted"] is True
    assert root["Ebs"]["VolumeSize"] >= 200


def test_given_gpu_root_volume_gib_500_when_synthesized_then_root_volume_is_500_gib(custom_app):
    (root,) = launch_template_data(custom_app)["BlockDeviceMappings"]
    assert root["Ebs"]["VolumeSize"] == 500
    assert root["Ebs"]["Encrypted"] is True


def test_given_no_reservation_when_synthesized_then_on_demand_without_reservation(default_app):
    data = launch_template_data(default_app)
    assert "CapacityReservationSpecification" not in data
    assert "InstanceMarketOptions" not in data
    assert nodegroup(default_app)["CapacityType"] == "ON_DEMAND"


def test_given_capacity_block_reservation_when_synthesized_then_template_targets_it(custom_app):
    data = launch_template_data(custom_app)
    assert data["CapacityReservationSpecification"] == {
        "CapacityReservationTarget": {"CapacityReservationId": "cr-0123456789abcdef0"}
    }
    assert data["InstanceMarketOptions"]["MarketType"] == "capacity-block"
    assert nodegroup(custom_app)["CapacityType"] == "CAPACITY_BLOCK"


# --- EFA security group --------------------------------------------------------------------


def test_given_instance_type_when_synthesized_then_efa_sg_allows_all_traffic_from_itself(gpu_case):
    _, app, _ = gpu_case
    group = {"Fn::GetAtt": [efa_security_group_id(app), "GroupId"]}
    app.template(STACK).has_resource_properties(
        "AWS::EC2::SecurityGroupIngress",
        {"GroupId": group, "SourceSecurityGroupId": group, "IpProtocol": "-1"},
    )


def test_given_instance_type_when_synthesized_then_efa_sg_has_explicit_all_traffic_self_egress(
    gpu_case,
):
    _, app, _ = gpu_case
    group = {"Fn::GetAtt": [efa_security_group_id(app), "GroupId"]}
    app.template(STACK).has_resource_properties(
        "AWS::EC2::SecurityGroupEgress",
        {"GroupId": group, "DestinationSecurityGroupId": group, "IpProtocol": "-1"},
    )


def test_given_instance_type_when_synthesized_then_efa_sg_has_no_egress_to_anywhere_else(
    gpu_case,
):
    _, app, _ = gpu_case
    group_id = efa_security_group_id(app)
    group = {"Fn::GetAtt": [group_id, "GroupId"]}
    inline = app.json(STACK)["Resources"][group_id]["Properties"].get("SecurityGroupEgress", [])
    assert not [rule for rule in inline if rule.get("CidrIp") == "0.0.0.0/0"]
    for logical_id, rule in app.resources(STACK, "AWS::EC2::SecurityGroupEgress").items():
        if rule["Properties"]["GroupId"] == group:
            assert rule["Properties"].get("DestinationSecurityGroupId") == group, logical_id
    assert "0.0.0.0/0" not in json.dumps(app.json(STACK)["Resources"])


# --- Node group ----------------------------------------------------------------------------


def test_given_instance_type_when_synthesized_then_node_group_uses_the_al2023_nvidia_ami(gpu_case):
    instance_type, app, _ = gpu_case
    properties = nodegroup(app)
    assert properties["AmiType"] == "AL2023_x86_64_NVIDIA"
    # The instance type is named once: on the node group or in its launch template.
    declared = [
        *properties.get("InstanceTypes", []),
        *[t for t in [launch_template_data(app).get("InstanceType")] if t],
    ]
    assert declared == [instance_type]
    template_id, _ = only(app.resources(STACK, "AWS::EC2::LaunchTemplate"))
    assert properties["LaunchTemplate"]["Id"] == {"Ref": template_id}


def test_given_defaults_when_synthesized_then_node_group_uses_only_the_first_private_subnet(
    default_app,
):
    expected = reference_to(
        default_app, CLUSTER_STACK, {"Ref": private_subnet_in(default_app, FIRST_AZ)}
    )
    assert nodegroup(default_app)["Subnets"] == [expected]


def test_given_gpu_availability_zone_us_west_2b_when_synthesized_then_node_group_subnet_is_there(
    custom_app,
):
    subnet_id = private_subnet_in(custom_app, "us-west-2b")
    assert nodegroup(custom_app)["Subnets"] == [
        reference_to(custom_app, CLUSTER_STACK, {"Ref": subnet_id})
    ]


def test_given_instance_type_when_synthesized_then_gpu_nodes_are_tainted_no_schedule(gpu_case):
    _, app, _ = gpu_case
    assert nodegroup(app)["Taints"] == [GPU_TAINT]


def test_given_defaults_when_synthesized_then_node_labels_match_what_the_workload_selects(
    default_app,
):
    labels = nodegroup(default_app)["Labels"]
    assert labels["workload-class"] == "gpu"
    lws = default_app.kubernetes_object("LeaderWorkerSet", "vllm")
    template = lws["spec"]["leaderWorkerTemplate"]
    for role in ("leaderTemplate", "workerTemplate"):
        selector = dict(template[role]["spec"]["nodeSelector"])
        # The instance-type label is set by the kubelet itself, not by the node group.
        assert selector.pop("node.kubernetes.io/instance-type", "p4d.24xlarge") == "p4d.24xlarge"
        assert selector, f"{role} selects no GPU node label"
        assert selector.items() <= labels.items(), f"{role} selects {selector}, nodes have {labels}"
    for release in ("nvidia-device-plugin", "aws-efa-k8s-device-plugin"):
        selector = default_app.helm_releases()[release]["Values"]["nodeSelector"]
        assert selector.items() <= labels.items(), f"{release} selects {selector}"


@pytest.mark.parametrize(
    ("overrides", "total"),
    [({}, 2), (P5, 2), (CUSTOM, 4)],
    ids=["defaults", "p5", "replicas-2"],
)
def test_given_replicas_and_node_count_when_synthesized_then_scaling_is_0_to_their_product(
    synth_variant, overrides, total
):
    scaling = nodegroup(synth_variant(**overrides))["ScalingConfig"]
    assert scaling == {"MinSize": 0, "DesiredSize": total, "MaxSize": total}
