"""`make smoke` against a real HTTP server on 127.0.0.1 that behaves like vLLM's.

The stand-in follows vLLM's OpenAI server: with an API key set, /v1 paths without
`Authorization: Bearer <key>` get 401 (vllm/entrypoints/openai/api_server.py, the API-key
middleware); /v1/models lists `{"data": [{"id": <served name>}]}`; streaming answers are
server-sent events `data: {json}` ending with `data: [DONE]`, and with
`stream_options.include_usage` the last chunk before it carries `usage.completion_tokens`.
Each broken variant breaks one of those, so every FAIL path runs.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest

from ops import smoke
from ops.report import Status

KEY = "test-key-0123456789"
MODEL = "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B"
TOKENS = ["Hello", "!", " Nice", " to", " meet", " you", "."]


class VllmLike(BaseHTTPRequestHandler):
    """One handler; `server.breaks` names the behaviour to get wrong."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    @property
    def breaks(self) -> str:
        return self.server.breaks  # type: ignore[attr-defined]

    def send_json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorised(self) -> bool:
        if self.breaks == "no-auth":
            return True
        if self.headers.get("Authorization") == f"Bearer {KEY}":
            return True
        self.send_json(401, {"error": "Unauthorized"})
        return False

    def do_GET(self) -> None:
        if not self.authorised():
            return
        if self.breaks == "models-500":
            self.send_json(500, {"error": "engine dead"})
            return
        served = [] if self.breaks == "no-models" else [{"id": MODEL, "object": "model"}]
        self.send_json(200, {"object": "list", "data": served})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not self.authorised():
            return
        if body.get("model") != MODEL:
            self.send_json(404, {"error": f"The model `{body.get('model')}` does not exist."})
            return
        if self.path == "/v1/completions":
            text = "" if self.breaks == "empty-completion" else " Paris."
            self.send_json(200, {"choices": [{"index": 0, "text": text}]})
        elif self.path == "/v1/chat/completions" and body.get("stream"):
            self.stream(body)
        elif self.path == "/v1/chat/completions":
            role = "user" if self.breaks == "chat-not-assistant" else "assistant"
            message = {"role": role, "content": "Hello there!"}
            self.send_json(200, {"choices": [{"index": 0, "message": message}]})
        else:
            self.send_json(404, {"error": "not found"})

    def stream(self, body: dict[str, Any]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        events = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
        events += [{"choices": [{"index": 0, "delta": {"content": token}}]} for token in TOKENS]
        if body.get("stream_options", {}).get("include_usage"):
            events.append({"choices": [], "usage": {"completion_tokens": len(TOKENS)}})
        for event in events:
            self.chunk(f"data: {json.dumps(event)}\n\n")
            time.sleep(0.01)
        if self.breaks != "stream-no-done":
            self.chunk("data: [DONE]\n\n")
        self.chunk("")

    def chunk(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


@pytest.fixture
def vllm_server() -> Iterator[Any]:
    """start(breaks="") -> base URL ending in /v1 of a server on 127.0.0.1."""
    servers: list[ThreadingHTTPServer] = []

    def start(breaks: str = "") -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), VllmLike)
        server.breaks = breaks  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/v1"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def run(base_url: str, **kwargs: Any) -> list:
    return list(smoke.checks(smoke.Endpoint(base_url, KEY), **kwargs))


def statuses(checks: list) -> list[str]:
    return [check.status.value for check in checks]


def test_given_a_healthy_vllm_like_server_when_smoked_then_five_passes_with_ttft(vllm_server):
    checks = run(vllm_server())
    assert statuses(checks) == ["PASS"] * 5
    assert f"serves {MODEL}" in checks[0].detail
    assert checks[1].detail == "401"
    assert "Paris" in checks[2].detail
    stream = checks[4].detail
    assert stream.startswith("TTFT ") and "7 tokens" in stream
    assert float(stream.split(", ")[2].split()[0]) > 0  # tokens/s measured


