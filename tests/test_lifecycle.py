"""Deploy twice, update, destroy cleanly (issue 10): node prerequisites, Lustre networking,
reservations and the stacks' lifecycle, each checked on the synthesized templates."""

from __future__ import annotations

import email
import json

import pytest
from cfnlint.api import lint
from test_gpu_node_group import launch_template_data as gpu_launch_template
from test_gpu_node_group import nodegroup as gpu_nodegroup

import app as cdk_app
from config.errors import ConfigError
from config.settings import DOCUMENTATION_CIDR, build_config

from conftest import (
    CUSTOM_VARIANT,
    PROJECT_ROOT,
    STACK_IDS,
    Synthesized,
    only,
    reference_to,
    render_tokens,
)

CLUSTER = "VllmClusterStack"
GPU = "VllmGpuNodeGroupStack"
FSX = "VllmFsxStack"
WORKLOAD = "VllmWorkloadStack"
LINT_REGIONS = ["us-east-1", "us-west-2"]
# An On-Demand Capacity Reservation made inside an existing cluster placement group.
RESERVATION_IN_PLACEMENT_GROUP = {
    "availabilityZones": "us-east-1a,us-east-1b",
    "gpuAvailabilityZone": "us-east-1b",
    "capacityReservationId": "cr-0fedcba9876543210",
    "placementGroupName": "training-cluster-pg",
}
PERSISTENT = {
    "fsxDeploymentType": "PERSISTENT_2",
    "fsxThroughputPerTiB": 500,
    "modelS3Uri": "s3://my-models/deepseek/",
}
ZONE_LABEL = "topology.kubernetes.io/zone"


@pytest.fixture(scope="module")
def reservation_app(synth_variant):
    return synth_variant(**RESERVATION_IN_PLACEMENT_GROUP)


@pytest.fixture(scope="module")
def persistent_app(synth_variant):
    return synth_variant(**PERSISTENT)


@pytest.fixture(scope="module")
def variants(default_app, custom_app, reservation_app, persistent_app):
    """Every configuration this issue touches, by name."""
    return {
        "default": default_app,
        "custom": custom_app,
        "reservation": reservation_app,
        "persistent": persistent_app,
    }


def launch_template_for(app, stack_id: str, nodegroup: dict) -> dict:
    (logical_id,) = [nodegroup["Properties"]["LaunchTemplate"]["Id"]["Ref"]]
    resource = app.json(stack_id)["Resources"][logical_id]
    assert resource["Type"] == "AWS::EC2::LaunchTemplate"
    return resource["Properties"]["LaunchTemplateData"]


def shell_parts(user_data: dict) -> list[str]:
    """The shell scripts inside base64 MIME multi-part user data (fails if it is not MIME)."""
    message = email.message_from_string(user_data["Fn::Base64"])
    assert message.get_content_type() == "multipart/mixed", "EKS can only merge MIME multi-part"
    return [
        part.get_payload()
        for part in message.walk()
        if part.get_content_type() == "text/x-shellscript"
    ]


# --- 1, 2: node prerequisites --------------------------------------------------------------


@pytest.mark.parametrize("stack_id", [CLUSTER, GPU])
def test_given_defaults_when_synthesized_then_every_node_group_installs_lustre_client(
    default_app, stack_id
):
    """The AL2023 EKS AMIs do not ship lustre-client; the maintainers point to user data
    (awslabs/amazon-eks-ami PR 2696; HEAD templates/al2023/provisioners/install-worker.sh has no
    lustre-client). Managed node groups merge EKS's nodeadm part into launch-template user data
    only when it is a MIME multi-part archive and the template names no AMI (EKS User Guide,
    launch-templates.adoc, "Amazon EC2 user data")."""
    nodegroups = default_app.resources(stack_id, "AWS::EKS::Nodegroup")
    assert nodegroups
    for nodegroup in nodegroups.values():
        data = launch_template_for(default_app, stack_id, nodegroup)
        assert "ImageId" not in data, "with an AMI id EKS stops merging its bootstrap"
        scripts = shell_parts(data["UserData"])
        assert any("dnf install -y lustre-client" in script for script in scripts)


