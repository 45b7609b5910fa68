"""WorkloadStack: controllers, the vLLM LeaderWorkerSet, its Service and Ingress, the API key.

Each test reads the synthesized templates (never the Python constructs), so it fails when
what CloudFormation would deploy is wrong. Four configurations are synthesized once each:
the default, `distributedExecutor=ray`, `gpuInstanceType=p5.48xlarge`, and one "locked"
variant that combines settings which do not touch each other (allowedCidrs, certificateArn
with domainName, endpointScheme=internal, replicas=2, vllmImage).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from aws_cdk import aws_eks_v2 as eks

from config.settings import DOCUMENTATION_CIDR, Config, config_from_context
from config.versions import ALB_CONTROLLER_VERSION, CHARTS, VLLM_DLC_REPOSITORY, VLLM_DLC_TAG
from planning.catalog import INSTANCES

from conftest import STACK_IDS, Synthesized, cdk_json_context, render_tokens

WORKLOAD = "VllmWorkloadStack"
CLUSTER = "VllmClusterStack"
GPU_STACK = "VllmGpuNodeGroupStack"
NAME = "vllm"
LEADER_SERVICE = "vllm-leader"
NAMESPACE = "vllm"

# Ray is in no default image: the ray executor always comes with an image that has it.
RAY_IMAGE = "my.registry.example.com/vllm:ray"
MP_WITH_RAY_IMAGE = {"vllmImage": RAY_IMAGE}
RAY = {"distributedExecutor": "ray", **MP_WITH_RAY_IMAGE}
P5 = {"gpuInstanceType": "p5.48xlarge"}
ALLOWED_CIDRS = ("203.0.113.7/32", "198.51.100.0/24")
CERTIFICATE_ARN = "arn:aws:acm:us-west-2:123456789012:certificate/abc-123"
CUSTOM_IMAGE = "my.registry.example.com/vllm:custom"
LOCKED = {
    "allowedCidrs": ",".join(ALLOWED_CIDRS),
    "certificateArn": CERTIFICATE_ARN,
    "domainName": "vllm.example.com",
    "endpointScheme": "internal",
    "replicas": 2,
    "vllmImage": CUSTOM_IMAGE,
}

ALB_CHART = "aws-load-balancer-controller"
LWS_RELEASE = "lws"
NVIDIA_RELEASE = "nvidia-device-plugin"
EFA_RELEASE = "aws-efa-k8s-device-plugin"
FSX_RELEASE = "aws-fsx-csi-driver"
SECRETS_DRIVER_RELEASE = "secrets-store-csi-driver"
SECRETS_PROVIDER_RELEASE = "secrets-store-csi-driver-provider-aws"
# The kubectl provider's Lambda dies after 15 minutes, whatever Helm was told.
LAMBDA_LIMIT_SECONDS = 15 * 60
FORBIDDEN_NCCL_ENV = {"NCCL_P2P_DISABLE", "NCCL_SHM_DISABLE", "NCCL_NET_GDR_LEVEL"}
# Labels the kubelet sets itself; every other selector label must be one the node group sets.
WELL_KNOWN_NODE_LABELS = {"node.kubernetes.io/instance-type"}
EXPECTED_DLC_ACCOUNTS = {
    "us-west-2": "763104351884",
    "us-east-1": "763104351884",
    "eu-west-1": "763104351884",
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "me-south-1": "217643126080",
    "cn-north-1": "727897471807",
}


# ---------------------------------------------------------------------------------------------
# Variants and helpers
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_app(synth_variant) -> Synthesized:
    return synth_variant(**RAY)


@pytest.fixture(scope="module")
def mp_with_ray_image_app(synth_variant) -> Synthesized:
    """The same image as ray_app with the default executor: the two differ only in executor."""
    return synth_variant(**MP_WITH_RAY_IMAGE)


@pytest.fixture(scope="module")
def p5_app(synth_variant) -> Synthesized:
    return synth_variant(**P5)


@pytest.fixture(scope="module")
def locked_app(synth_variant) -> Synthesized:
    return synth_variant(**LOCKED)


def config_for(**overrides: Any) -> Config:
    """The Config the app builds for these overrides (pure Python, no synthesis)."""
    return config_from_context({**cdk_json_context(), **overrides})


def lws(app: Synthesized) -> dict[str, Any]:
    return app.kubernetes_object("LeaderWorkerSet", NAME)


def pod_specs(app: Synthesized) -> dict[str, dict[str, Any]]:
    template = lws(app)["spec"]["leaderWorkerTemplate"]
    return {
        "leader": template["leaderTemplate"]["spec"],
        "worker": template["workerTemplate"]["spec"],
    }


def vllm_container(spec: dict[str, Any]) -> dict[str, Any]:
    matches = [c for c in spec["containers"] if c["name"] == "vllm"]
    assert len(matches) == 1, f"expected one vllm container, found {len(matches)}"
    return matches[0]


def all_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def env_by_name(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def arg_value(args: list[str], flag: str) -> str:
    assert flag in args, f"{flag} missing from {args}"
    index = args.index(flag)
    assert index + 1 < len(args), f"{flag} has no value"
    return args[index + 1]


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair of every dict inside `node`."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def go_duration_seconds(text: str) -> float:
    """Helm's --timeout is a Go duration such as 900s, 15m or 1h0m0s."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a Go duration: {text}"
    return sum(float(number) * units[unit] for number, unit in parts)


def memory_gib(quantity: str) -> float:
    match = re.fullmatch(r"(\d+)(Gi|Mi|Ti)", quantity)
    assert match, f"unexpected memory quantity {quantity}"
    return int(match.group(1)) * {"Mi": 1 / 1024, "Gi": 1, "Ti": 1024}[match.group(2)]


def gpu_nodegroup(app: Synthesized) -> dict[str, Any]:
    groups = [
        resource["Properties"]
        for resource in app.resources(GPU_STACK, "AWS::EKS::Nodegroup").values()
        if resource["Properties"].get("Taints")
    ]
    assert len(groups) == 1, "expected one tainted GPU node group"
    return groups[0]


