"""`make bench`: the Job it renders, the result it parses, and one run on a fake cluster.

Flags and result keys are vllm-project/vllm `vllm/benchmarks/serve.py` (`add_cli_args`:
--base-url, --endpoint, --model, --tokenizer, --max-concurrency, --num-prompts,
--percentile-metrics, --metric-percentiles, --save-result, --result-dir, --result-filename;
the random dataset's --random-input-len/--random-output-len; result keys
`request_throughput`, `output_throughput`, `p<N>_ttft_ms`, `p<N>_itl_ms`), and the Bearer
token comes from OPENAI_API_KEY (`vllm/benchmarks/lib/endpoint_request_func.py`).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import kubernetes_validate
import pytest

from ops import bench, kube
from ops.report import Status

DATA = Path(__file__).resolve().parent / "data" / "bench"
IMAGE = "763104351884.dkr.ecr.us-west-2.amazonaws.com/vllm:0.27.1-gpu-py312-ec2"
MODEL_DIR = "/fsx/models/deepseek-ai-deepseek-r1-distill-qwen-32b-5f6c1e0a"
SERVED_VOLUME = {
    "name": "model-store",
    "persistentVolumeClaim": {"claimName": "model-store-0123abcd"},
}
SERVED = bench.Served(
    IMAGE, MODEL_DIR, "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", 1, "model-store-0123abcd"
)


def recorded() -> dict:
    return json.loads((DATA / "concurrency-8.json").read_text())


def env(job: dict) -> dict[str, str]:
    container = job["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item.get("value") for item in container["env"]}


def bench_command(job: dict) -> list[str]:
    """The `vllm bench serve` words of the script, with its variables filled from env."""
    script = job["spec"]["template"]["spec"]["containers"][0]["command"][2]
    values = env(job)
    start = script.index("\n  vllm bench serve") + 3
    text = script[start : script.index("\n  echo", start)].replace("\\\n", " ")
    for name, value in values.items():
        text = text.replace(f'"${name}"', shlex.quote(value or ""))
    return shlex.split(text)


def flag(words: list[str], name: str) -> str:
    return words[words.index(name) + 1]


def test_given_defaults_when_job_rendered_then_valid_for_kubernetes_1_35_strict():
    job = bench.render_job(SERVED, run_id="20261130-221530")
    kubernetes_validate.validate(job, "1.35", strict=True)
    assert job["metadata"]["name"] == "vllm-bench-20261130-221530"
    assert job["spec"]["backoffLimit"] == 0


def test_given_defaults_when_job_rendered_then_it_runs_the_issue_s_load_shape():
    job = bench.render_job(SERVED, run_id="r1")
    values = env(job)
    words = bench_command(job)
    assert words[:3] == ["vllm", "bench", "serve"]
    assert flag(words, "--dataset-name") == "random"
    assert flag(words, "--random-input-len") == "1024"
    assert flag(words, "--random-output-len") == "256"
    assert values["CONCURRENCIES"] == "1 8 32"
    assert flag(words, "--percentile-metrics") == "ttft,tpot,itl"
    assert flag(words, "--metric-percentiles") == "50,99"
    assert "--save-result" in words


def test_given_defaults_when_job_rendered_then_it_targets_the_leader_service_inside_cluster():
    job = bench.render_job(SERVED, run_id="r1")
    words = bench_command(job)
    assert flag(words, "--base-url") == "http://vllm-leader.vllm.svc.cluster.local:8000"
    assert flag(words, "--endpoint") == "/v1/completions"
    assert flag(words, "--model") == SERVED.served_model_name
    # Tokenizer from FSx: the pod never reaches the Hub.
    assert flag(words, "--tokenizer") == MODEL_DIR
    assert env(job)["HF_HUB_OFFLINE"] == "1"


def test_given_defaults_when_job_rendered_then_results_go_to_fsx_beside_the_models():
    job = bench.render_job(SERVED, run_id="r1")
    spec = job["spec"]["template"]["spec"]
    assert env(job)["RESULT_DIR"] == f"/fsx/bench/{Path(MODEL_DIR).name}/r1"
    assert spec["volumes"] == [
        {"name": "model-store", "persistentVolumeClaim": {"claimName": "model-store-0123abcd"}}
    ]
    assert spec["containers"][0]["volumeMounts"][0]["mountPath"] == "/fsx"


def test_given_defaults_when_job_rendered_then_key_from_the_secret_and_no_gpu_requested():
    container = bench.render_job(SERVED, run_id="r1")["spec"]["template"]["spec"]["containers"][0]
    key = next(item for item in container["env"] if item["name"] == "OPENAI_API_KEY")
    assert key["valueFrom"]["secretKeyRef"] == {"name": "vllm-api-key", "key": "api-key"}
    assert "nvidia.com/gpu" not in container["resources"]["requests"]
    # The DLC's entrypoint is `vllm serve`: the command must be set.
    assert container["command"][:2] == ["/bin/bash", "-c"]
    assert container["image"] == IMAGE


def test_given_workload_constants_then_bench_uses_the_same_names(default_app):
    """ops/ never imports the CDK; its copies of the workload's names must match the synth."""
    from constructs.cluster_controllers import GPU_NODE_SELECTOR, GPU_TOLERATIONS
    from constructs.model_staging import FSX_MOUNT_PATH
    from constructs.vllm_service import API_KEY_KEY, PORT

    assert (bench.PORT, bench.API_KEY_KEY, bench.FSX_MOUNT_PATH) == (
        PORT,
        API_KEY_KEY,
        FSX_MOUNT_PATH,
    )
    assert kube.GPU_NODE_SELECTOR == GPU_NODE_SELECTOR
    assert kube.GPU_TOLERATIONS == GPU_TOLERATIONS
    service = default_app.kubernetes_object("Service", bench.LEADER_SERVICE)
    assert service["metadata"]["namespace"] == kube.NAMESPACE
    assert service["spec"]["ports"][0]["port"] == bench.PORT
    lws = default_app.kubernetes_object("LeaderWorkerSet", bench.LWS_NAME)
    leader = lws["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]
    key_env = next(item for item in leader["env"] if item["name"] == "VLLM_API_KEY")
    assert key_env["valueFrom"]["secretKeyRef"]["name"] == bench.API_KEY_SECRET


def test_given_the_synthesized_lws_when_read_then_model_dir_and_served_name_found(default_app):
    lws = default_app.kubernetes_object("LeaderWorkerSet", "vllm")
    served = bench.served_from_lws(json.loads(json.dumps(lws)))
    assert served.model_dir.startswith("/fsx/models/deepseek-ai-deepseek-r1-distill-qwen-32b-")
    assert served.served_model_name == "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B"
    assert served.replicas == 1
    assert default_app.kubernetes_object("PersistentVolumeClaim", served.claim_name)


def test_given_a_recorded_result_when_summarised_then_req_s_tok_s_ttft_and_itl_p50_p99():
    check = bench.summary(recorded())
    assert check.status is Status.PASS
    assert check.line() == (
        "PASS concurrency 8: 1.29 req/s, 331.2 output tok/s, TTFT p50 377 ms p99 813 ms, "
        "ITL p50 21.8 ms p99 48.3 ms (80 requests)"
    )


def test_given_failed_requests_when_summarised_then_fail():
    result = {**recorded(), "failed": 3}
    assert bench.summary(result).status is Status.FAIL
    assert bench.summary({**recorded(), "completed": 0}).status is Status.FAIL


def test_given_job_log_with_marked_lines_when_parsed_then_each_result_is_read():
    payload = json.dumps(recorded())
    log = (
        "Namespace(...)\n============ Serving Benchmark Result ============\n"
        f"BENCH-RESULT concurrency-8.json {payload}\n"
    )
    assert bench.results_from_log(log) == {"concurrency-8.json": recorded()}


def test_given_a_fake_cluster_when_make_bench_runs_then_job_applied_and_results_copied(
    fake_cluster, default_app, tmp_path, capsys
):
    lws = default_app.kubernetes_object("LeaderWorkerSet", "vllm")
    fake_cluster.answer("lws.json", json.dumps(lws))
    fake_cluster.answer("job.json", json.dumps({"status": {"succeeded": 1}}))
    fake_cluster.answer(
        "vllm-bench-t1.log", f"BENCH-RESULT concurrency-8.json {json.dumps(recorded())}\n"
    )
    code = bench.main(["--kubeconfig", "k", "--run-id", "t1", "--output-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    (job,) = fake_cluster.applied()
    assert job["kind"] == "Job" and job["metadata"]["name"] == "vllm-bench-t1"
    assert json.loads((tmp_path / "t1" / "concurrency-8.json").read_text()) == recorded()
    assert "PASS concurrency 8: 1.29 req/s" in out


def test_given_paused_lws_when_make_bench_runs_then_fail_says_resume(fake_cluster, capsys):
    fake_cluster.answer(
        "lws.json",
        json.dumps(
            {
                "spec": {
                    "replicas": 0,
                    "leaderWorkerTemplate": {
                        "leaderTemplate": {
                            "spec": {
                                "containers": [
                                    {
                                        "image": IMAGE,
                                        "args": [MODEL_DIR, "--served-model-name", "m"],
                                    }
                                ],
                                "volumes": [SERVED_VOLUME],
                            }
                        }
                    },
                }
            }
        ),
    )
    assert bench.main(["--kubeconfig", "k"]) == 1
    assert "make resume" in capsys.readouterr().out
    assert fake_cluster.applied() == []


@pytest.mark.parametrize("argv", [["--concurrency"], ["--input-len", "x"]])
def test_given_bad_arguments_when_make_bench_runs_then_exit_2(argv):
    assert bench.main(argv) == 2