@pytest.mark.parametrize("variant", ["default", "custom", "reservation"])
def test_given_variant_when_synthesized_then_gpu_nodes_keep_pods_off_imds(variants, variant):
    """IMDSv2 only, hop limit 1: a pod in its own network namespace cannot reach the node role.
    The EFA device plugin DaemonSet runs with hostNetwork: true (aws/eks-charts
    stable/aws-efa-k8s-device-plugin/templates/daemonset.yaml), so it is not a hop away; the
    FSx CSI node plugin falls back to the Kubernetes API when IMDS does not answer
    (kubernetes-sigs/aws-fsx-csi-driver pkg/cloud/metadata.go NewMetadataService)."""
    options = gpu_launch_template(variants[variant])["MetadataOptions"]
    assert options["HttpTokens"] == "required"
    assert options["HttpPutResponseHopLimit"] == 1


@pytest.mark.parametrize("variant", ["default", "custom"])
def test_given_variant_when_synthesized_then_every_node_group_runs_the_cluster_version(
    variants, variant
):
    """UpdateClusterVersion: "If your cluster has managed node groups attached to it, all of
    your node groups' Kubernetes versions must match the cluster's Kubernetes version in order to
    update the cluster to a new Kubernetes version" (EKS API Reference). A node group without
    `Version` stays on the version it was created with, so the second kubernetesVersion bump
    would fail; with it, CloudFormation rolls the nodes after the control plane."""
    app = variants[variant]
    (cluster,) = app.resources(CLUSTER, "AWS::EKS::Cluster").values()
    nodegroups = {
        f"{stack_id}/{logical_id}": resource["Properties"].get("Version")
        for stack_id in (CLUSTER, GPU)
        for logical_id, resource in app.resources(stack_id, "AWS::EKS::Nodegroup").items()
    }
    assert len(nodegroups) == 2
    assert nodegroups == dict.fromkeys(nodegroups, cluster["Properties"]["Version"])


def test_given_defaults_when_synthesized_then_cloudwatch_agent_keeps_the_host_network(
    default_app,
):
    """The GPU nodes' hop limit of 1 leaves IMDS to host-network pods. The Container Insights
    agent reads EC2 metadata and runs on every node; the amazon-cloudwatch-observability chart
    puts it on the host network by default (aws-observability/helm-charts
    charts/amazon-cloudwatch-observability/values.yaml, `agent.hostNetwork: true`, and
    templates/linux/cloudwatch-agent-custom-resource.yaml `hostNetwork: {{ $agent.hostNetwork }}`).
    Our add-on configuration must not turn that off."""
    (addon,) = [
        resource["Properties"]
        for resource in default_app.resources(WORKLOAD, "AWS::EKS::Addon").values()
        if resource["Properties"]["AddonName"] == "amazon-cloudwatch-observability"
    ]
    configuration = json.loads(render_tokens(addon["ConfigurationValues"]))
    agents = [configuration.get("agent", {}), *configuration.get("agents", [])]
    assert all(agent.get("hostNetwork", True) is True for agent in agents)


# --- 3: Lustre client rules ------------------------------------------------------------------


def test_given_defaults_when_synthesized_then_cluster_sg_admits_lustre_from_file_system_sg(
    default_app,
):
    """FSx for Lustre User Guide, "File system access control with Amazon VPC": the clients'
    security group allows inbound TCP 988 and 1018-1023 from the file system's group."""
    cluster_id, _ = only(default_app.resources(CLUSTER, "AWS::EKS::Cluster"))
    cluster_group = reference_to(
        default_app, CLUSTER, {"Fn::GetAtt": [cluster_id, "ClusterSecurityGroupId"]}
    )
    _, file_system = only(default_app.resources(FSX, "AWS::FSx::FileSystem"))
    (fsx_group,) = file_system["Properties"]["SecurityGroupIds"]
    client_rules = {
        (
            rule["Properties"]["IpProtocol"],
            rule["Properties"]["FromPort"],
            rule["Properties"]["ToPort"],
        )
        for rule in default_app.resources(FSX, "AWS::EC2::SecurityGroupIngress").values()
        if rule["Properties"]["GroupId"] == cluster_group
        and rule["Properties"].get("SourceSecurityGroupId") == fsx_group
    }
    assert client_rules == {("tcp", 988, 988), ("tcp", 1018, 1023)}