def gpu_nodegroup_ids(app: Synthesized) -> list[str]:
    return [
        lid
        for lid, r in app.resources(GPU_STACK, "AWS::EKS::Nodegroup").items()
        if r["Properties"].get("Taints")
    ]


def gpu_taints(app: Synthesized) -> list[dict[str, str]]:
    """The GPU node group's taints in Kubernetes spelling (NO_SCHEDULE -> NoSchedule)."""
    spelling = {
        "NO_SCHEDULE": "NoSchedule",
        "NO_EXECUTE": "NoExecute",
        "PREFER_NO_SCHEDULE": "PreferNoSchedule",
    }
    return [
        {"key": t["Key"], "value": t.get("Value", ""), "effect": spelling[t["Effect"]]}
        for t in gpu_nodegroup(app)["Taints"]
    ]


def tolerates(tolerations: list[dict[str, Any]], taint: dict[str, str]) -> bool:
    for toleration in tolerations:
        if toleration.get("effect") not in (None, "", taint["effect"]):
            continue
        operator = toleration.get("operator", "Equal")
        if operator == "Exists" and toleration.get("key") in (None, taint["key"]):
            return True
        if (
            operator == "Equal"
            and toleration.get("key") == taint["key"]
            and toleration.get("value", "") == taint["value"]
        ):
            return True
    return False


def assert_runs_on_gpu_nodes_only(
    app: Synthesized, node_selector: dict[str, str], tolerations: list[dict[str, Any]]
) -> None:
    node_labels = gpu_nodegroup(app)["Labels"]
    custom = {k: v for k, v in node_selector.items() if k not in WELL_KNOWN_NODE_LABELS}
    assert custom, "no nodeSelector: the pods could land on the system nodes"
    assert custom.items() <= node_labels.items(), (
        f"nodeSelector {custom} does not match the GPU node labels {node_labels}"
    )
    assert custom.get("workload-class") == "gpu"
    for taint in gpu_taints(app):
        assert tolerates(tolerations, taint), f"{tolerations} do not tolerate {taint}"


def transitive_depends_on(app: Synthesized, stack_id: str, logical_id: str) -> set[str]:
    seen: set[str] = set()
    pending = list(app.depends_on(stack_id, logical_id))
    while pending:
        current = pending.pop()
        if current not in seen:
            seen.add(current)
            pending.extend(app.depends_on(stack_id, current))
    return seen


def release_id(app: Synthesized, release: str) -> str:
    return app.helm_releases()[release]["LogicalId"]


def ingress(app: Synthesized) -> dict[str, Any]:
    return app.kubernetes_object("Ingress", NAME)


def annotations(app: Synthesized) -> dict[str, str]:
    return ingress(app)["metadata"]["annotations"]


def outputs_matching(app: Synthesized, name: str) -> dict[str, Any]:
    outputs = app.json(WORKLOAD).get("Outputs", {})
    matches = {k: v for k, v in outputs.items() if name in k}
    assert len(matches) == 1, f"expected one output named like {name}, got {list(matches)}"
    return next(iter(matches.values()))


def output_text(app: Synthesized, name: str) -> str:
    return render_tokens(outputs_matching(app, name)["Value"])


def evaluate_rule_assertion(expression: Any) -> bool | None:
    """Evaluate a Rules assertion built only from literals; None if it depends on input."""
    if isinstance(expression, dict) and len(expression) == 1:
        ((function, arguments),) = expression.items()
        if function == "Fn::Equals":
            left, right = arguments
            if isinstance(left, str) and isinstance(right, str):
                return left == right
            return None
        values = [evaluate_rule_assertion(argument) for argument in arguments]
        if None in values:
            return None
        if function == "Fn::Not":
            return not values[0]
        if function == "Fn::And":
            return all(values)
        if function == "Fn::Or":
            return any(values)
    return None


def guard_rules(app: Synthesized) -> dict[str, Any]:
    rules = app.json(WORKLOAD).get("Rules", {})
    return {rule_id: rule for rule_id, rule in rules.items() if rule_id != "CheckBootstrapVersion"}


def without(obj: dict[str, Any], paths: list[tuple[Any, ...]]) -> dict[str, Any]:
    """A deep copy of `obj` with each path (keys/indexes) replaced by a placeholder."""
    result = copy.deepcopy(obj)
    for path in paths:
        node = result
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = "<varies>"
    return result


def resource_differences(a: Synthesized, b: Synthesized, stack_id: str) -> set[str]:
    """Logical ids whose resource differs (or exists in only one) between two syntheses."""
    left, right = a.json(stack_id)["Resources"], b.json(stack_id)["Resources"]
    return {lid for lid in left.keys() | right.keys() if left.get(lid) != right.get(lid)}


def non_resource_sections_equal(a: Synthesized, b: Synthesized, stack_id: str) -> bool:
    left = {k: v for k, v in a.json(stack_id).items() if k != "Resources"}
    right = {k: v for k, v in b.json(stack_id).items() if k != "Resources"}
    return left == right


# ---------------------------------------------------------------------------------------------
# Controllers
# ---------------------------------------------------------------------------------------------


def test_given_default_config_when_synthesized_then_alb_controller_chart_3_2_2_is_in_workload_stack(
    default_app,
):
    expected = getattr(eks.AlbControllerVersion, ALB_CONTROLLER_VERSION)
    releases = [r for r in default_app.helm_releases().values() if r["Chart"] == ALB_CHART]
    assert len(releases) == 1
    assert ALB_CONTROLLER_VERSION == "V3_2_2"
    assert releases[0]["Version"] == expected.helm_chart_version == "3.2.2"
    assert releases[0]["Repository"] == "https://aws.github.io/eks-charts"


