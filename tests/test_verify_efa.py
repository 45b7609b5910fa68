"""`make verify-efa`: the NCCL log verdict on recorded log excerpts, and the pods it reads.

The excerpts in tests/data/nccl/ keep the wording of real NCCL and aws-ofi-nccl lines; their
sources are listed in tests/data/nccl/SOURCES.md (NVIDIA/nccl issues #447 and #1597,
aws-samples/aws-do-eks PR #54, the format strings in aws/aws-ofi-nccl src/nccl_ofi_net.cpp
and NVIDIA/nccl src/init.cc).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.report import Status
from ops.verify_efa import main, read_nccl_network, verdict

DATA = Path(__file__).resolve().parent / "data" / "nccl"


def log(name: str) -> str:
    return (DATA / name).read_text()


@pytest.mark.parametrize("name", ["efa-leader.log", "efa-worker.log"])
def test_given_ofi_on_efa_in_either_log_format_when_judged_then_pass(name):
    """Both the pre-2025 `Selected Provider is efa (found N nics)` and the current
    `Selected provider is efa, fabric is efa (...)` wording (aws-ofi-nccl 06e8db33) count."""
    check = verdict("vllm-0", log(name))
    assert check.status is Status.PASS, check.line()
    assert "NET/OFI with provider efa (network Libfabric)" in check.line()


def test_given_socket_fallback_when_judged_then_fail_names_pod_and_line():
    check = verdict("vllm-0-1 (worker)", log("socket-worker.log"))
    assert check.status is Status.FAIL
    assert check.subject == "NCCL network of pod vllm-0-1 (worker)"
    assert "NET/Socket : Using [0]eth0" in check.detail
    assert "vpc.amazonaws.com/efa" in check.fix


def test_given_ofi_on_another_provider_when_judged_then_fail_says_which():
    check = verdict("vllm-0-1", log("tcp-provider.log"))
    assert check.status is Status.FAIL
    assert "provider tcp, not efa" in check.detail


def test_given_no_nccl_info_lines_when_judged_then_fail_asks_for_nccl_debug_info():
    check = verdict("vllm-0-1", log("no-nccl-lines.log"))
    assert check.status is Status.FAIL
    assert "NCCL_DEBUG=INFO" in check.fix


def test_given_efa_init_then_a_socket_channel_when_judged_then_socket_wins():
    """One rank on sockets is enough to fail the pod, whatever else its log says."""
    mixed = (
        log("efa-worker.log")
        + "x:1:2 [3] NCCL INFO Channel 01/0 : 3[3] -> 11[3] via NET/Socket/0\n"
    )
    assert verdict("vllm-0-1", mixed).status is Status.FAIL


def test_given_socket_log_when_read_then_every_network_line_is_found():
    network = read_nccl_network(log("socket-worker.log"))
    assert network.providers == ()
    assert network.networks == ("Socket",)
    assert len(network.socket_lines) == 3


def test_given_leader_on_efa_and_worker_on_sockets_when_run_then_exit_1_naming_worker(
    fake_cluster, capsys
):
    fake_cluster.pods(("vllm-0-1", 1), ("vllm-0", 0))
    fake_cluster.answer("vllm-0.log", log("efa-leader.log"))
    fake_cluster.answer("vllm-0-1.log", log("socket-worker.log"))
    assert main(["--kubeconfig", "/tmp/kubeconfig"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("PASS NCCL network of pod vllm-0 (leader)")
    assert lines[1].startswith("FAIL NCCL network of pod vllm-0-1 (worker)")
    get_pods, *log_calls = fake_cluster.calls()
    assert get_pods[:4] == ["--kubeconfig", "/tmp/kubeconfig", "--namespace", "vllm"]
    assert "leaderworkerset.sigs.k8s.io/name=vllm" in get_pods
    assert [call[4:] for call in log_calls] == [
        ["logs", "vllm-0", "--container", "vllm"],
        ["logs", "vllm-0-1", "--container", "vllm"],
    ]


def test_given_both_pods_on_efa_when_run_then_exit_0(fake_cluster, capsys):
    fake_cluster.pods(("vllm-0", 0), ("vllm-0-1", 1))
    fake_cluster.answer("vllm-0.log", log("efa-leader.log"))
    fake_cluster.answer("vllm-0-1.log", log("efa-worker.log"))
    assert main(["--kubeconfig", "/tmp/kubeconfig"]) == 0
    assert capsys.readouterr().out.count("PASS") == 2


def test_given_no_pods_when_run_then_fail_points_at_resume(fake_cluster, capsys):
    fake_cluster.pods()
    assert main(["--kubeconfig", "/tmp/kubeconfig"]) == 1
    assert "make resume" in capsys.readouterr().out


def test_given_a_pod_without_logs_when_run_then_fail_names_it(fake_cluster, capsys):
    fake_cluster.pods(("vllm-0", 0))
    assert main(["--kubeconfig", "/tmp/kubeconfig"]) == 1
    out = capsys.readouterr().out
    assert "WARN vLLM pods: one pod only" in out
    assert "FAIL NCCL network of pod vllm-0: leader: kubectl logs vllm-0" in out


def test_given_an_unknown_option_when_run_then_exit_2():
    assert main(["--bogus"]) == 2


def test_given_default_config_then_vllm_pods_log_nccl_network_choice_at_info(default_app):
    """NCCL_DEBUG=INFO with NCCL_DEBUG_SUBSYS=INIT,NET prints every line verify-efa reads:
    `Using network %s` is INFO(NCCL_INIT) in NVIDIA/nccl src/init.cc; `NET/Socket : Using` is
    INFO(NCCL_INIT|NCCL_NET) in src/transport/net_socket.cc; aws-ofi-nccl's `Selected
    provider is` is NCCL_OFI_INFO(NCCL_INIT|NCCL_NET) in src/nccl_ofi_net.cpp. NCCL prints a
    line when its flags share a bit with the subsystem mask (src/debug.cc)."""
    lws = default_app.kubernetes_object("LeaderWorkerSet", "vllm")["spec"]["leaderWorkerTemplate"]
    for role in ("leaderTemplate", "workerTemplate"):
        container = lws[role]["spec"]["containers"][0]
        env = {item["name"]: item.get("value") for item in container["env"]}
        assert env["NCCL_DEBUG"] == "INFO", role
        assert set(env["NCCL_DEBUG_SUBSYS"].split(",")) == {"INIT", "NET"}, role
