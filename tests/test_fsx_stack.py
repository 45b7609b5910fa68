"""FSx for Lustre model store (issue 4): the file system, its wiring into Kubernetes, and the
Job that stages the weights once before vLLM starts."""

from __future__ import annotations

import json
import re

import pytest

import manifests
from config.versions import CHARTS

from conftest import only, reference_to, render_tokens

FSX = "VllmFsxStack"
GPU = "VllmGpuNodeGroupStack"
CLUSTER = "VllmClusterStack"
WORKLOAD = "VllmWorkloadStack"
MODEL_S3_URI = "s3://my-models/deepseek/"
PERSISTENT = {
    "fsxDeploymentType": "PERSISTENT_2",
    "fsxThroughputPerTiB": 500,
    "modelS3Uri": MODEL_S3_URI,
}
FSX_MOUNT = "/fsx"
LUSTRE_PORT_RANGES = {(988, 988), (1018, 1023)}
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}


@pytest.fixture(scope="module")
def persistent_app(synth_variant):
    return synth_variant(**PERSISTENT)


def file_system(app) -> tuple[str, dict]:
    return only(app.resources(FSX, "AWS::FSx::FileSystem"))


def marker(reference: dict) -> str:
    """How render_tokens shows an intrinsic inside a rendered manifest string."""
    return render_tokens(reference)


def tolerates(tolerations: list[dict], taint: dict) -> bool:
    for toleration in tolerations:
        key_matches = toleration.get("key") == taint["key"] or (
            "key" not in toleration and toleration.get("operator") == "Exists"
        )
        value_matches = toleration.get("operator") == "Exists" or (
            toleration.get("value") == taint["value"]
        )
        effect_matches = toleration.get("effect") in (None, taint["effect"])
        if key_matches and value_matches and effect_matches:
            return True
    return False


def staging_container(app) -> dict:
    (container,) = app.staging_job()["spec"]["template"]["spec"]["containers"]
    return container


def job_env(app) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in staging_container(app)["env"]}


def vllm_pod_specs(app) -> dict[str, dict]:
    template = app.kubernetes_object("LeaderWorkerSet", "vllm")["spec"]["leaderWorkerTemplate"]
    return {role: template[role]["spec"] for role in ("leaderTemplate", "workerTemplate")}