@pytest.mark.parametrize("stack_id", [s for s in STACK_IDS if s != WORKLOAD])
def test_given_default_config_then_no_other_stack_installs_an_alb_controller(default_app, stack_id):
    """The cluster's own alb_controller option cycles with the node group stack (DESIGN 2)."""
    charts = [r["Chart"] for r in default_app.helm_releases(stack_id).values()]
    assert ALB_CHART not in charts
    for logical_id, resource in default_app.json(stack_id)["Resources"].items():
        assert "LoadBalancerController" not in logical_id and "AlbController" not in logical_id
        if resource["Type"] == "AWS::IAM::Policy":
            assert "elasticloadbalancing:CreateLoadBalancer" not in json.dumps(resource), (
                f"{stack_id}/{logical_id} carries the controller's IAM policy"
            )


def test_given_default_config_then_lws_chart_is_pulled_by_its_full_oci_reference(default_app):
    """The kubectl handler runs `helm pull <repository>` and installs the last path segment."""
    release = default_app.helm_releases()[LWS_RELEASE]
    assert release["Repository"] == "oci://registry.k8s.io/lws/charts/lws"
    assert release["Chart"] == "lws"
    assert release["Repository"].rstrip("/").rsplit("/", 1)[-1] == release["Chart"]
    assert re.fullmatch(r"v?\d+\.\d+\.\d+", release["Version"]), "OCI charts need a version"


def test_given_default_config_then_nvidia_device_plugin_is_0_19_3_or_newer(default_app):
    """0.19.0-0.19.2 conflict with the EFA device plugin."""
    version = default_app.helm_releases()[NVIDIA_RELEASE]["Version"]
    numbers = tuple(int(part) for part in version.lstrip("v").split("-")[0].split("."))
    assert numbers >= (0, 19, 3)


@pytest.mark.parametrize("release", [NVIDIA_RELEASE, EFA_RELEASE])
def test_given_default_config_then_device_plugin_selects_gpu_nodes_and_tolerates_their_taint(
    default_app, release
):
    values = default_app.helm_releases()[release]["Values"]
    assert_runs_on_gpu_nodes_only(
        default_app, values.get("nodeSelector", {}), values.get("tolerations", [])
    )


def test_given_default_config_then_every_chart_matches_the_version_table(default_app):
    releases = default_app.helm_releases()
    alb = getattr(eks.AlbControllerVersion, ALB_CONTROLLER_VERSION).helm_chart_version
    unpinned = {
        name for name, r in releases.items() if name not in CHARTS and r["Chart"] != ALB_CHART
    }
    assert unpinned == set(), "every Helm release must be pinned in config/versions.py"
    for pin in CHARTS.values():
        assert pin.release in releases, f"{pin.release} is pinned but not installed"
        release = releases[pin.release]
        assert (
            release["Repository"],
            release["Chart"],
            release["Version"],
            release["Namespace"],
        ) == (pin.repository, pin.chart, pin.version, pin.namespace)
    assert [r["Version"] for r in releases.values() if r["Chart"] == ALB_CHART] == [alb]


@pytest.mark.parametrize("stack_id", STACK_IDS)
def test_given_default_config_then_no_helm_release_waits_longer_than_the_lambda_can(
    default_app, stack_id
):
    for name, release in default_app.helm_releases(stack_id).items():
        wait = str(release.get("Wait", False)).lower() == "true"
        if wait and "Timeout" in release:
            seconds = go_duration_seconds(release["Timeout"])
            # Strictly less: Helm must give up before the Lambda is killed, so the failure is
            # reported as Helm's own error rather than a Lambda timeout.
            assert seconds < LAMBDA_LIMIT_SECONDS, f"{name} waits {release['Timeout']}"


def test_given_default_config_then_the_lb_controller_image_comes_from_the_public_gallery(
    default_app,
):
    """The library default is us-west-2's private registry: a cross-region pull elsewhere."""
    (controller,) = [r for r in default_app.helm_releases().values() if r["Chart"] == ALB_CHART]
    assert controller["Values"]["image"]["repository"] == (
        "public.ecr.aws/eks/aws-load-balancer-controller"
    )


# ---------------------------------------------------------------------------------------------
# Ordering: every object depends on the chart that serves it (DependsOn in the template)
# ---------------------------------------------------------------------------------------------


def test_given_default_config_then_leaderworkerset_depends_on_lws_and_both_device_plugins(
    default_app,
):
    depends_on = default_app.depends_on(
        WORKLOAD, default_app.manifest_logical_id("LeaderWorkerSet", NAME)
    )
    for release in (LWS_RELEASE, NVIDIA_RELEASE, EFA_RELEASE):
        assert release_id(default_app, release) in depends_on, f"LWS does not wait for {release}"


def test_given_default_config_then_secret_provider_class_depends_on_the_aws_provider_chart(
    default_app,
):
    logical_id = default_app.manifest_logical_id("SecretProviderClass", f"{NAME}-api-key")
    assert release_id(default_app, SECRETS_PROVIDER_RELEASE) in default_app.depends_on(
        WORKLOAD, logical_id
    )
    # The SecretProviderClass CRD itself comes with the driver chart.
    assert release_id(default_app, SECRETS_DRIVER_RELEASE) in transitive_depends_on(
        default_app, WORKLOAD, logical_id
    )


@pytest.mark.parametrize("kind", ["PersistentVolume", "PersistentVolumeClaim"])
def test_given_default_config_then_model_volume_depends_on_the_fsx_csi_chart(default_app, kind):
    name = default_app.kubernetes_object(kind)["metadata"]["name"]
    logical_id = default_app.manifest_logical_id(kind, name)
    assert release_id(default_app, FSX_RELEASE) in default_app.depends_on(WORKLOAD, logical_id)


def test_given_default_config_then_ingress_depends_on_alb_controller_and_leader_service(
    default_app,
):
    """Deploy creates the Ingress last; destroy deletes it (and its ALB) before the controller."""
    depends_on = default_app.depends_on(WORKLOAD, default_app.manifest_logical_id("Ingress", NAME))
    alb = [r["LogicalId"] for r in default_app.helm_releases().values() if r["Chart"] == ALB_CHART]
    assert alb and alb[0] in depends_on
    assert default_app.manifest_logical_id("Service", LEADER_SERVICE) in depends_on