def test_given_defaults_when_synthesized_then_cluster_stack_never_refers_to_fsx_stack(default_app):
    """The client rules live in FsxStack, so ClusterStack gains no edge to it (no cycle)."""
    assert FSX not in json.dumps(default_app.json(CLUSTER))
    dependencies = {d.id for d in default_app.assembly.get_stack_by_name(CLUSTER).dependencies}
    assert FSX not in dependencies


# --- 4, 5, 6: reservations and Capacity Blocks ------------------------------------------------


def test_given_reservation_without_zone_when_config_is_built_then_one_line_names_both_keys():
    with pytest.raises(ConfigError) as error:
        build_config({"capacityReservationId": "cr-0123456789abcdef0"})
    (problem,) = error.value.problems
    assert problem.key == "capacityReservationId"
    assert "gpuAvailabilityZone" in str(problem) and "availabilityZones" in str(problem)
    assert "\n" not in str(problem)


def test_given_reservation_with_zone_but_no_zone_list_then_availability_zones_is_asked_for():
    with pytest.raises(ConfigError) as error:
        build_config(
            {"capacityReservationId": "cr-0123456789abcdef0", "gpuAvailabilityZone": "us-west-2a"}
        )
    assert [problem.key for problem in error.value.problems] == ["gpuAvailabilityZone"]
    assert "availabilityZones" in str(error.value)


def test_given_defaults_when_synthesized_then_gpu_nodes_get_a_new_cluster_placement_group(
    default_app,
):
    group_id, group = only(default_app.resources(GPU, "AWS::EC2::PlacementGroup"))
    assert group["Properties"]["Strategy"] == "cluster"
    assert gpu_launch_template(default_app)["Placement"] == {"GroupName": {"Ref": group_id}}


def test_given_a_reservation_when_synthesized_then_no_placement_group_is_created(custom_app):
    """A reservation's placement group is fixed when it is created (EC2 API
    CreateCapacityReservation.PlacementGroupArn; "Modify an active Capacity Reservation" lists
    only quantity, eligibility and end time as changeable), so a group created later cannot
    hold it."""
    assert custom_app.resources(GPU, "AWS::EC2::PlacementGroup") == {}
    assert "Placement" not in gpu_launch_template(custom_app)


def test_given_reservation_made_in_a_placement_group_when_synthesized_then_that_group_is_used(
    reservation_app,
):
    assert reservation_app.resources(GPU, "AWS::EC2::PlacementGroup") == {}
    data = gpu_launch_template(reservation_app)
    assert data["Placement"] == {"GroupName": RESERVATION_IN_PLACEMENT_GROUP["placementGroupName"]}
    target = data["CapacityReservationSpecification"]["CapacityReservationTarget"]
    assert (
        target["CapacityReservationId"] == RESERVATION_IN_PLACEMENT_GROUP["capacityReservationId"]
    )


@pytest.mark.parametrize("variant", ["custom", "reservation"])
def test_given_a_reservation_when_synthesized_then_updates_replace_nodes_without_surge(
    variants, variant
):
    """EKS's default update launches extra nodes first (EKS User Guide, "Understand each phase
    of node updates"), which a full reservation cannot supply; the MINIMAL strategy terminates
    first (EKS API NodegroupUpdateConfig.updateStrategy). Capacity Block node groups must be at
    desired size 0 to update (EKS User Guide, capacity-blocks-mng.adoc): README, Update."""
    update = gpu_nodegroup(variants[variant])["UpdateConfig"]
    assert update == {"MaxUnavailablePercentage": 100, "UpdateStrategy": "MINIMAL"}


def test_given_capacity_block_when_synthesized_then_node_group_can_scale_to_zero(custom_app):
    nodegroup = gpu_nodegroup(custom_app)
    assert nodegroup["CapacityType"] == "CAPACITY_BLOCK"
    assert nodegroup["ScalingConfig"]["MinSize"] == 0


def test_given_no_reservation_when_synthesized_then_default_update_strategy_stays(default_app):
    assert "UpdateStrategy" not in json.dumps(gpu_nodegroup(default_app))


# --- 7: cross-stack references that survive replacement ---------------------------------------


