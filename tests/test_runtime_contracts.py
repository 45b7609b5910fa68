"""Runtime contracts (issue 9): what the controllers and images do once the stack is deployed.

Synth, the CRD schemas and the chart values can all be fine while the workload never serves.
Each test below pins one behaviour of an upstream component; its docstring names the file
or document that states it, so nobody undoes it without reading that source first.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_workload_stack import (
    RAY,
    annotations,
    env_by_name,
    ingress,
    lws,
    output_text,
    pod_specs,
    release_id,
    vllm_container,
)

from config.errors import ConfigError
from config.settings import EMPTY_MEANS_NONE, KNOWN_KEYS, load_config_from_cli
from config.versions import VLLM_DLC_TAG

from conftest import PROJECT_ROOT, Synthesized, synthesize

WORKLOAD = "VllmWorkloadStack"
FSX_CSI = "aws-fsx-csi-driver"
SECRETS_DRIVER = "secrets-store-csi-driver"
SECRETS_PROVIDER = "secrets-store-csi-driver-provider-aws"


def objects_of_kind(app: Synthesized, kind: str) -> list[dict[str, Any]]:
    return [obj for obj in app.kubernetes_objects() if obj["kind"] == kind]


def vllm_containers(app: Synthesized) -> dict[str, dict[str, Any]]:
    return {role: vllm_container(spec) for role, spec in pod_specs(app).items()}


# ---------------------------------------------------------------------------------------------
# 1. LeaderWorkerSet owns the Service named like it
# ---------------------------------------------------------------------------------------------


def test_given_default_config_then_no_service_takes_the_leaderworkersets_name(default_app):
    """kubernetes-sigs/lws v0.10.0, pkg/utils/controller/controller_utils.go
    (CreateHeadlessServiceIfNotExists: gets the Service named lws.Name and creates the
    headless one, clusterIP None, only if that name is free), pkg/controllers/
    leaderworkerset_controller.go (both StatefulSets: WithServiceName(lws.Name)) and
    pkg/utils/pod/pod_utils.go (LWS_LEADER_ADDRESS = <lws>-<group>.<subdomain>.<namespace>,
    a record only a headless Service publishes). A Service of ours with the LWS's name means
    workers never resolve --master-addr."""
    owner = lws(default_app)["metadata"]
    services = objects_of_kind(default_app, "Service")
    assert services, "the Ingress needs a leader Service"
    for service in services:
        meta = service["metadata"]
        assert (meta["namespace"], meta["name"]) != (owner["namespace"], owner["name"])
    backend = ingress(default_app)["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    (leader,) = [s for s in services if s["metadata"]["name"] == backend["name"]]
    assert leader["spec"]["selector"]["leaderworkerset.sigs.k8s.io/worker-index"] == "0"


def test_given_any_executor_then_pods_get_no_service_environment_variables(
    default_app, synth_variant
):
    """vllm-project/vllm docs/configuration/env_vars.md ("do not name the service as vllm":
    Kubernetes sets <SERVICE>_PORT=tcp://... for every Service in the namespace) and
    vllm/envs.py get_vllm_port (a URI in VLLM_PORT is an error). Services named vllm* turn
    into VLLM_* variables in every pod unless service links are off."""
    for app in (default_app, synth_variant(**RAY)):
        for role, spec in pod_specs(app).items():
            assert spec.get("enableServiceLinks") is False, role


# ---------------------------------------------------------------------------------------------
# 2. Secrets Store CSI driver passes the pod's tokens to the AWS provider
# ---------------------------------------------------------------------------------------------


def test_given_default_config_then_the_csi_driver_requests_tokens_for_sts_and_pod_identity(
    default_app,
):
    """aws/secrets-store-csi-driver-provider-aws README, "Separate CSI Driver Installation":
    a driver installed apart from the provider chart needs tokenRequests with audiences
    sts.amazonaws.com and pods.eks.amazonaws.com. kubernetes-sigs/secrets-store-csi-driver
    v1.6.0 charts/secrets-store-csi-driver/values.yaml (`tokenRequests: []`) and
    templates/csidriver.yaml (copied into the CSIDriver's spec.tokenRequests)."""
    releases = default_app.helm_releases()
    assert releases[SECRETS_PROVIDER]["Values"]["secrets-store-csi-driver"]["install"] is False
    requests = releases[SECRETS_DRIVER]["Values"].get("tokenRequests", [])
    assert {r["audience"] for r in requests} >= {"sts.amazonaws.com", "pods.eks.amazonaws.com"}


def test_given_default_config_then_the_aws_provider_chart_is_a_version_the_index_lists(
    default_app,
):
    """aws/secrets-store-csi-driver-provider-aws, branch gh-pages, index.yaml (the Helm
    repository https://aws.github.io/secrets-store-csi-driver-provider-aws), read 2026-11-30:
    3.1.1 is its newest version; 3.2.0 is not in it, so `helm pull` would fail at deploy."""
    assert default_app.helm_releases()[SECRETS_PROVIDER]["Version"] == "3.1.1"


# ---------------------------------------------------------------------------------------------
# 3. and 4. Timeouts that must agree
# ---------------------------------------------------------------------------------------------


def test_given_default_config_then_vllm_keeps_connections_open_longer_than_the_alb(default_app):
    """vllm-project/vllm vllm/envs.py: VLLM_HTTP_TIMEOUT_KEEP_ALIVE defaults to 5 s and is
    uvicorn's timeout_keep_alive (vllm/entrypoints/openai/api_server.py). ELB user guide, "Edit
    attributes for your Application Load Balancer", Connection idle timeout: configure the
    application's idle timeout larger than the load balancer's, or it may send a request on a
    connection the target closed and answer 502."""
    attributes = annotations(default_app)["alb.ingress.kubernetes.io/load-balancer-attributes"]
    pairs = dict(item.strip().split("=", 1) for item in attributes.split(","))
    idle_timeout = int(pairs["idle_timeout.timeout_seconds"])
    env = env_by_name(vllm_containers(default_app)["leader"])
    assert int(env["VLLM_HTTP_TIMEOUT_KEEP_ALIVE"]["value"]) > idle_timeout


def test_given_default_config_then_vllms_engine_wait_is_no_shorter_than_the_startup_probe(
    default_app,
):
    """vllm-project/vllm vllm/envs.py: VLLM_ENGINE_READY_TIMEOUT_S defaults to 600 s, and
    vllm/v1/engine/core_client.py raises TimeoutError ("often caused by slow weight loading")
    when the engine cores are not ready by then. Read in current vLLM sources, not at the
    v0.27.1 tag (too large to fetch here). The startup probe allows far more, so without this
    vLLM itself would end a slow multi-node start first."""
    containers = vllm_containers(default_app)
    probe = containers["leader"]["startupProbe"]
    budget = probe["periodSeconds"] * probe["failureThreshold"]
    assert budget >= 3600
    for role, container in containers.items():
        env = env_by_name(container)
        assert int(env["VLLM_ENGINE_READY_TIMEOUT_S"]["value"]) >= budget, role


def test_given_default_config_then_a_busy_leader_stays_behind_the_alb(default_app):
    """Kubernetes API reference, Probe: timeoutSeconds "Defaults to 1 second".
    kubernetes-sigs/aws-load-balancer-controller pkg/backend/endpoint_resolver.go: for
    target-type ip only endpoints whose pod is ready become targets, so a not-ready leader
    is deregistered and, with one replica, the ALB has nothing to send requests to. A
    saturated vLLM misses a 1 s /health deadline (llm-d/llm-d-benchmark PR 1734: "a
    saturated vLLM only had to miss three 1s /health checks ... to be marked NotReady";
    scaleapi/llm-engine PR 255: vLLM "sometimes can't respond within 1s during high load").
    Readiness gets the same answer time as liveness, which never killed a server for it."""
    leader = vllm_containers(default_app)["leader"]
    readiness, liveness = leader["readinessProbe"], leader["livenessProbe"]
    assert readiness.get("timeoutSeconds", 1) >= 5
    assert readiness.get("timeoutSeconds", 1) == liveness.get("timeoutSeconds", 1)


# ---------------------------------------------------------------------------------------------
# 5. Ray is not in the default image
# ---------------------------------------------------------------------------------------------


def test_given_ray_without_an_image_when_synthesized_then_one_line_names_both_keys():
    """aws/deep-learning-containers docker/vllm/Dockerfile: the vLLM DLC is
    vllm/vllm-openai:v0.27.1 plus botocore, CVE patches and audio packages; no Ray. vLLM no
    longer installs Ray by default, so `--distributed-executor-backend ray` cannot start."""
    with pytest.raises(ConfigError) as raised:
        synthesize({"distributedExecutor": "ray"})
    lines = str(raised.value).splitlines()
    assert len(lines) == 1
    assert "distributedExecutor" in lines[0] and "vllmImage" in lines[0]
    assert "needs an image with Ray" in lines[0]


def _fake_bin(tmp_path: Path, scripts: dict[str, str]) -> dict[str, str]:
    """A PATH with stand-ins that log each call; everything else comes from /usr/bin, /bin."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(f'#!/bin/bash\necho "{name} $*" >> "$CALLS"\n{body}\n')
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "CALLS": str(tmp_path / "calls.log"),
        "STATE": str(tmp_path),
        "LWS_GROUP_SIZE": "2",
        "LWS_LEADER_ADDRESS": "vllm-0.vllm.vllm",
        "GPUS_PER_NODE": "8",
    }


def _run(container: dict[str, Any], env: dict[str, str]) -> list[str]:
    result = subprocess.run(
        [*container["command"], *container.get("args", [])],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return Path(env["CALLS"]).read_text().splitlines()


# A stand-in's body starts with this: $n is how many times it has been called.
COUNT = 'c="$STATE/${0##*/}.n"; n=$(( $(cat "$c" 2>/dev/null || echo 0) + 1 )); echo $n > "$c"'


def test_given_ray_when_the_head_is_late_then_the_worker_retries_ray_start(synth_variant, tmp_path):
    """vllm-project/vllm examples/online_serving/multi-node-serving.sh (the script LWS's vLLM
    example runs): a worker retries `ray start --address=<head> --block` until the head
    answers, since the leader pod may start later. Runs the worker container's command, as
    synthesized, against a `ray` that refuses twice."""
    ray = f"{COUNT}\n[[ $n -gt 2 ]]"
    env = _fake_bin(tmp_path, {"ray": ray, "sleep": "true"})
    calls = _run(vllm_containers(synth_variant(**RAY))["worker"], env)
    joins = [c for c in calls if c.startswith("ray start --address=vllm-0.vllm.vllm:6379")]
    assert len(joins) == 3 and all("--block" in c for c in joins)


def test_given_ray_then_the_leader_serves_only_once_every_node_has_joined(synth_variant, tmp_path):
    """vllm-project/vllm examples/online_serving/multi-node-serving.sh: the leader starts the
    head, then polls the alive nodes (ray.nodes() "Alive") until the whole group has joined;
    only then may `vllm serve` place its workers. Runs the leader container's command, as
    synthesized, while the node count grows 1, 1, 2."""
    python3 = f"{COUNT}\n[[ $n -ge 3 ]] && echo 2 || echo 1"
    env = _fake_bin(tmp_path, {"ray": "true", "python3": python3, "vllm": "true", "sleep": "true"})
    leader = vllm_containers(synth_variant(**RAY))["leader"]
    calls = _run(leader, env)
    assert calls[0].startswith("ray start --head")
    serve = [i for i, c in enumerate(calls) if c.startswith("vllm ")]
    assert serve == [len(calls) - 1], calls
    assert sum(c.startswith("python3 ") for c in calls) == 3
    assert calls[-1] == "vllm serve " + " ".join(leader["args"])


# ---------------------------------------------------------------------------------------------
# 6. Destroy removes what mounts a CSI volume before the CSI drivers
# ---------------------------------------------------------------------------------------------


def test_given_hf_token_then_every_csi_mounting_object_depends_on_the_drivers_it_mounts(
    custom_app,
):
    """CloudFormation Template Reference, "DependsOn attribute": it declares resources that
    must be created or deleted in a specific order, the dependent one deleted first.
    Kubernetes "Volumes" (csi): the kubelet unmounts through the driver's node plugin, so a
    pod whose driver went first hangs in Terminating. The PV/PVC
    and the staging Job need the FSx driver; the LWS and a Job with a Hub token also mount
    through the Secrets Store driver and its AWS provider."""
    app = custom_app
    fsx = release_id(app, FSX_CSI)
    secrets = {release_id(app, SECRETS_DRIVER), release_id(app, SECRETS_PROVIDER)}
    claim = app.kubernetes_object("PersistentVolumeClaim")["metadata"]["name"]
    volume = app.manifest_logical_id("PersistentVolumeClaim", claim)
    job = app.staging_job()
    expected = {
        volume: {fsx},
        app.manifest_logical_id("Job", job["metadata"]["name"]): {fsx, *secrets},
        app.manifest_logical_id("LeaderWorkerSet", "vllm"): {fsx, *secrets},
    }
    for logical_id, drivers in expected.items():
        missing = drivers - set(app.depends_on(WORKLOAD, logical_id))
        assert not missing, f"{logical_id} does not depend directly on {missing}"


# ---------------------------------------------------------------------------------------------
# 7. Jobs are immutable
# ---------------------------------------------------------------------------------------------


def test_given_two_pod_templates_for_one_model_then_the_staging_jobs_are_named_apart(
    default_app, custom_app, synth_variant
):
    """kubernetes/kubernetes pkg/apis/batch/validation/validation.go, ValidateJobSpecUpdate and
    validatePodTemplateUpdate: a Job's spec.template is immutable once created (only some
    scheduling directives of a suspended Job may change), so an update that changes the image, the
    script, the pinned packages or the env must create a Job under a new name. The name ends
    in a hash of the whole pod template as synthesized, and a setting the Job does not read
    leaves the name alone (no needless re-run)."""
    default_job = default_app.staging_job()
    custom_job = custom_app.staging_job()
    p5_job = synth_variant(gpuInstanceType="p5.48xlarge").staging_job()
    assert default_job["spec"]["template"] != custom_job["spec"]["template"]
    assert default_job["metadata"]["name"] != custom_job["metadata"]["name"]
    assert p5_job["spec"]["template"] == default_job["spec"]["template"]
    assert p5_job["metadata"]["name"] == default_job["metadata"]["name"]
    for job in (default_job, custom_job):
        assert re.fullmatch(r"stage-[a-z0-9-]+-[0-9a-f]{10}", job["metadata"]["name"])
        assert len(job["metadata"]["name"]) <= 63


# ---------------------------------------------------------------------------------------------
# 8. The DLC by its full tag
# ---------------------------------------------------------------------------------------------


def test_given_default_image_then_the_dlc_is_pinned_by_its_full_tag(default_app):
    """aws/deep-learning-containers docs/src/data/vllm/0.27.1-gpu-ec2.yml: the release is
    0.27.1-gpu-py312-cu130-ubuntu22.04-ec2; 0.27.1-gpu-py312-ec2 and 0.27-gpu-py312-ec2 are
    aliases moved to every rebuild."""
    assert VLLM_DLC_TAG == "0.27.1-gpu-py312-cu130-ubuntu22.04-ec2"
    for role, spec in pod_specs(default_app).items():
        for container in [*spec["containers"], *spec.get("initContainers", [])]:
            assert container["image"].endswith(f"/vllm:{VLLM_DLC_TAG}"), role


# ---------------------------------------------------------------------------------------------
# 9. and 10. Outputs a client uses as they are
# ---------------------------------------------------------------------------------------------


def test_given_default_config_then_endpoint_url_is_an_openai_base_url(default_app):
    """openai/openai-python src/openai/_client.py: the default base_url is
    https://api.openai.com/v1, and request paths (chat/completions, ...) are appended to it.
    The ready curl commands name each path once."""
    url = output_text(default_app, "EndpointUrl")
    assert url.startswith("http") and url.endswith("/v1")
    for output, path in (("CurlCompletions", "completions"), ("CurlChatCompletions", "chat/")):
        command = output_text(default_app, output)
        assert command.count("/v1/") == 1 and f"{url}/{path}" in command


def test_given_default_model_then_the_chat_example_leaves_room_to_finish_thinking(default_app):
    """deepseek-ai/DeepSeek-R1-Distill-Qwen-32B model card (Hugging Face), usage
    recommendations: the model answers after a <think>...</think> block of its own, often
    hundreds of tokens; 256 tokens end most replies before the answer."""
    command = output_text(default_app, "CurlChatCompletions")
    body = json.loads(command.rsplit("-d '", 1)[1].rstrip("'"))
    assert body["max_tokens"] >= 1024


# ---------------------------------------------------------------------------------------------
# 11. What vLLM's API key guards
# ---------------------------------------------------------------------------------------------

# vLLM's AuthenticationMiddleware PUBLIC_ENDPOINTS: never guarded by the key.
VLLM_PUBLIC_PATHS = ("/health", "/ping", "/load", "/version", "/metrics", "/docs", "/redoc")


def test_given_any_config_then_no_path_the_api_key_leaves_open_is_routed(default_app):
    """vllm-project/vllm AuthenticationMiddleware (PUBLIC_ENDPOINTS: /health, /ping, /load,
    /version, /metrics, the docs) and docs/usage/security.md ("API Key Authentication
    Limitations": older releases guard only /v1 and a few prefixes). The Ingress routes /v1
    alone, and its comment no longer claims the key guards /v1 only."""
    paths = [p["path"] for r in ingress(default_app)["spec"]["rules"] for p in r["http"]["paths"]]
    assert paths == ["/v1"]
    assert not any(path.startswith(public) for path in paths for public in VLLM_PUBLIC_PATHS)
    text = (PROJECT_ROOT / "manifests" / "ingress.yaml").read_text()
    assert "guards /v1 alone" not in text


# ---------------------------------------------------------------------------------------------
# 12. An empty value is not "use the default"
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["modelId", "gpuInstanceType", "kubernetesVersion", "gpuNodeCount", "endpointScheme"]
)
def test_given_an_empty_value_for_a_key_without_none_then_the_error_names_it(key):
    """aws-cdk CLI, parseStringContextListToObject: `-c key=` splits on the first "=" and
    passes the empty string as the value; it is not the same as leaving the key out."""
    assert key not in EMPTY_MEANS_NONE
    with pytest.raises(ConfigError) as raised:
        load_config_from_cli(["-c", f"{key}="])
    (problem,) = raised.value.problems
    assert problem.key == key and "empty" in problem.message


@pytest.mark.parametrize("key", sorted(KNOWN_KEYS))
def test_given_any_setting_given_empty_then_it_means_none_or_one_error_names_it(key):
    """aws-cdk CLI, parseStringContextListToObject: every key, not a sample, either accepts
    `-c key=` as "none" (and is listed in EMPTY_MEANS_NONE) or refuses it naming the key."""
    if key in EMPTY_MEANS_NONE:
        load_config_from_cli(["-c", f"{key}="])
        return
    with pytest.raises(ConfigError) as raised:
        load_config_from_cli(["-c", f"{key}="])
    assert [problem.key for problem in raised.value.problems] == [key]


def test_given_an_empty_value_where_none_is_valid_then_it_means_none():
    """aws-cdk CLI, parseStringContextListToObject (as above): the empty value is how a user
    clears a setting from cdk.json on the command line, so it stays "none" where none is a
    valid choice, and only there."""
    assert EMPTY_MEANS_NONE <= KNOWN_KEYS
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert all(f"`{key}`" in readme for key in EMPTY_MEANS_NONE), "README lists them"
    config = load_config_from_cli(
        ["-c", "certificateArn=", "-c", "hfTokenSecretName=", "-c", "vllmImage="]
    )
    assert (config.certificate_arn, config.hf_token_secret_name, config.vllm_image) == (
        None,
        None,
        None,
    )


# ---------------------------------------------------------------------------------------------
# 13. The multi-node `mp` command line
# ---------------------------------------------------------------------------------------------

# What LWS injects into every container and init container of a group's pods.
LWS_INJECTED = {"LWS_LEADER_ADDRESS", "LWS_GROUP_SIZE", "LWS_WORKER_INDEX"}
# `vllm serve` options the mp pods pass, as vLLM registers them.
VLLM_SERVE_OPTIONS = {
    "--served-model-name",
    "--port",
    "--download-dir",
    "--tensor-parallel-size",
    "--pipeline-parallel-size",
    "--gpu-memory-utilization",
    "--max-model-len",
    "--distributed-executor-backend",
    "--nnodes",
    "--node-rank",
    "--master-addr",
    "--master-port",
    "--headless",
}


@pytest.mark.parametrize("role", ["leader", "worker"])
def test_given_mp_then_every_variable_the_command_line_names_is_one_the_pod_has(default_app, role):
    """Kubernetes, "Define a Command and Arguments for a Container": $(VAR) in command and args
    expands only from the container's environment; a reference to anything else stays as it
    is, and vLLM would get the text "$(LWS_WORKER_INDEX)" as a node rank. kubernetes-sigs/lws
    v0.10.0 api/leaderworkerset/v1/leaderworkerset_types.go names LWS_LEADER_ADDRESS,
    LWS_GROUP_SIZE and LWS_WORKER_INDEX; pkg/utils/pod/pod_utils.go AddLWSVariables puts them
    first in every container's env (so $(VAR) resolves), init containers included."""
    container = vllm_container(pod_specs(default_app)[role])
    named = set(re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", " ".join(container["args"])))
    assert named, "the mp command line takes its rank and rendezvous from LWS"
    assert named <= LWS_INJECTED | set(env_by_name(container))


def test_given_mp_then_the_pods_pass_only_options_vllm_serve_parses(default_app):
    """vllm-project/vllm vllm/engine/arg_utils.py registers --master-addr, --master-port,
    --nnodes and --node-rank in ParallelConfig's group (vllm/config/parallel.py: "for
    multi-node distributed inference when distributed_executor_backend is mp");
    vllm/entrypoints/cli/serve.py runs a node with --headless and node_rank_within_dp > 0 as a
    MultiprocExecutor joining master_addr:master_port, with no API server; docs/serving/
    parallelism_scaling.md (vLLM PR 30509) shows exactly this pair of command lines. vLLM
    rejects an unknown option, so one misspelt flag keeps the whole group from starting."""
    for role, spec in pod_specs(default_app).items():
        options = {arg for arg in vllm_container(spec)["args"] if arg.startswith("--")}
        assert options <= VLLM_SERVE_OPTIONS, (role, options - VLLM_SERVE_OPTIONS)
        assert ("--headless" in options) == (role == "worker")


# ---------------------------------------------------------------------------------------------
# Found in review: the LWS webhook serves later than the LWS controller reports Ready
# ---------------------------------------------------------------------------------------------

LWS_WEBHOOK_HOST = "lws-webhook-service.lws-system.svc"
LWS_WEBHOOK_PATHS = {
    "/mutate-leaderworkerset-x-k8s-io-v1-leaderworkerset",
    "/validate-leaderworkerset-x-k8s-io-v1-leaderworkerset",
}


def webhook_check(app: Synthesized) -> dict[str, Any]:
    (job,) = [
        obj
        for obj in objects_of_kind(app, "Job")
        if obj["metadata"]["labels"]["app.kubernetes.io/name"] == "webhook-ready"
    ]
    return job


def test_given_default_config_then_the_leaderworkerset_waits_until_the_lws_webhook_serves(
    default_app,
):
    """kubernetes-sigs/lws v0.10.0 cmd/main.go: the manager's readyz check is healthz.Ping and
    the webhooks are set up only after `certsReady` (the generated certificates are mounted);
    charts/lws/templates/webhook/webhook.yaml: LeaderWorkerSet CREATE goes through
    lws-webhook-service at these two paths with failurePolicy Fail. aws-cdk-lib aws-eks-v2
    kubectl-handler apply/__init__.py retries only 'i/o timeout'. So Helm's wait is not enough:
    a Job probes both paths, a KubernetesObjectValue waits for its .status.succeeded, and the
    LeaderWorkerSet depends on that value."""
    job = webhook_check(default_app)
    assert job["metadata"]["namespace"] == "lws-system"
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["WEBHOOK_HOST"] == LWS_WEBHOOK_HOST
    assert set(env["WEBHOOK_PATHS"].split()) == LWS_WEBHOOK_PATHS
    values = default_app.resources(WORKLOAD, "Custom::AWSCDK-EKS-KubernetesObjectValue")
    (value_id, value) = next(
        (logical_id, resource)
        for logical_id, resource in values.items()
        if resource["Properties"]["ObjectName"] == job["metadata"]["name"]
    )
    assert value["Properties"]["ObjectType"] == "job"
    assert value["Properties"]["JsonPath"] == ".status.succeeded"
    # The Job gives up first, so a webhook that never serves fails with its logs to read.
    assert job["spec"]["activeDeadlineSeconds"] < int(value["Properties"]["TimeoutSeconds"])
    assert int(value["Properties"]["TimeoutSeconds"]) < 15 * 60
    job_id = default_app.manifest_logical_id("Job", job["metadata"]["name"])
    assert job_id in default_app.depends_on(WORKLOAD, value_id)
    lws_id = default_app.manifest_logical_id("LeaderWorkerSet", "vllm")
    assert value_id in default_app.depends_on(WORKLOAD, lws_id)


@pytest.fixture
def webhook_server(tmp_path):
    """An HTTPS server on 127.0.0.1 that answers 404 (no handler yet) twice, then 200."""
    import datetime
    import http.server
    import ssl
    import threading

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webhook.test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    answers = {"left_404": 2, "paths": []}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            answers["paths"].append(self.path)
            status = 404 if answers["left_404"] > 0 else 200
            answers["left_404"] -= 1
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}", answers
    server.shutdown()


def test_given_a_webhook_that_404s_first_when_checked_then_the_job_waits_then_succeeds(
    webhook_server,
):
    """The check script the Job runs (manifests/wait-for-webhook.py), against a real TLS server:
    404 means no handler is registered yet (Go net/http ServeMux, as controller-runtime's
    webhook server uses), so it keeps waiting; once every path answers otherwise it exits 0."""
    host, answers = webhook_server
    environment = {
        **os.environ,
        "WEBHOOK_HOST": host,
        "WEBHOOK_PATHS": " ".join(sorted(LWS_WEBHOOK_PATHS)),
        "WEBHOOK_POLL_SECONDS": "0.1",
    }
    script = (PROJECT_ROOT / "manifests" / "wait-for-webhook.py").read_text()
    result = subprocess.run(
        ["python3", "-c", script], env=environment, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert "waiting for" in result.stdout and "serves every webhook path" in result.stdout
    assert set(answers["paths"]) == LWS_WEBHOOK_PATHS