def test_given_default_config_then_every_kubernetes_object_transitively_waits_for_its_charts(
    default_app,
):
    needs = {
        "LeaderWorkerSet": {
            LWS_RELEASE,
            NVIDIA_RELEASE,
            EFA_RELEASE,
            FSX_RELEASE,
            SECRETS_DRIVER_RELEASE,
            SECRETS_PROVIDER_RELEASE,
        },
        "SecretProviderClass": {SECRETS_DRIVER_RELEASE, SECRETS_PROVIDER_RELEASE},
        "PersistentVolume": {FSX_RELEASE},
        "PersistentVolumeClaim": {FSX_RELEASE},
        "Job": {FSX_RELEASE},
        "Job/webhook-ready": {LWS_RELEASE},
        "Ingress": {"aws-load-balancer-controller"},
        "Service": {"aws-load-balancer-controller"},
    }
    releases = default_app.helm_releases()
    seen_kinds = set()
    for obj in default_app.kubernetes_objects():
        labels = obj["metadata"].get("labels", {})
        role = (
            "Job/webhook-ready" if labels.get("app.kubernetes.io/name") == "webhook-ready" else ""
        )
        kind = role or obj["kind"]
        if kind not in needs:
            continue
        seen_kinds.add(kind)
        closure = transitive_depends_on(
            default_app,
            WORKLOAD,
            default_app.manifest_logical_id(obj["kind"], obj["metadata"]["name"]),
        )
        for release in needs[kind]:
            assert releases[release]["LogicalId"] in closure, (
                f"{obj['kind']}/{obj['metadata']['name']} does not wait for {release}"
            )
    assert seen_kinds == set(needs)


# ---------------------------------------------------------------------------------------------
# LeaderWorkerSet
# ---------------------------------------------------------------------------------------------


def test_given_default_config_then_leaderworkerset_has_one_replica_of_gpu_node_count_pods(
    default_app,
):
    obj = lws(default_app)
    config = config_for()
    assert obj["apiVersion"] == "leaderworkerset.x-k8s.io/v1"
    assert obj["metadata"]["namespace"] == NAMESPACE
    assert obj["spec"]["replicas"] == config.replicas == 1
    assert obj["spec"]["leaderWorkerTemplate"]["size"] == config.gpu_node_count == 2


def test_given_replicas_2_then_leaderworkerset_has_two_replicas_of_the_same_size(locked_app):
    obj = lws(locked_app)
    assert obj["spec"]["replicas"] == 2
    assert obj["spec"]["leaderWorkerTemplate"]["size"] == 2


def test_given_default_config_then_groups_restart_together_and_start_without_leader_ready(
    default_app,
):
    """LeaderReady would deadlock: the leader is only ready once its workers joined."""
    spec = lws(default_app)["spec"]
    assert spec["leaderWorkerTemplate"]["restartPolicy"] == "RecreateGroupOnPodRestart"
    assert spec["startupPolicy"] == "LeaderCreated"


@pytest.mark.parametrize(
    ("variant", "instance_type", "gpus", "efa"),
    [({}, "p4d.24xlarge", 8, 4), (P5, "p5.48xlarge", 8, 32)],
    ids=["p4d", "p5"],
)
@pytest.mark.parametrize("role", ["leader", "worker"])
def test_given_instance_type_then_each_pod_requests_its_gpus_efa_cpu_and_memory(
    synth_variant, variant, instance_type, gpus, efa, role
):
    instance = INSTANCES[instance_type]
    assert (instance.gpus, instance.efa_interfaces) == (gpus, efa)
    resources = vllm_container(pod_specs(synth_variant(**variant))[role])["resources"]
    for section in ("requests", "limits"):
        assert int(resources[section]["nvidia.com/gpu"]) == gpus
        assert int(resources[section]["vpc.amazonaws.com/efa"]) == efa
    cpu = float(resources["requests"]["cpu"])
    memory = memory_gib(resources["requests"]["memory"])
    # Big enough to keep other pods off the node, small enough to fit next to the daemons.
    assert instance.vcpus / 2 < cpu < instance.vcpus
    assert instance.memory_gib / 2 < memory < instance.memory_gib
    assert memory_gib(resources["limits"]["memory"]) >= memory


@pytest.mark.parametrize("variant", [{}, RAY], ids=["mp", "ray"])
@pytest.mark.parametrize("role", ["leader", "worker"])
def test_given_executor_then_each_pod_has_memory_backed_dev_shm_and_ipc_lock(
    synth_variant, variant, role
):
    spec = pod_specs(synth_variant(**variant))[role]
    container = vllm_container(spec)
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert "/dev/shm" in mounts
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"
    assert "IPC_LOCK" in container["securityContext"]["capabilities"]["add"]


@pytest.mark.parametrize("variant", [{}, RAY], ids=["mp", "ray"])
def test_given_executor_then_no_container_anywhere_is_privileged(synth_variant, variant):
    app = synth_variant(**variant)
    for role, spec in pod_specs(app).items():
        for container in all_containers(spec):
            assert container.get("securityContext", {}).get("privileged") is not True, role
    for obj in app.kubernetes_objects():
        for key, value in walk(obj):
            if key == "privileged":
                assert value is not True, f"{obj['kind']}/{obj['metadata']['name']} is privileged"


@pytest.mark.parametrize("variant", [{}, RAY], ids=["mp", "ray"])
@pytest.mark.parametrize("role", ["leader", "worker"])
def test_given_executor_then_each_pod_uses_efa_and_never_disables_nvlink_shm_or_gdr(
    synth_variant, variant, role
):
    spec = pod_specs(synth_variant(**variant))[role]
    assert env_by_name(vllm_container(spec))["FI_PROVIDER"].get("value") == "efa"
    for container in all_containers(spec):
        names = set(env_by_name(container))
        assert not names & FORBIDDEN_NCCL_ENV, f"{container['name']} sets {names}"