def test_given_env_endpoint_and_key_when_main_runs_then_no_aws_and_exit_0(
    vllm_server, monkeypatch, capsys
):
    """ENDPOINT_URL/API_KEY skip AWS entirely: no credentials or region exist here."""
    url = vllm_server()
    monkeypatch.setenv("ENDPOINT_URL", url.removesuffix("/v1") + "/")
    monkeypatch.setenv("API_KEY", KEY)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    assert smoke.main([]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["PASS"] * 5
    assert f"200 from {url}, serves" in out[0]  # a bare base URL gets /v1


def test_given_server_answering_without_key_when_smoked_then_fail_and_exit_1(
    vllm_server, monkeypatch, capsys
):
    monkeypatch.setenv("ENDPOINT_URL", vllm_server("no-auth"))
    monkeypatch.setenv("API_KEY", KEY)
    assert smoke.main([]) == 1
    line = next(x for x in capsys.readouterr().out.splitlines() if "without a key" in x)
    assert line.startswith("FAIL") and "answers anyone" in line


@pytest.mark.parametrize(
    "breaks,failing,detail",
    [
        ("models-500", 0, "HTTP 500"),
        ("no-models", 0, "no model listed"),
        ("empty-completion", 2, "no text"),
        ("chat-not-assistant", 3, "no assistant message"),
        ("stream-no-done", 4, "without data: [DONE]"),
    ],
)
def test_given_a_server_breaking_one_check_when_smoked_then_that_check_fails(
    vllm_server, breaks, failing, detail
):
    checks = run(vllm_server(breaks))
    assert checks[failing].status is Status.FAIL, checks[failing].line()
    assert detail in checks[failing].detail
    assert all(check.status is Status.PASS for check in checks[:failing])


def test_given_wrong_key_when_smoked_then_models_check_fails_with_401(vllm_server):
    checks = list(smoke.checks(smoke.Endpoint(vllm_server(), "wrong")))
    assert checks[0].status is Status.FAIL and "HTTP 401" in checks[0].detail
    assert statuses(checks[2:]) == ["FAIL"] * 3  # nothing to ask without a model


def test_given_a_model_that_is_not_served_when_smoked_then_fail_lists_served(vllm_server):
    checks = run(vllm_server(), model="other/model")
    assert checks[0].status is Status.FAIL
    assert f"served: {MODEL}" in checks[0].detail


def test_given_nothing_listening_when_smoked_then_fail_without_traceback(capsys, monkeypatch):
    monkeypatch.setenv("ENDPOINT_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("API_KEY", KEY)
    assert smoke.main([]) == 1
    out = capsys.readouterr().out
    assert "FAIL GET /v1/models with the API key: no answer from http://127.0.0.1:9/v1" in out
    assert "Traceback" not in out


def test_given_url_without_key_when_run_then_usage_exit_2(monkeypatch):
    monkeypatch.setenv("ENDPOINT_URL", "http://127.0.0.1:9/v1")
    monkeypatch.delenv("API_KEY", raising=False)
    assert smoke.main([]) == 2


# --- the endpoint and key from the deployed stack (moto on 127.0.0.1) ------------------------

STACK_TEMPLATE = {
    "Resources": {"Marker": {"Type": "AWS::SNS::Topic"}},
    "Outputs": {
        # Nested CfnOutputs get CDK's 8-character hash suffix (see the WorkloadStack snapshot).
        "VllmEndpointUrl0B165A79": {"Value": "http://k8s-vllm-abc.us-west-2.elb.amazonaws.com"},
        "VllmApiKeySecretArnDEADBEEF": {"Value": {"Ref": "SecretArnParameter"}},
    },
    "Parameters": {"SecretArnParameter": {"Type": "String"}},
}


def test_given_deployed_stack_when_endpoint_read_then_url_gets_v1_and_key_comes_from_secret(
    aws_env,
):
    secrets = boto3.client("secretsmanager")
    arn = secrets.create_secret(Name="vllm-api-key", SecretString=KEY)["ARN"]
    boto3.client("cloudformation").create_stack(
        StackName="VllmWorkloadStack",
        TemplateBody=json.dumps(STACK_TEMPLATE),
        Parameters=[{"ParameterKey": "SecretArnParameter", "ParameterValue": arn}],
    )
    endpoint = smoke.endpoint_from_stack()
    assert endpoint.base_url == "http://k8s-vllm-abc.us-west-2.elb.amazonaws.com/v1"
    assert endpoint.api_key == KEY


def test_given_no_stack_when_make_smoke_runs_then_one_fail_line_naming_the_way_out(
    aws_env, monkeypatch, capsys
):
    monkeypatch.delenv("ENDPOINT_URL", raising=False)
    monkeypatch.delenv("API_KEY", raising=False)
    assert smoke.main([]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL endpoint and API key: VllmWorkloadStack is not deployed")
    assert "ENDPOINT_URL=... API_KEY=..." in out