def exported_resource_types(app, producer: str) -> dict[str, str]:
    """Export name -> type of the resource its value refers to."""
    resources = app.json(producer)["Resources"]
    types = {}
    for output in app.json(producer).get("Outputs", {}).values():
        if "Export" not in output:
            continue
        value = output["Value"]
        target = value.get("Ref") or value.get("Fn::GetAtt", [None])[0]
        if target in resources:
            types[output["Export"]["Name"]] = resources[target]["Type"]
    return types


def imported_names(template: dict) -> list[str]:
    found = []

    def walk(node):
        if isinstance(node, dict):
            if "Fn::ImportValue" in node:
                found.append(node["Fn::ImportValue"])
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(template)
    return found


@pytest.mark.parametrize("variant", ["default", "custom", "reservation", "persistent"])
def test_given_variant_when_synthesized_then_no_stack_imports_a_file_system_or_subnet(
    variants, variant
):
    """A strong export blocks every update that replaces its producer ("Cannot delete export
    ... in use"). aws-cdk-lib 2.275 README, "Reference strength": weak references read the
    producer's output with Fn::GetStackOutput and keep the stack dependency."""
    app = variants[variant]
    exports = {}
    for producer in STACK_IDS:
        exports.update(exported_resource_types(app, producer))
    for consumer in STACK_IDS:
        for name in imported_names(app.json(consumer)):
            assert exports.get(name) not in ("AWS::FSx::FileSystem", "AWS::EC2::Subnet"), (
                f"{consumer} imports {name}"
            )


def test_given_defaults_when_synthesized_then_consumers_read_subnet_and_file_system_weakly(
    default_app,
):
    fs_id, _ = only(default_app.resources(FSX, "AWS::FSx::FileSystem"))
    subnet = gpu_nodegroup(default_app)["Subnets"][0]
    assert "Fn::GetStackOutput" in subnet
    volume = default_app.kubernetes_object("PersistentVolume")["spec"]["csi"]
    for value in ({"Ref": fs_id}, {"Fn::GetAtt": [fs_id, "LustreMountName"]}):
        weak = reference_to(default_app, FSX, value)
        assert "Fn::GetStackOutput" in weak
        assert render_tokens(weak) in json.dumps(volume).replace('\\"', '"')


def test_given_defaults_when_synthesized_then_stack_dependencies_stay(default_app):
    expected = {
        GPU: {CLUSTER},
        FSX: {CLUSTER},
        WORKLOAD: {CLUSTER, GPU, FSX},
    }
    for consumer, producers in expected.items():
        dependencies = {d.id for d in default_app.assembly.get_stack_by_name(consumer).dependencies}
        assert producers <= dependencies


@pytest.mark.parametrize("variant", ["custom", "reservation", "persistent"])
@pytest.mark.parametrize("stack_id", STACK_IDS)
def test_given_variant_when_linted_then_cfn_lint_reports_no_errors(variants, variant, stack_id):
    """The default app is linted in test_template_checks; these are the variants issue 10 adds
    to or changes (Fn::GetStackOutput, UpdateStrategy, retained network)."""
    matches = lint(json.dumps(variants[variant].json(stack_id)), regions=LINT_REGIONS)
    errors = [f"{m.rule.id} {m.message}" for m in matches if m.rule.id.startswith("E")]
    assert errors == []


# --- 8: redeploy after destroy -----------------------------------------------------------------


def sdk_call(resource: dict, event: str) -> dict:
    return json.loads(resource["Properties"][event])