@pytest.mark.parametrize("variant", [{}, RAY], ids=["mp", "ray"])
def test_given_executor_then_no_kubernetes_object_sets_a_forbidden_nccl_variable(
    synth_variant, variant
):
    for obj in synth_variant(**variant).kubernetes_objects():
        for key, value in walk(obj):
            if key == "env":
                names = {entry.get("name") for entry in value}
                assert not names & FORBIDDEN_NCCL_ENV, obj["metadata"]["name"]


@pytest.mark.parametrize("role", ["leader", "worker"])
def test_given_default_config_then_each_pod_tolerates_the_gpu_taint_and_selects_gpu_nodes(
    default_app, role
):
    spec = pod_specs(default_app)[role]
    assert_runs_on_gpu_nodes_only(default_app, spec["nodeSelector"], spec["tolerations"])
    assert spec["nodeSelector"]["node.kubernetes.io/instance-type"] == "p4d.24xlarge"


# ---------------------------------------------------------------------------------------------
# Distributed executors
# ---------------------------------------------------------------------------------------------


def test_given_mp_executor_then_leader_joins_the_group_through_lws_variables(default_app):
    config = config_for()
    assert config.distributed_executor == "mp"
    leader = vllm_container(pod_specs(default_app)["leader"])
    assert leader["command"] == ["vllm", "serve"]
    args = leader["args"]
    assert arg_value(args, "--distributed-executor-backend") == "mp"
    assert arg_value(args, "--nnodes") == str(config.gpu_node_count) == "2"
    assert arg_value(args, "--node-rank") == "$(LWS_WORKER_INDEX)"
    assert arg_value(args, "--master-addr") == "$(LWS_LEADER_ADDRESS)"
    assert arg_value(args, "--master-port").isdigit()
    assert "--headless" not in args


def test_given_mp_executor_then_workers_run_the_leaders_arguments_plus_headless(default_app):
    specs = pod_specs(default_app)
    leader_args = vllm_container(specs["leader"])["args"]
    worker = vllm_container(specs["worker"])
    assert worker["command"] == ["vllm", "serve"]
    assert "--headless" in worker["args"]
    # Same model, layout and rendezvous on every node; only the API server is left out.
    assert [a for a in worker["args"] if a != "--headless"] == leader_args


@pytest.mark.parametrize("role", ["leader", "worker"])
def test_given_mp_executor_then_parallelism_and_context_length_come_from_the_planner(
    default_app, role
):
    plan = config_for().plan
    args = vllm_container(pod_specs(default_app)[role])["args"]
    assert arg_value(args, "--tensor-parallel-size") == str(plan.tensor_parallel_size) == "8"
    assert arg_value(args, "--pipeline-parallel-size") == str(plan.pipeline_parallel_size) == "2"
    assert plan.max_model_len
    assert arg_value(args, "--max-model-len") == str(plan.max_model_len)