def role_policy_statements(app, service_account: str) -> list[dict]:
    """Statements of the IAM policies on the Pod Identity role of a Kubernetes service account."""
    associations = [
        a["Properties"]
        for a in app.resources(WORKLOAD, "AWS::EKS::PodIdentityAssociation").values()
        if a["Properties"]["ServiceAccount"] == service_account
    ]
    assert len(associations) == 1, f"no Pod Identity association for {service_account}"
    role_id = associations[0]["RoleArn"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in app.resources(WORKLOAD, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


# --- File system ---------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["default_app", "custom_app"])
def test_given_variant_when_synthesized_then_file_system_shares_the_gpu_nodes_subnet(
    request, variant
):
    app = request.getfixturevalue(variant)
    _, resource = file_system(app)
    (gpu_nodegroup,) = app.resources(GPU, "AWS::EKS::Nodegroup").values()
    assert len(resource["Properties"]["SubnetIds"]) == 1
    assert resource["Properties"]["SubnetIds"] == gpu_nodegroup["Properties"]["Subnets"]


def test_given_defaults_when_synthesized_then_scratch_2_of_1200_gib_without_throughput(
    default_app,
):
    _, resource = file_system(default_app)
    properties = resource["Properties"]
    assert properties["FileSystemType"] == "LUSTRE"
    assert properties["StorageCapacity"] == 1200
    assert properties["LustreConfiguration"]["DeploymentType"] == "SCRATCH_2"
    assert "PerUnitStorageThroughput" not in properties["LustreConfiguration"]


def test_given_persistent_2_at_500_when_synthesized_then_file_system_has_that_tier(
    persistent_app,
):
    _, resource = file_system(persistent_app)
    lustre = resource["Properties"]["LustreConfiguration"]
    assert lustre["DeploymentType"] == "PERSISTENT_2"
    assert lustre["PerUnitStorageThroughput"] == 500


def test_given_defaults_when_synthesized_then_fsx_sg_opens_only_lustre_ports_to_cluster_and_self(
    default_app,
):
    _, resource = file_system(default_app)
    (group,) = resource["Properties"]["SecurityGroupIds"]
    group_id = group["Fn::GetAtt"][0]
    cluster_id, _ = only(default_app.resources(CLUSTER, "AWS::EKS::Cluster"))
    peers = {
        "cluster": reference_to(
            default_app, CLUSTER, {"Fn::GetAtt": [cluster_id, "ClusterSecurityGroupId"]}
        ),
        "self": group,
    }
    inline = default_app.json(FSX)["Resources"][group_id]["Properties"]
    assert not inline.get("SecurityGroupIngress"), "inline ingress rules"
    assert not inline.get("SecurityGroupEgress"), "inline egress rules (e.g. allow all outbound)"
    rules = set()
    for direction, resource_type, peer_key in (
        ("in", "AWS::EC2::SecurityGroupIngress", "SourceSecurityGroupId"),
        ("out", "AWS::EC2::SecurityGroupEgress", "DestinationSecurityGroupId"),
    ):
        for logical_id, rule in default_app.resources(FSX, resource_type).items():
            properties = rule["Properties"]
            if properties["GroupId"] != group:
                continue
            assert "CidrIp" not in properties and "CidrIpv6" not in properties, logical_id
            peer = next((n for n, p in peers.items() if p == properties.get(peer_key)), None)
            assert peer, f"{logical_id} opens to {properties.get(peer_key)}"
            rules.add(
                (
                    direction,
                    peer,
                    properties["IpProtocol"],
                    properties["FromPort"],
                    properties["ToPort"],
                )
            )
    expected = {
        (direction, peer, "tcp", low, high)
        for direction in ("in", "out")
        for peer in peers
        for low, high in LUSTRE_PORT_RANGES
    }
    assert rules == expected, f"unexpected rules: {sorted(rules - expected)}"


@pytest.mark.parametrize("variant", ["default_app", "persistent_app"])
def test_given_variant_when_synthesized_then_file_system_waits_for_its_security_group_rules(
    request, variant
):
    """CreateFileSystem checks the security group's rules when it is called ("The file system
    cannot be created because ... the provided security groups do not permit Lustre LNET network
    traffic on port 988": FSx for Lustre User Guide, "Creating an FSx for Lustre file system
    fails"). The rules are separate resources that CloudFormation creates in parallel with the
    file system unless it depends on them; aws-parallelcluster hit exactly this race
    (aws/aws-parallelcluster issue 6181, PR 1198 adds the DependsOn)."""
    app = request.getfixturevalue(variant)
    file_system_id, resource = file_system(app)
    (group,) = resource["Properties"]["SecurityGroupIds"]
    rules = {
        logical_id
        for resource_type in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress")
        for logical_id, rule in app.resources(FSX, resource_type).items()
        if rule["Properties"]["GroupId"] == group
    }
    assert rules, "no rules found on the file system's security group"
    missing = rules - set(app.depends_on(FSX, file_system_id))
    assert not missing, f"the file system can be created before {sorted(missing)}"


@pytest.mark.parametrize(
    ("variant", "policy"),
    [("default_app", "Delete"), ("persistent_app", "Delete"), ("custom_app", "Retain")],
    ids=["scratch-default-destroy", "persistent-default-destroy", "fsxRemovalPolicy-RETAIN"],
)
def test_given_deployment_type_and_removal_policy_when_synthesized_then_deletion_policy_is_explicit(
    request, variant, policy
):
    app = request.getfixturevalue(variant)
    _, resource = file_system(app)
    assert resource["DeletionPolicy"] == policy
    assert resource["UpdateReplacePolicy"] == policy


def test_given_fsx_storage_gib_2400_when_synthesized_then_file_system_and_volume_have_2400(
    custom_app,
):
    _, resource = file_system(custom_app)
    assert resource["Properties"]["StorageCapacity"] == 2400
    volume = custom_app.kubernetes_object("PersistentVolume")
    assert volume["spec"]["capacity"]["storage"] == "2400Gi"


def test_given_defaults_when_synthesized_then_no_data_repository_association(default_app):
    assert not default_app.resources(FSX, "AWS::FSx::DataRepositoryAssociation")


def test_given_persistent_2_with_model_s3_uri_when_synthesized_then_s3_is_linked_with_auto_import(
    persistent_app,
):
    fs_id, _ = file_system(persistent_app)
    _, association = only(persistent_app.resources(FSX, "AWS::FSx::DataRepositoryAssociation"))
    properties = association["Properties"]
    assert properties["FileSystemId"] == {"Ref": fs_id}
    assert properties["DataRepositoryPath"] == MODEL_S3_URI
    assert properties["FileSystemPath"].startswith("/")
    assert properties["BatchImportMetaDataOnCreate"] is True
    assert {"NEW", "CHANGED"} <= set(properties["S3"]["AutoImportPolicy"]["Events"])


def test_given_model_s3_uri_when_synthesized_then_staging_role_can_read_that_bucket(
    persistent_app,
):
    allowed: dict[str, set[str]] = {}
    for statement in role_policy_statements(persistent_app, "model-stager"):
        if statement["Effect"] != "Allow":
            continue
        for resource in as_list(statement["Resource"]):
            allowed.setdefault(render_tokens(resource), set()).update(as_list(statement["Action"]))

    def grants(resource: str, action: str) -> bool:
        return any(
            re.fullmatch(granted.replace("*", ".*"), action)
            for granted in allowed.get(resource, ())
        )

    assert grants("arn:<{'Ref': 'AWS::Partition'}>:s3:::my-models/deepseek/*", "s3:GetObject")
    assert grants("arn:<{'Ref': 'AWS::Partition'}>:s3:::my-models", "s3:ListBucket")


# --- CSI driver, PersistentVolume and claim ------------------------------------------------


def test_given_defaults_when_synthesized_then_fsx_csi_chart_is_pinned_and_tolerates_gpu_nodes(
    default_app,
):
    release = default_app.helm_releases()["aws-fsx-csi-driver"]
    pin = CHARTS["aws-fsx-csi-driver"]
    assert re.fullmatch(r"v?\d+\.\d+\.\d+", release["Version"])
    assert (release["Repository"], release["Chart"], release["Version"]) == (
        pin.repository,
        pin.chart,
        pin.version,
    )
    (gpu_nodegroup,) = default_app.resources(GPU, "AWS::EKS::Nodegroup").values()
    (taint,) = gpu_nodegroup["Properties"]["Taints"]
    assert {"key": taint["Key"], "value": taint["Value"]} == {
        "key": GPU_TAINT["key"],
        "value": GPU_TAINT["value"],
    }
    node = release["Values"]["node"]
    assert node.get("tolerateAllTaints") or tolerates(node.get("tolerations", []), GPU_TAINT)


def test_given_defaults_when_synthesized_then_pv_is_static_flock_and_points_at_the_file_system(
    default_app,
):
    fs_id, _ = file_system(default_app)
    fs_ref = marker(reference_to(default_app, FSX, {"Ref": fs_id}))
    mount_ref = marker(reference_to(default_app, FSX, {"Fn::GetAtt": [fs_id, "LustreMountName"]}))
    volume = default_app.kubernetes_object("PersistentVolume")
    spec = volume["spec"]
    assert spec["capacity"]["storage"] == "1200Gi"
    assert spec["mountOptions"] == ["flock"]
    assert spec["storageClassName"] == ""
    csi = spec["csi"]
    assert csi["driver"] == "fsx.csi.aws.com"
    assert csi["volumeHandle"] == fs_ref
    assert csi["volumeAttributes"]["dnsname"].startswith(fs_ref + ".fsx.")
    assert csi["volumeAttributes"]["mountname"] == mount_ref


def test_given_defaults_when_synthesized_then_pvc_binds_the_pv_by_name_with_no_storage_class(
    default_app,
):
    volume = default_app.kubernetes_object("PersistentVolume")
    claim = default_app.kubernetes_object("PersistentVolumeClaim")
    assert claim["spec"]["volumeName"] == volume["metadata"]["name"]
    assert claim["spec"]["storageClassName"] == ""
    assert (
        claim["spec"]["resources"]["requests"]["storage"] == volume["spec"]["capacity"]["storage"]
    )
    assert set(claim["spec"]["accessModes"]) <= set(volume["spec"]["accessModes"])


def test_given_defaults_when_synthesized_then_the_volume_waits_for_the_csi_driver(default_app):
    volume = default_app.kubernetes_object("PersistentVolume")
    volume_id = default_app.manifest_logical_id("PersistentVolume", volume["metadata"]["name"])
    csi_id = default_app.helm_releases()["aws-fsx-csi-driver"]["LogicalId"]
    assert csi_id in default_app.depends_on(WORKLOAD, volume_id)


# --- Model staging Job ---------------------------------------------------------------------


def test_given_defaults_when_synthesized_then_staging_job_runs_on_system_nodes(default_app):
    (system_nodegroup,) = default_app.resources(CLUSTER, "AWS::EKS::Nodegroup").values()
    pod = default_app.staging_job()["spec"]["template"]["spec"]
    selector = dict(pod["nodeSelector"])
    selector.pop("topology.kubernetes.io/zone")
    assert selector
    assert selector.items() <= system_nodegroup["Properties"]["Labels"].items()
    assert not tolerates(pod.get("tolerations", []), GPU_TAINT)
    resources = json.dumps(staging_container(default_app)["resources"])
    assert "nvidia.com/gpu" not in resources


def test_given_defaults_when_synthesized_then_staging_job_mounts_the_claim_at_fsx(default_app):
    claim = default_app.kubernetes_object("PersistentVolumeClaim")
    pod = default_app.staging_job()["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in staging_container(default_app)["volumeMounts"]}
    assert (
        volumes[mounts[FSX_MOUNT]]["persistentVolumeClaim"]["claimName"]
        == (claim["metadata"]["name"])
    )


def test_given_defaults_when_synthesized_then_model_dir_and_marker_are_on_fsx(default_app):
    env = job_env(default_app)
    assert env["MODEL_ID"] == "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B"
    assert env["MODEL_DIR"].startswith(f"{FSX_MOUNT}/models/")
    assert "deepseek-r1-distill-qwen-32b" in env["MODEL_DIR"]
    marker = env["MARKER"]
    assert marker.startswith(f"{FSX_MOUNT}/")
    # The marker lives outside the model directory, so a partial download never contains it.
    assert not marker.startswith(env["MODEL_DIR"] + "/")


def test_given_defaults_when_synthesized_then_job_runs_the_stage_model_script(default_app):
    container = staging_container(default_app)
    assert container["command"] == ["/bin/bash", "-c"]
    assert container["args"] == [manifests.read_text("stage-model.sh")]


def test_given_stage_model_script_when_read_then_marker_is_checked_first_and_written_last():
    lines = [
        line.strip()
        for line in manifests.read_text("stage-model.sh").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert lines[0] == "set -euo pipefail"
    assert lines[1] == 'if [[ -f "$MARKER" ]]; then'
    skip_block = lines[1 : lines.index("fi") + 1]
    assert "exit 0" in skip_block, "an existing marker must end the Job before any download"
    work = [
        index
        for index, line in enumerate(lines)
        if line.startswith(("pip install", "hf download", "aws s3 sync", "find "))
    ]
    writes = [
        index for index, line in enumerate(lines) if re.search(r'(>|mv .*)\s*"\$MARKER"\s*$', line)
    ]
    assert len(writes) == 1, f"the marker must be written once, found {writes}"
    assert min(work) > lines.index("fi"), "work before the marker check"
    assert writes[0] > max(work), "the marker must be written after every download step"
    # Written atomically: a temporary file renamed into place.
    assert lines[writes[0]] == 'mv "$MARKER.partial" "$MARKER"'


def test_given_no_hf_token_secret_when_synthesized_then_no_token_is_mounted(default_app):
    pod = default_app.staging_job()["spec"]["template"]["spec"]
    assert not [v for v in pod["volumes"] if "csi" in v]
    assert job_env(default_app)["HF_TOKEN_FILE"] == ""
    kinds = {obj["kind"] for obj in default_app.kubernetes_objects()}
    names = {
        obj["metadata"]["name"]
        for obj in default_app.kubernetes_objects()
        if obj["kind"] == "SecretProviderClass"
    }
    assert "SecretProviderClass" in kinds  # the API key's, not a token's
    assert "hf-token" not in names


def test_given_hf_token_secret_name_when_synthesized_then_token_is_a_mounted_csi_secret_file(
    custom_app,
):
    pod = custom_app.staging_job()["spec"]["template"]["spec"]
    token_file = job_env(custom_app)["HF_TOKEN_FILE"]
    assert token_file
    csi_volumes = {v["name"]: v["csi"] for v in pod["volumes"] if "csi" in v}
    assert len(csi_volumes) == 1
    ((volume_name, csi),) = csi_volumes.items()
    assert csi["driver"] == "secrets-store.csi.k8s.io"
    provider_name = csi["volumeAttributes"]["secretProviderClass"]
    (mount,) = [
        m for m in staging_container(custom_app)["volumeMounts"] if m["name"] == volume_name
    ]
    assert mount.get("readOnly") is True
    assert token_file.startswith(mount["mountPath"] + "/")
    provider = custom_app.kubernetes_object("SecretProviderClass", provider_name)
    assert provider["spec"]["provider"] == "aws"
    assert ":secret:hf/token" in provider["spec"]["parameters"]["objects"]
    secret_reads = [
        render_tokens(resource)
        for statement in role_policy_statements(custom_app, "model-stager")
        if "secretsmanager:GetSecretValue" in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    ]
    assert any(":secret:hf/token" in resource for resource in secret_reads)


def test_given_hf_token_secret_name_when_synthesized_then_its_value_never_enters_a_template(
    custom_app,
):
    for stack_id in (CLUSTER, GPU, FSX, WORKLOAD):
        text = json.dumps(custom_app.json(stack_id))
        assert "{{resolve:secretsmanager" not in text, stack_id
        # A literal secret value would sit in a SecretString property.
        assert '"SecretString":' not in text, stack_id
    container = staging_container(custom_app)
    for variable in container["env"]:
        assert "TOKEN" not in variable["name"] or variable["name"] == "HF_TOKEN_FILE"
        assert "valueFrom" not in variable
    assert "envFrom" not in container


def test_given_model_s3_uri_when_synthesized_then_the_job_stages_from_s3_via_the_association(
    persistent_app,
):
    _, association = only(persistent_app.resources(FSX, "AWS::FSx::DataRepositoryAssociation"))
    env = job_env(persistent_app)
    assert env["MODEL_S3_URI"] == MODEL_S3_URI
    assert env["MODEL_DIR"] == FSX_MOUNT + association["Properties"]["FileSystemPath"]
    assert env["PRELOAD_ONLY"] == "true"


# --- vLLM pods -----------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["default_app", "persistent_app"])
def test_given_variant_when_synthesized_then_vllm_pods_wait_for_the_staging_marker(
    request, variant
):
    app = request.getfixturevalue(variant)
    marker = job_env(app)["MARKER"]
    claim = app.kubernetes_object("PersistentVolumeClaim")["metadata"]["name"]
    for role, pod in vllm_pod_specs(app).items():
        waits = [
            c for c in pod.get("initContainers", []) if f'-f "{marker}"' in " ".join(c["command"])
        ]
        assert len(waits) == 1, f"{role} has no init container waiting for {marker}"
        (mount,) = [m for m in waits[0]["volumeMounts"] if m["mountPath"] == FSX_MOUNT]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes[mount["name"]]["persistentVolumeClaim"]["claimName"] == claim
        assert "until" in waits[0]["command"][-1]


@pytest.mark.parametrize("variant", ["default_app", "persistent_app"])
def test_given_variant_when_synthesized_then_vllm_loads_from_fsx_offline(request, variant):
    app = request.getfixturevalue(variant)
    model_dir = job_env(app)["MODEL_DIR"]
    for role, pod in vllm_pod_specs(app).items():
        (container,) = [c for c in pod["containers"] if c["name"] == "vllm"]
        args = container["args"]
        assert args[0] == model_dir, f"{role} serves {args[0]}"
        download_dir = args[args.index("--download-dir") + 1]
        assert download_dir.startswith(f"{FSX_MOUNT}/"), download_dir
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env.get("HF_HUB_OFFLINE") == "1", role
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert FSX_MOUNT in mounts