def test_given_defaults_when_synthesized_then_control_plane_log_group_is_adopted_not_owned(
    default_app,
):
    """EKS re-creates /aws/eks/<name>/cluster from late log streams after it is deleted
    (terraform-aws-eks issues 2486, 2763), so an owned AWS::Logs::LogGroup with that name fails
    the next deploy. The group is created through the API with "already exists" accepted."""
    cluster_id, cluster = only(default_app.resources(CLUSTER, "AWS::EKS::Cluster"))
    name = cluster["Properties"]["Name"]
    group_name = f"/aws/eks/{name}/cluster"
    owned = [
        r
        for r in default_app.resources(CLUSTER, "AWS::Logs::LogGroup").values()
        if r["Properties"].get("LogGroupName") == group_name
    ]
    assert owned == []
    calls = {
        logical_id: resource
        for logical_id, resource in default_app.resources(CLUSTER, "Custom::AWS").items()
        if group_name in json.dumps(resource["Properties"])
    }
    (create_id,) = [
        i for i, r in calls.items() if sdk_call(r, "Create")["action"] == "createLogGroup"
    ]
    create = sdk_call(calls[create_id], "Create")
    assert create["ignoreErrorCodesMatching"] == "ResourceAlreadyExistsException"
    delete = sdk_call(calls[create_id], "Delete")
    assert (delete["action"], delete["parameters"]["logGroupName"]) == (
        "deleteLogGroup",
        group_name,
    )
    (retention_id,) = [
        i for i, r in calls.items() if sdk_call(r, "Create")["action"] == "putRetentionPolicy"
    ]
    assert sdk_call(calls[retention_id], "Update")["parameters"]["retentionInDays"] > 0
    assert {create_id, retention_id} <= set(default_app.depends_on(CLUSTER, cluster_id))


def test_given_defaults_when_synthesized_then_log_group_is_deleted_after_the_vpc(default_app):
    """Deleted last: CloudFormation deletes the VPC (after the cluster inside it) first, which
    gives EKS time to flush its final streams before the group goes."""
    vpc_id, _ = only(default_app.resources(CLUSTER, "AWS::EC2::VPC"))
    log_calls = set(default_app.resources(CLUSTER, "Custom::AWS"))
    assert log_calls & set(default_app.depends_on(CLUSTER, vpc_id))


def test_given_any_config_when_synthesized_then_cluster_name_is_a_fixed_literal(
    default_app, custom_app
):
    """A name that changed per synth would replace the cluster on every deploy."""
    names = [
        only(app.resources(CLUSTER, "AWS::EKS::Cluster"))[1]["Properties"]["Name"]
        for app in (default_app, custom_app)
    ]
    assert isinstance(names[0], str) and names[0] == names[1]


# --- 9: destroy leaves nothing, RETAIN says what stays ----------------------------------------


def lambda_log_group(app, stack_id: str, function_id: str, function: dict) -> dict | None:
    """The stack's log group a function writes to: the one its LoggingConfig names, else the
    one named /aws/lambda/<function name>; None when Lambda would create it on its own."""
    log_groups = app.resources(stack_id, "AWS::Logs::LogGroup")
    named = function["Properties"].get("LoggingConfig", {}).get("LogGroup")
    if named is not None:
        return log_groups.get(named.get("Ref")) if isinstance(named, dict) else None
    default_name = {"Fn::Join": ["", ["/aws/lambda/", {"Ref": function_id}]]}
    return next(
        (
            group
            for group in log_groups.values()
            if group["Properties"].get("LogGroupName") == default_name
        ),
        None,
    )


@pytest.mark.parametrize("variant", ["default_app", "custom_app"])
def test_given_variant_when_synthesized_then_every_lambda_logs_to_a_group_destroy_deletes(
    request, variant
):
    """Lambda creates /aws/lambda/<function name> on the first invocation unless the function's
    LoggingConfig names a group (Lambda Developer Guide, "Configuring CloudWatch log groups"); a
    group Lambda creates is not in the template, never expires and outlives `cdk destroy`.
    aws-cdk-lib's own providers (VPC default security group, bucket auto-delete, CfnJson) are
    such functions unless the stack gives them a group."""
    app = request.getfixturevalue(variant)
    orphans = []
    for stack_id in STACK_IDS:
        for function_id, function in app.resources(stack_id, "AWS::Lambda::Function").items():
            group = lambda_log_group(app, stack_id, function_id, function)
            if group is None or group.get("DeletionPolicy", "Delete") != "Delete":
                orphans.append(f"{stack_id}/{function_id}")
    assert not orphans, f"these functions' logs outlive destroy: {orphans}"


def test_given_persistent_2_when_synthesized_then_destroy_deletes_the_file_system(persistent_app):
    _, file_system = only(persistent_app.resources(FSX, "AWS::FSx::FileSystem"))
    assert file_system["DeletionPolicy"] == "Delete"
    assert build_config(PERSISTENT).fsx_removal_policy == "DESTROY"