@pytest.mark.parametrize("variant", [{}, RAY], ids=["mp", "ray"])
@pytest.mark.parametrize("role", ["leader", "worker"])
def test_given_executor_then_vllm_host_ip_is_the_pod_ip(synth_variant, variant, role):
    env = env_by_name(vllm_container(pod_specs(synth_variant(**variant))[role]))
    assert env["VLLM_HOST_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"


def test_given_ray_executor_then_leader_starts_head_waits_for_group_then_serves(ray_app):
    leader = vllm_container(pod_specs(ray_app)["leader"])
    command = leader["command"]
    assert command[:2] in (["/bin/bash", "-c"], ["bash", "-c"])
    script = command[2]
    head = script.index("ray start --head")
    wait = script.index("LWS_GROUP_SIZE")
    serve = script.index("exec vllm serve")
    assert head < wait < serve
    assert re.search(r"\b(until|while)\b", script[head:serve]), "the leader does not wait"
    assert '"$@"' in script[serve:], "vllm serve must receive the container args"
    args = leader["args"]
    assert arg_value(args, "--distributed-executor-backend") == "ray"
    plan = config_for(**RAY).plan
    assert arg_value(args, "--tensor-parallel-size") == str(plan.tensor_parallel_size)
    assert arg_value(args, "--pipeline-parallel-size") == str(plan.pipeline_parallel_size)
    assert not {"--nnodes", "--node-rank", "--master-addr", "--headless"} & set(args)


def test_given_ray_executor_then_workers_join_the_leaders_head_and_block(ray_app):
    worker = vllm_container(pod_specs(ray_app)["worker"])
    text = " ".join([*worker["command"], *worker.get("args", [])]).replace('"', "")
    assert "ray start --address=$LWS_LEADER_ADDRESS:6379" in text
    assert "--block" in text
    assert "vllm serve" not in text


def test_given_ray_executor_then_only_the_leaderworkerset_manifest_changes(
    mp_with_ray_image_app, ray_app
):
    base = mp_with_ray_image_app
    lws_id = base.manifest_logical_id("LeaderWorkerSet", NAME)
    assert resource_differences(base, ray_app, WORKLOAD) == {lws_id}
    assert non_resource_sections_equal(base, ray_app, WORKLOAD)
    for stack_id in STACK_IDS:
        if stack_id != WORKLOAD:
            assert base.json(stack_id) == ray_app.json(stack_id), stack_id


def test_given_ray_executor_then_inside_the_lws_only_commands_and_args_change(
    mp_with_ray_image_app, ray_app
):
    paths = [
        ("spec", "leaderWorkerTemplate", template, "spec", "containers", 0, field)
        for template in ("leaderTemplate", "workerTemplate")
        for field in ("command", "args")
    ]
    before, after = lws(mp_with_ray_image_app), lws(ray_app)
    assert before != after
    assert without(before, paths) == without(after, paths)


def test_given_p5_then_workload_changes_only_in_the_leaderworkerset(default_app, p5_app):
    lws_id = default_app.manifest_logical_id("LeaderWorkerSet", NAME)
    assert resource_differences(default_app, p5_app, WORKLOAD) == {lws_id}
    assert non_resource_sections_equal(default_app, p5_app, WORKLOAD)
    for stack_id in ("VllmClusterStack", "VllmFsxStack"):
        assert default_app.json(stack_id) == p5_app.json(stack_id), stack_id


def test_given_p5_then_the_lws_changes_only_in_sizing_and_instance_selector(default_app, p5_app):
    instance = INSTANCES["p5.48xlarge"]
    specs = pod_specs(p5_app)
    for spec in specs.values():
        assert spec["nodeSelector"]["node.kubernetes.io/instance-type"] == instance.name
        resources = vllm_container(spec)["resources"]
        assert int(resources["limits"]["vpc.amazonaws.com/efa"]) == 32
    leader_args = vllm_container(specs["leader"])["args"]
    assert arg_value(leader_args, "--max-model-len") == str(config_for(**P5).plan.max_model_len)

    def varying_paths(obj: dict[str, Any]) -> list[tuple[Any, ...]]:
        paths: list[tuple[Any, ...]] = []
        for template in ("leaderTemplate", "workerTemplate"):
            base = ("spec", "leaderWorkerTemplate", template, "spec")
            spec = obj["spec"]["leaderWorkerTemplate"][template]["spec"]
            paths.append((*base, "containers", 0, "resources"))
            paths.append((*base, "nodeSelector", "node.kubernetes.io/instance-type"))
            args = spec["containers"][0]["args"]
            paths.append((*base, "containers", 0, "args", args.index("--max-model-len") + 1))
            shm = [i for i, v in enumerate(spec["volumes"]) if v["name"] == "dshm"]
            paths.append((*base, "volumes", shm[0], "emptyDir", "sizeLimit"))
        return paths

    before, after = lws(default_app), lws(p5_app)
    assert without(before, varying_paths(before)) == without(after, varying_paths(after))


def test_given_p5_then_gpu_stack_changes_only_in_launch_template_interfaces_and_instance_type(
    default_app, p5_app
):
    before = default_app.json(GPU_STACK)["Resources"]
    after = p5_app.json(GPU_STACK)["Resources"]
    changed = resource_differences(default_app, p5_app, GPU_STACK)
    templates = {lid for lid in changed if before[lid]["Type"] == "AWS::EC2::LaunchTemplate"}
    nodegroups = {lid for lid in changed if before[lid]["Type"] == "AWS::EKS::Nodegroup"}
    assert len(templates) == 1
    assert changed == templates | nodegroups
    (template_id,) = templates
    old = before[template_id]["Properties"]["LaunchTemplateData"]
    new = after[template_id]["Properties"]["LaunchTemplateData"]
    assert {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)} <= {
        "NetworkInterfaces",
        "InstanceType",
    }
    assert len(new["NetworkInterfaces"]) == 32
    assert len(old["NetworkInterfaces"]) == 4
    for lid in nodegroups:
        old_ng, new_ng = before[lid]["Properties"], after[lid]["Properties"]
        assert {k for k in old_ng.keys() | new_ng.keys() if old_ng.get(k) != new_ng.get(k)} <= {
            "InstanceTypes"
        }
    instance_types = {new.get("InstanceType")} | {
        t
        for lid in gpu_nodegroup_ids(p5_app)
        for t in after[lid]["Properties"].get("InstanceTypes", [])
    }
    assert instance_types - {None} == {"p5.48xlarge"}


# ---------------------------------------------------------------------------------------------
# Probes
# ---------------------------------------------------------------------------------------------


def probe_port(container: dict[str, Any], port: Any) -> int:
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    assert port in named, f"probe port {port} is not a named container port"
    return named[port]


def test_given_default_config_then_leader_startup_probe_allows_thirty_minutes_to_load(
    default_app,
):
    leader = vllm_container(pod_specs(default_app)["leader"])
    probe = leader["startupProbe"]
    assert probe["httpGet"]["path"] == "/health"
    assert probe_port(leader, probe["httpGet"]["port"]) == 8000
    budget = probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3)
    assert budget >= 30 * 60


def test_given_default_config_then_leader_readiness_checks_health(default_app):
    leader = vllm_container(pod_specs(default_app)["leader"])
    probe = leader["readinessProbe"]
    assert probe["httpGet"]["path"] == "/health"
    assert probe_port(leader, probe["httpGet"]["port"]) == 8000


def test_given_default_config_then_liveness_is_gated_by_the_startup_probe(default_app):
    """Kubernetes runs liveness only after the startup probe succeeded once."""
    leader = vllm_container(pod_specs(default_app)["leader"])
    assert "livenessProbe" in leader
    assert "startupProbe" in leader
    liveness = leader["livenessProbe"]
    assert liveness.get("initialDelaySeconds", 0) >= 0
    assert liveness.get("periodSeconds", 10) * liveness.get("failureThreshold", 3) >= 60


# ---------------------------------------------------------------------------------------------
# Image
# ---------------------------------------------------------------------------------------------

IMAGE_PATTERN = re.compile(
    r"<\{'Fn::FindInMap': \['(?P<mapping>\w+)', \{'Ref': 'AWS::Region'\}, '(?P<key>\w+)'\]\}>"
    r"\.dkr\.ecr\.<\{'Ref': 'AWS::Region'\}>\.<\{'Ref': 'AWS::URLSuffix'\}>"
    r"/(?P<repository>[\w.-]+):(?P<tag>[\w.-]+)"
)


@pytest.mark.parametrize("role", ["leader", "worker"])
def test_given_default_image_then_it_is_the_dlc_of_the_deploying_regions_registry(
    default_app, role
):
    image = vllm_container(pod_specs(default_app)[role])["image"]
    match = IMAGE_PATTERN.fullmatch(image)
    assert match, f"not a region-mapped DLC image: {image}"
    assert (match["repository"], match["tag"]) == (VLLM_DLC_REPOSITORY, VLLM_DLC_TAG)
    assert (match["repository"], match["tag"]) == ("vllm", "0.27.1-gpu-py312-cu130-ubuntu22.04-ec2")
    mapping = default_app.json(WORKLOAD)["Mappings"][match["mapping"]]
    for region, account in EXPECTED_DLC_ACCOUNTS.items():
        assert mapping[region][match["key"]] == account, region


