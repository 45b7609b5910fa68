"""`make nccl-test`: the objects it renders, the lines it parses, and the run's order.

Indexed Jobs give each pod the host name `<job>-<index>` and, with `subdomain` set to a
headless Service, a DNS name; the index is in JOB_COMPLETION_INDEX and the pod label
`batch.kubernetes.io/job-completion-index` (Kubernetes docs, "Jobs: completion mode").
Bus bandwidth is nccl-tests' definition (NVIDIA/nccl-tests doc/PERFORMANCE.md).
The rank-0 log in tests/data/nccl-test/ is illustrative output of manifests/nccl-allreduce.py
with NCCL lines in the aws-ofi-nccl format (see tests/data/nccl/SOURCES.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import kubernetes_validate
import pytest

from config.settings import build_config
from ops import nccl_test
from ops.report import Status

DATA = Path(__file__).resolve().parent / "data"
IMAGE = "763104351884.dkr.ecr.us-west-2.amazonaws.com/vllm:0.27.1-gpu-py312-ec2"


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    return nccl_test.render(build_config({}), image=IMAGE, run_id="t1")


def job_container(objects: list[dict]) -> dict:
    return objects[-1]["spec"]["template"]["spec"]["containers"][0]


def test_given_default_config_when_rendered_then_every_object_valid_for_1_35_strict(objects):
    assert [obj["kind"] for obj in objects] == ["ConfigMap", "Service", "Job"]
    for obj in objects:
        kubernetes_validate.validate(obj, "1.35", strict=True)


def test_given_default_config_when_rendered_then_16_ranks_over_2_pods_of_8_gpus(objects):
    job = objects[-1]["spec"]
    assert job["completionMode"] == "Indexed"
    assert job["completions"] == job["parallelism"] == 2
    command = job_container(objects)["command"]
    assert command[0] == "torchrun"
    assert "--nnodes=2" in command and "--nproc-per-node=8" in command
    assert "--node-rank=$(JOB_COMPLETION_INDEX)" in command
    assert command[-1] == "/scripts/allreduce.py"


def test_given_default_config_when_rendered_then_node_0_is_reachable_by_dns(objects):
    config_map, service, job = objects
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == {"batch.kubernetes.io/job-name": "nccl-test-t1"}
    assert job["spec"]["template"]["spec"]["subdomain"] == service["metadata"]["name"]
    assert "--master-addr=nccl-test-t1-0.nccl-test-t1" in job_container(objects)["command"]
    assert "dist.all_reduce" in config_map["data"]["allreduce.py"]


def test_given_p4d_when_rendered_then_pods_take_all_gpus_and_efa_and_log_the_network(objects):
    container = job_container(objects)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 8
    assert container["resources"]["limits"]["vpc.amazonaws.com/efa"] == 4
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["FI_PROVIDER"] == "efa"
    assert env["NCCL_DEBUG"] == "INFO"
    assert container["image"] == IMAGE
    assert not {"NCCL_P2P_DISABLE", "NCCL_SHM_DISABLE", "NCCL_NET_GDR_LEVEL"} & set(env)


def test_given_rank0_output_when_parsed_then_six_sizes_from_1_mib_to_1_gib():
    samples = nccl_test.parse_samples((DATA / "nccl-test" / "rank0.log").read_text())
    assert [sample.size for sample in samples] == list(nccl_test.SIZES)
    assert samples[-1].busbw_gbps == 45.09 and samples[-1].ranks == 16


def test_given_p4d_samples_when_compared_then_best_is_shared_of_400_gbit_line_rate():
    samples = nccl_test.parse_samples((DATA / "nccl-test" / "rank0.log").read_text())
    checks = list(nccl_test.compare(samples, build_config({}).instance))
    assert len(checks) == 7
    assert (
        checks[0].line()
        == "PASS all-reduce    1 MiB over 16 ranks: bus bandwidth   10.78 GB/s (182 us)"
    )
    last = checks[-1]
    assert last.status is Status.PASS
    assert "best 45.1 GB/s at 1 GiB = 90% of p4d.24xlarge's EFA line rate 50 GB/s" in last.detail
    assert "(4 interfaces, 400 Gbit/s)" in last.detail


def test_given_socket_speed_samples_when_compared_then_warn():
    slow = [nccl_test.Sample(1024**3, 16, 500000.0, 3.2)]
    assert list(nccl_test.compare(slow, build_config({}).instance))[-1].status is Status.WARN


def fake_lws(cluster, replicas: int = 1) -> None:
    container = {"image": IMAGE}
    template = {"spec": {"containers": [container]}}
    cluster.answer(
        "lws.json",
        json.dumps(
            {"spec": {"replicas": replicas, "leaderWorkerTemplate": {"workerTemplate": template}}}
        ),
    )


def test_given_a_fake_cluster_when_run_then_vllm_scaled_to_0_test_run_and_restored(
    fake_cluster, capsys
):
    fake_lws(fake_cluster)
    fake_cluster.answer("job.json", json.dumps({"status": {"succeeded": 2}}))
    fake_cluster.pods(("nccl-test-t1-0", 0))
    fake_cluster.answer("nccl-test-t1-0.log", (DATA / "nccl-test" / "rank0.log").read_text())
    assert nccl_test.main(["--kubeconfig", "k", "--run-id", "t1"]) == 0
    out = capsys.readouterr().out
    verbs = [call[4] for call in fake_cluster.calls()]
    assert verbs[:3] == ["get", "scale", "apply"]
    assert verbs[-1] == "scale"
    scales = [call[5:] for call in fake_cluster.calls() if call[4] == "scale"]
    assert scales == [
        ["leaderworkerset", "vllm", "--replicas=0"],
        ["leaderworkerset", "vllm", "--replicas=1"],
    ]
    assert "PASS NCCL network of pod nccl-test-t1-0" in out
    assert "90% of p4d.24xlarge's EFA line rate" in out
    assert out.splitlines()[-1].startswith("PASS vLLM restored: 1 replica(s)")


def test_given_the_job_fails_when_run_then_fail_and_vllm_still_restored(fake_cluster, capsys):
    fake_lws(fake_cluster, replicas=2)
    fake_cluster.answer("job.json", json.dumps({"status": {"failed": 1}}))
    fake_cluster.pods()
    assert nccl_test.main(["--kubeconfig", "k", "--run-id", "t1"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("FAIL Job nccl-test-t1: the Job failed") for line in lines)
    assert fake_cluster.calls()[-1][4:] == ["scale", "leaderworkerset", "vllm", "--replicas=2"]


def test_given_a_bad_setting_when_run_then_exit_2(capsys):
    assert nccl_test.main(["-c", "gpuNodeCount=zero"]) == 2
    assert "gpuNodeCount=zero" in capsys.readouterr().err