def retained(app) -> set[tuple[str, str]]:
    return {
        (stack_id, resource["Type"])
        for stack_id in STACK_IDS
        for resource in app.json(stack_id)["Resources"].values()
        if resource.get("DeletionPolicy", "Delete") != "Delete"
    }


def test_given_retain_when_synthesized_then_file_system_and_what_it_occupies_stay(custom_app):
    """What a retained file system still uses cannot be deleted; keeping it avoids DELETE_FAILED."""
    assert CUSTOM_VARIANT["fsxRemovalPolicy"] == "RETAIN"
    assert retained(custom_app) == {
        (FSX, "AWS::FSx::FileSystem"),
        (FSX, "AWS::EC2::SecurityGroup"),
        (CLUSTER, "AWS::EC2::Subnet"),
        (CLUSTER, "AWS::EC2::VPC"),
    }
    (subnet_id,) = [
        logical_id
        for logical_id, resource in custom_app.resources(CLUSTER, "AWS::EC2::Subnet").items()
        if resource.get("DeletionPolicy") == "Retain"
    ]
    assert "Fn::GetStackOutput" in gpu_nodegroup(custom_app)["Subnets"][0]
    assert (
        reference_to(custom_app, CLUSTER, {"Ref": subnet_id})
        == gpu_nodegroup(custom_app)["Subnets"][0]
    )


def test_given_retain_when_synthesized_then_a_note_lists_what_stays_behind():
    notices = cdk_app._notices(build_config({"fsxRemovalPolicy": "RETAIN"}))
    (note,) = [n for n in notices if "fsxRemovalPolicy=RETAIN" in n]
    for leftover in ("file system", "security group", "subnet", "VPC"):
        assert leftover in note
    assert not [n for n in cdk_app._notices(build_config({})) if "RETAIN" in n]


# --- 10: the EKS API endpoint ----------------------------------------------------------------


def test_given_defaults_when_synthesized_then_eks_api_admits_only_allowed_cidrs(default_app):
    _, cluster = only(default_app.resources(CLUSTER, "AWS::EKS::Cluster"))
    vpc_config = cluster["Properties"]["ResourcesVpcConfig"]
    assert vpc_config["EndpointPublicAccess"] is True
    assert vpc_config["EndpointPrivateAccess"] is True
    assert vpc_config["PublicAccessCidrs"] == [DOCUMENTATION_CIDR]


def test_given_allowed_cidrs_when_config_is_built_then_the_endpoint_follows_them():
    config = build_config({"allowedCidrs": "203.0.113.7/32,198.51.100.0/24"})
    assert config.endpoint_public_access_cidrs == ("203.0.113.7/32", "198.51.100.0/24")


def test_given_world_open_endpoint_without_consent_when_config_is_built_then_it_is_refused():
    with pytest.raises(ConfigError) as error:
        build_config({"allowedCidrs": "203.0.113.7/32", "endpointPublicAccessCidrs": "0.0.0.0/0"})
    (problem,) = error.value.problems
    assert problem.key == "endpointPublicAccessCidrs"
    assert "allowPublicInternet=true" in str(problem)
    consented = build_config(
        {
            "allowedCidrs": "203.0.113.7/32",
            "endpointPublicAccessCidrs": "0.0.0.0/0",
            "allowPublicInternet": "true",
        }
    )
    assert consented.endpoint_public_access_cidrs == ("0.0.0.0/0",)


# --- 11: staging in the file system's AZ -------------------------------------------------------


def subnet_zone(app, subnet_reference: dict) -> object:
    """The AvailabilityZone of the ClusterStack subnet a consumer references."""
    output_name = subnet_reference["Fn::GetStackOutput"]["OutputName"]
    logical_id = app.json(CLUSTER)["Outputs"][output_name]["Value"]["Ref"]
    return app.json(CLUSTER)["Resources"][logical_id]["Properties"]["AvailabilityZone"]


