"""`make smoke`: five requests that show the endpoint works, is guarded, and streams.

    make smoke                                     # endpoint and key from the deployed stack
    make smoke ENDPOINT_URL=https://host/v1 API_KEY=...   # any OpenAI-compatible server, no AWS

1. GET /models with the key answers 200 and lists the served model.
2. GET /models without the key is refused with 401; answering is a FAIL.
3. POST /completions returns text.
4. POST /chat/completions returns an assistant message.
5. Streaming chat sends server-sent events ending in `data: [DONE]`; time to first token
   and tokens per second are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from ops.aws import (
    AWS_ERRORS,
    AwsUnavailable,
    client,
    error_text,
    find_output,
    session,
    stack_outputs,
)
from ops.cli import UsageExit, parse
from ops.kube import WORKLOAD_STACK
from ops.report import EXIT_USAGE, Check, failed, passed, print_report

# Long enough for a first request that compiles CUDA graphs; the ALB allows 600 s.
TIMEOUT = httpx.Timeout(300.0, connect=10.0)
MAX_TOKENS = 32
PROMPT = "The capital of France is"
CHAT = [{"role": "user", "content": "Say hello in one short sentence."}]


@dataclass(frozen=True)
class Endpoint:
    base_url: str  # ends in /v1
    api_key: str

    def headers(self, with_key: bool = True) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if with_key else {}


def normalise_base_url(url: str) -> str:
    """The OpenAI base URL ends in /v1; accept the bare ALB URL the older output gave."""
    base = url.rstrip("/")
    return base if base.endswith("/v1") else f"{base}/v1"


def endpoint_from_stack() -> Endpoint:
    """EndpointUrl and the API key (Secrets Manager) of the deployed WorkloadStack."""
    aws = session()
    try:
        outputs = stack_outputs(aws, [WORKLOAD_STACK])[WORKLOAD_STACK]
        url = find_output(outputs, "EndpointUrl")
        secret_arn = find_output(outputs, "ApiKeySecretArn")
        if not url or not secret_arn:
            raise AwsUnavailable(
                f"{WORKLOAD_STACK} is not deployed or has no EndpointUrl/ApiKeySecretArn output "
                "in this region; or pass ENDPOINT_URL=... API_KEY=..."
            )
        key = client(aws, "secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    except AWS_ERRORS as error:
        raise AwsUnavailable(f"reading the endpoint and key: {error_text(error)}") from error
    return Endpoint(normalise_base_url(url), key)


def _short(response: httpx.Response) -> str:
    return f"HTTP {response.status_code} {response.text[:160].strip()}"


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def check_models(http: httpx.Client, endpoint: Endpoint, model: str | None) -> tuple[Check, str]:
    subject = "GET /v1/models with the API key"
    try:
        response = http.get(f"{endpoint.base_url}/models", headers=endpoint.headers())
    except httpx.HTTPError as error:
        return (
            failed(
                subject,
                f"no answer from {endpoint.base_url}: {error}",
                "is the URL right and your IP in allowedCidrs?",
            ),
            "",
        )
    body = _json(response)
    if response.status_code != 200 or not isinstance(body, dict):
        return failed(subject, _short(response), "check the key and kubectl get pods -n vllm"), ""
    served = [item.get("id") for item in body.get("data", []) if isinstance(item, dict)]
    if not served:
        return failed(subject, "200 but no model listed"), ""
    if model and model not in served:
        return failed(subject, f"{model} is not served (served: {', '.join(served)})"), ""
    chosen = model or served[0]
    return passed(subject, f"200 from {endpoint.base_url}, serves {chosen}"), chosen


def check_no_key(http: httpx.Client, endpoint: Endpoint) -> Check:
    subject = "GET /v1/models without a key is refused"
    try:
        response = http.get(f"{endpoint.base_url}/models", headers=endpoint.headers(False))
    except httpx.HTTPError as error:
        return failed(subject, f"no answer: {error}")
    if response.status_code == 401:
        return passed(subject, "401")
    if response.is_success:
        return failed(
            subject,
            f"HTTP {response.status_code}: the endpoint answers anyone who can reach it",
            "vLLM must run with VLLM_API_KEY (or --api-key); check the leader's env",
        )
    return failed(subject, f"expected 401, got {_short(response)}")


def _first_choice(
    http: httpx.Client, endpoint: Endpoint, path: str, body: dict[str, Any], field: str
) -> tuple[Any, str]:
    """choices[0][field] of a 200 answer, or None and what went wrong."""
    try:
        response = http.post(f"{endpoint.base_url}/{path}", headers=endpoint.headers(), json=body)
    except httpx.HTTPError as error:
        return None, f"no answer: {error}"
    data = _json(response)
    try:
        value = data["choices"][0][field]
    except (KeyError, IndexError, TypeError):
        return None, _short(response)
    if response.status_code != 200:
        return None, _short(response)
    return value, _short(response)


def check_completion(http: httpx.Client, endpoint: Endpoint, model: str) -> Check:
    subject = "POST /v1/completions returns text"
    body = {"model": model, "prompt": PROMPT, "max_tokens": MAX_TOKENS, "temperature": 0}
    text, answer = _first_choice(http, endpoint, "completions", body, "text")
    if not isinstance(text, str) or not text.strip():
        return failed(subject, f"no text in the answer: {answer}")
    return passed(subject, repr(text.strip()[:60]))


def check_chat(http: httpx.Client, endpoint: Endpoint, model: str) -> Check:
    subject = "POST /v1/chat/completions returns an assistant message"
    body = {"model": model, "messages": CHAT, "max_tokens": MAX_TOKENS, "temperature": 0}
    message, answer = _first_choice(http, endpoint, "chat/completions", body, "message")
    if not isinstance(message, dict) or message.get("role") != "assistant":
        return failed(subject, f"no assistant message: {answer}")
    # Reasoning models answer in reasoning_content when a reasoning parser is on.
    text = (message.get("content") or message.get("reasoning_content") or "").strip()
    if not text:
        return failed(subject, "the assistant message is empty")
    return passed(subject, repr(text[:60]))


def check_stream(http: httpx.Client, endpoint: Endpoint, model: str) -> Check:
    subject = "streaming chat ends in [DONE]"
    body = {
        "model": model,
        "messages": CHAT,
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    start = time.perf_counter()
    first_token = last_token = None
    chunks_with_text = 0
    usage_tokens = None
    done = False
    try:
        with http.stream(
            "POST", f"{endpoint.base_url}/chat/completions", headers=endpoint.headers(), json=body
        ) as response:
            if response.status_code != 200:
                response.read()
                return failed(subject, _short(response))
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line.removeprefix("data:").strip()
                if payload == "[DONE]":
                    done = True
                    break
                event = json.loads(payload)
                if event.get("usage"):
                    usage_tokens = event["usage"].get("completion_tokens")
                for choice in event.get("choices", []):
                    delta = choice.get("delta", {})
                    if delta.get("content") or delta.get("reasoning_content"):
                        last_token = time.perf_counter()
                        first_token = first_token or last_token
                        chunks_with_text += 1
    except (httpx.HTTPError, ValueError) as error:
        return failed(subject, f"stream broke: {error}")
    if first_token is None:
        return failed(subject, "no token arrived in the stream")
    if not done:
        return failed(subject, "the stream ended without data: [DONE]")
    tokens = usage_tokens or chunks_with_text
    ttft_ms = (first_token - start) * 1000
    decode_seconds = last_token - first_token
    rate = (tokens - 1) / decode_seconds if tokens > 1 and decode_seconds > 0 else 0.0
    return passed(subject, f"TTFT {ttft_ms:.0f} ms, {tokens} tokens, {rate:.1f} tokens/s")


def checks(endpoint: Endpoint, model: str | None = None) -> Iterator[Check]:
    with httpx.Client(timeout=TIMEOUT) as http:
        check, served = check_models(http, endpoint, model)
        yield check
        yield check_no_key(http, endpoint)
        served = served or model
        if not served:
            for subject in ("completions", "chat completions", "streaming chat"):
                yield failed(subject, "skipped: no served model to ask (see the first check)")
            return
        yield check_completion(http, endpoint, served)
        yield check_chat(http, endpoint, served)
        yield check_stream(http, endpoint, served)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make smoke", description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint-url", default=os.environ.get("ENDPOINT_URL") or None)
    parser.add_argument(
        "--api-key",
        default=os.environ.get("API_KEY") or None,
        help="better passed as the API_KEY environment variable: argv is visible to others",
    )
    parser.add_argument("--model", help="served model name (default: the first listed)")
    try:
        args = parse(parser, argv)
    except UsageExit as usage:
        return usage.code
    if bool(args.endpoint_url) != bool(args.api_key):
        print("make smoke: give ENDPOINT_URL and API_KEY together, or neither", file=sys.stderr)
        return EXIT_USAGE
    if args.endpoint_url:
        endpoint = Endpoint(normalise_base_url(args.endpoint_url), args.api_key)
    else:
        try:
            endpoint = endpoint_from_stack()
        except AwsUnavailable as error:
            return print_report([failed("endpoint and API key", str(error))])
    return print_report(checks(endpoint, args.model))


if __name__ == "__main__":
    sys.exit(main())