def test_given_custom_vllm_image_then_it_is_used_verbatim_without_a_region_mapping(locked_app):
    for role, spec in pod_specs(locked_app).items():
        assert vllm_container(spec)["image"] == CUSTOM_IMAGE, role
    template = locked_app.json(WORKLOAD)
    # The access-log bucket policy has a region mapping of its own (tests/test_edge.py).
    assert not [name for name in template.get("Mappings", {}) if "DlcRegistry" in name]
    lws_id = locked_app.manifest_logical_id("LeaderWorkerSet", NAME)
    assert "Fn::FindInMap" not in json.dumps(template["Resources"][lws_id])


# ---------------------------------------------------------------------------------------------
# Leader Service and Ingress
# ---------------------------------------------------------------------------------------------


def test_given_default_config_then_leader_service_selects_every_replicas_leader(default_app):
    service = default_app.kubernetes_object("Service", LEADER_SERVICE)
    assert service["metadata"]["namespace"] == NAMESPACE
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert service["spec"]["selector"] == {
        "leaderworkerset.sigs.k8s.io/name": NAME,
        "leaderworkerset.sigs.k8s.io/worker-index": "0",
    }
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [8000]


def test_given_default_config_then_ingress_is_an_internet_facing_alb_to_pod_ips(default_app):
    obj = ingress(default_app)
    notes = annotations(default_app)
    assert obj["spec"]["ingressClassName"] == "alb"
    assert notes["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
    assert notes["alb.ingress.kubernetes.io/target-type"] == "ip"
    assert notes["alb.ingress.kubernetes.io/healthcheck-path"] == "/health"


def test_given_endpoint_scheme_internal_then_the_alb_is_internal(locked_app):
    assert annotations(locked_app)["alb.ingress.kubernetes.io/scheme"] == "internal"


def test_given_default_config_then_alb_idle_timeout_is_600_seconds(default_app):
    attributes = annotations(default_app)["alb.ingress.kubernetes.io/load-balancer-attributes"]
    pairs = dict(item.split("=", 1) for item in attributes.split(","))
    assert pairs["idle_timeout.timeout_seconds"] == "600"


def test_given_no_allowed_cidrs_then_ingress_admits_only_the_documentation_cidr(default_app):
    cidrs = annotations(default_app)["alb.ingress.kubernetes.io/inbound-cidrs"]
    assert DOCUMENTATION_CIDR == "192.0.2.0/24"
    assert [c.strip() for c in cidrs.split(",")] == [DOCUMENTATION_CIDR]


def test_given_allowed_cidrs_then_ingress_admits_exactly_those(locked_app):
    cidrs = annotations(locked_app)["alb.ingress.kubernetes.io/inbound-cidrs"]
    assert sorted(c.strip() for c in cidrs.split(",")) == sorted(ALLOWED_CIDRS)


@pytest.mark.parametrize("variant", [{}, LOCKED], ids=["default", "locked"])
def test_given_any_config_then_only_the_v1_prefix_is_routed(synth_variant, variant):
    spec = ingress(synth_variant(**variant))["spec"]
    assert "defaultBackend" not in spec
    paths = [path for rule in spec["rules"] for path in rule["http"]["paths"]]
    assert [(p["path"], p["pathType"]) for p in paths] == [("/v1", "Prefix")]
    backend = paths[0]["backend"]["service"]
    assert backend == {"name": LEADER_SERVICE, "port": {"number": 8000}}


def test_given_certificate_arn_then_alb_listens_on_443_and_redirects_80(locked_app):
    notes = annotations(locked_app)
    ports = json.loads(notes["alb.ingress.kubernetes.io/listen-ports"])
    assert {"HTTP": 80} in ports and {"HTTPS": 443} in ports and len(ports) == 2
    assert notes["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
    assert notes["alb.ingress.kubernetes.io/certificate-arn"] == CERTIFICATE_ARN


def test_given_no_certificate_then_alb_listens_on_http_80_only(default_app):
    notes = annotations(default_app)
    assert json.loads(notes["alb.ingress.kubernetes.io/listen-ports"]) == [{"HTTP": 80}]
    assert "alb.ingress.kubernetes.io/ssl-redirect" not in notes
    assert "alb.ingress.kubernetes.io/certificate-arn" not in notes


# ---------------------------------------------------------------------------------------------
# API key
# ---------------------------------------------------------------------------------------------


def api_key_secret_id(app: Synthesized) -> str:
    secrets = app.resources(WORKLOAD, "AWS::SecretsManager::Secret")
    assert len(secrets) == 1
    return next(iter(secrets))


def test_given_default_config_then_the_api_key_is_generated_by_secrets_manager(default_app):
    secret = default_app.json(WORKLOAD)["Resources"][api_key_secret_id(default_app)]
    assert "GenerateSecretString" in secret["Properties"]
    assert "SecretString" not in secret["Properties"]


def test_given_default_config_then_leader_reads_the_key_from_the_synced_kubernetes_secret(
    default_app,
):
    leader_spec = pod_specs(default_app)["leader"]
    entry = env_by_name(vllm_container(leader_spec))["VLLM_API_KEY"]
    assert "value" not in entry
    ref = entry["valueFrom"]["secretKeyRef"]
    provider = default_app.kubernetes_object("SecretProviderClass", f"{NAME}-api-key")
    assert provider["metadata"]["namespace"] == NAMESPACE
    assert provider["spec"]["provider"] == "aws"
    assert provider["spec"]["parameters"]["usePodIdentity"] == "true"
    synced = {
        (s["secretName"], d["key"]) for s in provider["spec"]["secretObjects"] for d in s["data"]
    }
    assert (ref["name"], ref["key"]) in synced
    objects = yaml.safe_load(provider["spec"]["parameters"]["objects"])
    secret_ref = f"<{{'Ref': '{api_key_secret_id(default_app)}'}}>"
    assert [o["objectName"] for o in objects] == [secret_ref]
    # The driver only creates the Kubernetes Secret while a pod mounts the class.
    mounted = [
        v
        for v in leader_spec["volumes"]
        if v.get("csi", {}).get("volumeAttributes", {}).get("secretProviderClass")
        == provider["metadata"]["name"]
    ]
    assert mounted and mounted[0]["csi"]["driver"] == "secrets-store.csi.k8s.io"
    mounted_names = {m["name"] for m in vllm_container(leader_spec)["volumeMounts"]}
    assert mounted[0]["name"] in mounted_names


@pytest.mark.parametrize("variant", [{}, RAY, P5, LOCKED], ids=["default", "ray", "p5", "locked"])
def test_given_any_config_then_no_template_holds_a_secret_value(synth_variant, variant):
    app = synth_variant(**variant)
    for stack_id in STACK_IDS:
        template = app.json(stack_id)
        assert "SecretString" not in {key for key, _ in walk(template.get("Resources", {}))}
        assert "{{resolve:secretsmanager" not in json.dumps(template), stack_id


def test_given_default_config_then_vllm_service_account_may_read_the_key_via_pod_identity(
    default_app,
):
    resources = default_app.json(WORKLOAD)["Resources"]
    secret_ref = {"Ref": api_key_secret_id(default_app)}
    readers = set()
    for policy in default_app.resources(WORKLOAD, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            actions = [actions] if isinstance(actions, str) else actions
            targets = statement["Resource"]
            targets = targets if isinstance(targets, list) else [targets]
            if (
                statement["Effect"] == "Allow"
                and "secretsmanager:GetSecretValue" in actions
                and secret_ref in targets
            ):
                readers.update(role["Ref"] for role in policy["Properties"]["Roles"])
    assert readers, "no IAM policy in WorkloadStack grants GetSecretValue on the API key"
    associations = [
        r["Properties"]
        for r in default_app.resources(WORKLOAD, "AWS::EKS::PodIdentityAssociation").values()
        if r["Properties"]["Namespace"] == NAMESPACE and r["Properties"]["ServiceAccount"] == NAME
    ]
    assert len(associations) == 1
    role_id = associations[0]["RoleArn"]["Fn::GetAtt"][0]
    assert resources[role_id]["Type"] == "AWS::IAM::Role"
    assert role_id in readers
    for spec in pod_specs(default_app).values():
        assert spec["serviceAccountName"] == NAME


def test_given_no_allowed_cidrs_then_a_template_rule_refuses_deploy(default_app):
    rules = guard_rules(default_app)
    assert rules, "no CloudFormation Rule stops a deploy with the documentation CIDR"
    blocking = [
        rule
        for rule in rules.values()
        if "RuleCondition" not in rule
        and any(evaluate_rule_assertion(a["Assert"]) is False for a in rule["Assertions"])
    ]
    assert blocking, "the rule does not always fail"
    descriptions = " ".join(
        a.get("AssertDescription", "") for r in blocking for a in r["Assertions"]
    )
    assert "allowedCidrs" in descriptions


def test_given_allowed_cidrs_then_no_rule_blocks_deploy(locked_app):
    assert guard_rules(locked_app) == {}


# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------


def test_given_default_config_then_outputs_give_url_key_command_curls_and_kubeconfig(
    default_app,
):
    secret_ref = f"<{{'Ref': '{api_key_secret_id(default_app)}'}}>"
    assert output_text(default_app, "EndpointUrl").startswith("http://")
    key_command = output_text(default_app, "ApiKeyCommand")
    assert "aws secretsmanager get-secret-value" in key_command and secret_ref in key_command
    assert "/v1/completions" in output_text(default_app, "CurlCompletions")
    assert "/v1/chat/completions" in output_text(default_app, "CurlChatCompletions")
    assert "aws eks update-kubeconfig" in output_text(default_app, "KubeconfigCommand")


def test_given_certificate_arn_then_the_endpoint_url_is_https(locked_app):
    assert output_text(locked_app, "EndpointUrl").startswith("https://")
    assert "https://" in output_text(locked_app, "CurlCompletions")


SMALL_MODEL_ON_G5 = {
    "gpuInstanceType": "g5.xlarge",
    "gpuNodeCount": 1,
    "modelId": "Qwen/Qwen2.5-0.5B-Instruct",
    "modelWeightBytes": 988_097_824,
    "modelLayers": 24,
    "modelAttentionHeads": 14,
    "modelKvHeads": 2,
    "modelHeadDim": 64,
    "modelMaxContext": 32_768,
}


def test_given_an_instance_without_efa_then_no_efa_is_wired_or_requested(synth_variant):
    """GIVEN a small catalogued-by-keys model on g5.xlarge (no EFA)
    WHEN synthesized THEN the node keeps its default interface and pods ask for no EFA."""
    app = synth_variant(**SMALL_MODEL_ON_G5)
    (template,) = [
        r
        for r in app.json("VllmGpuNodeGroupStack")["Resources"].values()
        if r["Type"] == "AWS::EC2::LaunchTemplate"
    ]
    data = template["Properties"]["LaunchTemplateData"]
    assert "NetworkInterfaces" not in data
    assert len(data["SecurityGroupIds"]) == 2
    leader = app.kubernetes_object("LeaderWorkerSet")["spec"]["leaderWorkerTemplate"][
        "leaderTemplate"
    ]["spec"]["containers"][0]
    assert "vpc.amazonaws.com/efa" not in leader["resources"]["limits"]
    assert "FI_PROVIDER" not in {env["name"] for env in leader["env"]}
    assert int(leader["resources"]["requests"]["cpu"]) >= 1
    assert "--max-model-len" in leader["args"]
