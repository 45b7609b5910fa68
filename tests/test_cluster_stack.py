"""ClusterStack (issue 3): VPC, EKS control plane, admin access, system nodes and add-ons."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match

from config.versions import DEFAULT_KUBERNETES_VERSION, EKS_ADDONS

from conftest import CUSTOM_VARIANT as CUSTOM
from conftest import only, render_tokens

STACK = "VllmClusterStack"
ADMIN_ARN = CUSTOM["adminPrincipalArn"]
RESTRICTED_ENDPOINT_CIDR = CUSTOM["endpointPublicAccessCidrs"]
CONTROL_PLANE_LOG_TYPES = {"api", "audit", "authenticator", "controllerManager", "scheduler"}
MANAGED_ADDONS = {"vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent"}


def cluster(app) -> tuple[str, dict]:
    logical_id, resource = only(app.resources(STACK, "AWS::EKS::Cluster"))
    return logical_id, resource["Properties"]


def subnets(app, subnet_type: str) -> dict[str, dict]:
    """Subnets of one CDK subnet type ("Public" or "Private"), by logical id."""
    tag = {"Key": "aws-cdk:subnet-type", "Value": subnet_type}
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in app.resources(STACK, "AWS::EC2::Subnet").items()
        if tag in resource["Properties"]["Tags"]
    }


def route_tables_of(app, subnet_ids) -> set[str]:
    return {
        association["Properties"]["RouteTableId"]["Ref"]
        for association in app.resources(STACK, "AWS::EC2::SubnetRouteTableAssociation").values()
        if association["Properties"]["SubnetId"]["Ref"] in subnet_ids
    }


# --- VPC -----------------------------------------------------------------------------------


def test_given_defaults_when_synthesized_then_public_and_private_subnets_span_two_azs(
    default_app,
):
    for subnet_type in ("Public", "Private"):
        found = subnets(default_app, subnet_type)
        zones = {
            json.dumps(subnet["AvailabilityZone"], sort_keys=True) for subnet in found.values()
        }
        assert len(zones) >= 2, f"{subnet_type} subnets in {len(zones)} AZ(s)"
    assert all(not s["MapPublicIpOnLaunch"] for s in subnets(default_app, "Private").values())


def test_given_three_named_azs_when_synthesized_then_each_az_has_a_public_and_private_subnet(
    custom_app,
):
    for subnet_type in ("Public", "Private"):
        zones = sorted(s["AvailabilityZone"] for s in subnets(custom_app, subnet_type).values())
        assert zones == ["us-west-2a", "us-west-2b", "us-west-2c"]


def test_given_defaults_when_synthesized_then_one_nat_gateway_serves_every_private_subnet(
    default_app,
):
    nat_gateways = default_app.resources(STACK, "AWS::EC2::NatGateway")
    assert len(nat_gateways) == 1
    (nat_id,) = nat_gateways
    private_tables = route_tables_of(default_app, set(subnets(default_app, "Private")))
    default_routes = {
        route["Properties"]["RouteTableId"]["Ref"]: route["Properties"].get("NatGatewayId")
        for route in default_app.resources(STACK, "AWS::EC2::Route").values()
        if route["Properties"].get("DestinationCidrBlock") == "0.0.0.0/0"
    }
    for table in private_tables:
        assert default_routes.get(table) == {"Ref": nat_id}, f"{table} does not egress via NAT"


def test_given_nat_gateways_2_when_synthesized_then_two_nat_gateways_in_distinct_public_subnets(
    custom_app,
):
    nat_gateways = custom_app.resources(STACK, "AWS::EC2::NatGateway")
    assert len(nat_gateways) == 2
    homes = {nat["Properties"]["SubnetId"]["Ref"] for nat in nat_gateways.values()}
    assert len(homes) == 2
    assert homes <= set(subnets(custom_app, "Public"))


@pytest.mark.parametrize(
    ("subnet_type", "role_tag"),
    [("Public", "kubernetes.io/role/elb"), ("Private", "kubernetes.io/role/internal-elb")],
)
def test_given_defaults_when_synthesized_then_subnets_carry_load_balancer_role_tags(
    default_app, subnet_type, role_tag
):
    found = subnets(default_app, subnet_type)
    assert found
    for logical_id, subnet in found.items():
        assert {"Key": role_tag, "Value": "1"} in subnet["Tags"], f"{logical_id} lacks {role_tag}"


def test_given_defaults_when_synthesized_then_s3_gateway_endpoint_serves_private_route_tables(
    default_app,
):
    _, endpoint = only(default_app.resources(STACK, "AWS::EC2::VPCEndpoint"))
    properties = endpoint["Properties"]
    assert properties["VpcEndpointType"] == "Gateway"
    assert render_tokens(properties["ServiceName"]).endswith(".s3")
    attached = {table["Ref"] for table in properties["RouteTableIds"]}
    assert route_tables_of(default_app, set(subnets(default_app, "Private"))) <= attached


def test_given_defaults_when_synthesized_then_vpc_flow_logs_capture_all_traffic(default_app):
    vpc_id, _ = only(default_app.resources(STACK, "AWS::EC2::VPC"))
    default_app.template(STACK).has_resource_properties(
        "AWS::EC2::FlowLog",
        {
            "ResourceType": "VPC",
            "ResourceId": {"Ref": vpc_id},
            "TrafficType": "ALL",
            "LogDestinationType": "cloud-watch-logs",
        },
    )


# --- EKS control plane ---------------------------------------------------------------------


def test_given_defaults_when_synthesized_then_cluster_runs_kubernetes_1_35(default_app):
    assert DEFAULT_KUBERNETES_VERSION == "1.35"
    _, properties = cluster(default_app)
    assert properties["Version"] == "1.35"


def test_given_defaults_when_synthesized_then_kubectl_provider_carries_the_matching_layer(
    default_app,
):
    layers = default_app.resources(STACK, "AWS::Lambda::LayerVersion")
    kubectl_layers = [
        logical_id
        for logical_id, layer in layers.items()
        if "/opt/kubectl/kubectl 1.35." in layer["Properties"].get("Description", "")
    ]
    assert len(kubectl_layers) == 1, "no kubectl 1.35 layer in the template"
    handlers = [
        function["Properties"]
        for function in default_app.resources(STACK, "AWS::Lambda::Function").values()
        if "kubectl resource provider" in function["Properties"].get("Description", "")
    ]
    assert len(handlers) == 1
    assert {"Ref": kubectl_layers[0]} in handlers[0]["Layers"]


def test_given_defaults_when_synthesized_then_all_five_control_plane_log_types_are_on(
    default_app,
):
    _, properties = cluster(default_app)
    enabled = [entry["Type"] for entry in properties["Logging"]["ClusterLogging"]["EnabledTypes"]]
    assert sorted(enabled) == sorted(CONTROL_PLANE_LOG_TYPES)


def test_given_defaults_when_synthesized_then_secrets_are_encrypted_with_a_rotating_kms_key(
    default_app,
):
    _, properties = cluster(default_app)
    (encryption,) = properties["EncryptionConfig"]
    assert encryption["Resources"] == ["secrets"]
    key_arn = encryption["Provider"]["KeyArn"]
    assert set(key_arn) == {"Fn::GetAtt"} and key_arn["Fn::GetAtt"][1] == "Arn"
    key = default_app.json(STACK)["Resources"][key_arn["Fn::GetAtt"][0]]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True


def test_given_endpoint_public_access_cidrs_when_synthesized_then_public_endpoint_is_restricted(
    custom_app,
):
    custom_app.template(STACK).has_resource_properties(
        "AWS::EKS::Cluster",
        {
            "ResourcesVpcConfig": Match.object_like(
                {
                    "EndpointPublicAccess": True,
                    "EndpointPrivateAccess": True,
                    "PublicAccessCidrs": [RESTRICTED_ENDPOINT_CIDR],
                }
            )
        },
    )


# --- Access --------------------------------------------------------------------------------


def test_given_no_admin_principal_when_synthesized_then_no_access_entry_names_a_user_principal(
    default_app,
):
    for logical_id, entry in default_app.resources(STACK, "AWS::EKS::AccessEntry").items():
        principal = entry["Properties"]["PrincipalArn"]
        # Only roles the stack itself creates (the kubectl provider's) get an entry.
        assert not isinstance(principal, str), f"{logical_id} grants {principal}"


def test_given_admin_principal_arn_when_synthesized_then_it_gets_cluster_admin_access(
    default_app, custom_app
):
    cluster_id, _ = cluster(custom_app)
    entries = [
        entry["Properties"]
        for entry in custom_app.resources(STACK, "AWS::EKS::AccessEntry").values()
        if entry["Properties"]["PrincipalArn"] == ADMIN_ARN
    ]
    assert len(entries) == 1
    (entry,) = entries
    assert entry["ClusterName"] == {"Ref": cluster_id}
    (policy,) = entry["AccessPolicies"]
    assert policy["AccessScope"] == {"Type": "cluster"}
    assert render_tokens(policy["PolicyArn"]).endswith(
        ":eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
    )
    default_count = len(default_app.resources(STACK, "AWS::EKS::AccessEntry"))
    assert len(custom_app.resources(STACK, "AWS::EKS::AccessEntry")) == default_count + 1


# --- System node group ---------------------------------------------------------------------


def test_given_defaults_when_synthesized_then_system_node_group_is_two_on_demand_al2023_m7i(
    default_app,
):
    cluster_id, _ = cluster(default_app)
    _, nodegroup = only(default_app.resources(STACK, "AWS::EKS::Nodegroup"))
    properties = nodegroup["Properties"]
    assert properties["ClusterName"] == {"Ref": cluster_id}
    assert properties["CapacityType"] == "ON_DEMAND"
    assert properties["AmiType"] == "AL2023_x86_64_STANDARD"
    assert properties["InstanceTypes"] == ["m7i.xlarge"]
    assert properties["ScalingConfig"]["DesiredSize"] == 2
    assert properties["ScalingConfig"]["MinSize"] == 2
    # System nodes take no GPU work and need no taint; they are selected by label.
    assert "Taints" not in properties
    assert properties["Labels"] == {"workload-class": "system"}


# --- Managed add-ons -----------------------------------------------------------------------


def test_given_defaults_when_synthesized_then_each_managed_addon_is_pinned_once_from_versions(
    default_app,
):
    cluster_id, _ = cluster(default_app)
    pinned = EKS_ADDONS["1.35"].by_addon_name()
    addons = [a["Properties"] for a in default_app.resources(STACK, "AWS::EKS::Addon").values()]
    names = [addon["AddonName"] for addon in addons]
    assert sorted(names) == sorted(MANAGED_ADDONS), f"add-ons: {names}"
    for addon in addons:
        assert addon["AddonVersion"] == pinned[addon["AddonName"]], addon["AddonName"]
        assert addon["ClusterName"] == {"Ref": cluster_id}