@pytest.mark.parametrize("variant", ["default", "custom"])
def test_given_variant_when_synthesized_then_staging_job_runs_in_the_file_system_az(
    variants, variant
):
    """The zone label is the kubelet's well-known topology.kubernetes.io/zone. In an
    environment-agnostic stack it is Fn::Select over Fn::GetAZs, which resolves to the same
    AZ in the workload stack as in the VPC's (same region) at deploy time."""
    app = variants[variant]
    _, file_system = only(app.resources(FSX, "AWS::FSx::FileSystem"))
    zone = subnet_zone(app, file_system["Properties"]["SubnetIds"][0])
    job = app.staging_job()
    selector = job["spec"]["template"]["spec"]["nodeSelector"]
    assert selector[ZONE_LABEL] == (zone if isinstance(zone, str) else render_tokens(zone))


@pytest.mark.parametrize("variant", ["default", "custom"])
def test_given_variant_when_synthesized_then_a_system_node_can_sit_in_every_az(variants, variant):
    """The Auto Scaling group spreads nodes evenly over its AZs: one per AZ at least."""
    app = variants[variant]
    _, system = only(app.resources(CLUSTER, "AWS::EKS::Nodegroup"))
    zones = len(system["Properties"]["Subnets"])
    assert system["Properties"]["ScalingConfig"]["MinSize"] >= zones


def test_readme_tells_how_to_update_a_capacity_block_and_what_retain_leaves():
    """EKS User Guide, capacity-blocks-mng.adoc: "When upgrading managed node groups with
    Capacity Blocks, make sure that the desired size of the node group is set to 0"."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    update = readme.split("### Update", 1)[1].split("\n### ", 1)[0]
    steps = ("make pause", "-c paused=true", "make resume")
    assert all(step in update for step in steps), "scale to 0, update at 0, scale back"
    destroy = readme.split("### Destroy", 1)[1].split("\n### ", 1)[0]
    assert "fsxRemovalPolicy=RETAIN" in destroy
    for leftover in ("file system", "security group", "subnet", "VPC"):
        assert leftover in destroy


def model_volume_names(app: Synthesized) -> tuple[str, str, set[str]]:
    """The PV and PVC names, and every claim the LeaderWorkerSet and the staging Job mount."""
    volume = app.kubernetes_object("PersistentVolume")["metadata"]["name"]
    claim = app.kubernetes_object("PersistentVolumeClaim")
    assert claim["spec"]["volumeName"] == volume
    lws = app.kubernetes_object("LeaderWorkerSet", "vllm")["spec"]["leaderWorkerTemplate"]
    pods = [lws["leaderTemplate"]["spec"], lws["workerTemplate"]["spec"]]
    pods.append(app.staging_job()["spec"]["template"]["spec"])
    mounted = {
        volume["persistentVolumeClaim"]["claimName"]
        for pod in pods
        for volume in pod["volumes"]
        if "persistentVolumeClaim" in volume
    }
    return volume, claim["metadata"]["name"], mounted


@pytest.mark.parametrize(
    "replacing",
    [
        {"fsxDeploymentType": "PERSISTENT_2"},
        {"availabilityZones": "us-west-2a,us-west-2b", "gpuAvailabilityZone": "us-west-2b"},
    ],
    ids=["deployment-type", "gpu-az"],
)
def test_given_a_setting_that_replaces_the_file_system_then_the_workload_template_changes(
    default_app, synth_variant, replacing
):
    """CloudFormation template reference, Fn::GetStackOutput: the value is read when the
    consuming stack is deployed. aws-cdk CLI (node_modules/aws-cdk/lib/index.js, canSkipDeploy):
    `cdk deploy` skips a stack whose template is unchanged. So a replaced file system must
    change the workload's template, or its PersistentVolume keeps the deleted file system's id:
    the volume and claim are named after the file system's generation, and every pod mounts
    the renamed claim (a PV's volumeHandle and a claim's volumeName are immutable)."""
    default_volume, default_claim, default_mounted = model_volume_names(default_app)
    volume, claim, mounted = model_volume_names(synth_variant(**replacing))
    assert (volume, claim) != (default_volume, default_claim)
    assert default_mounted == {default_claim} and mounted == {claim}


def test_given_a_setting_that_keeps_the_file_system_then_the_volume_keeps_its_name(
    default_app, synth_variant
):
    """The converse: a change that leaves the file system alone (here the GPU type) must not
    rename the volume, which would restart every vLLM pod for nothing."""
    assert model_volume_names(synth_variant(gpuInstanceType="p5.48xlarge")) == (
        model_volume_names(default_app)
    )
