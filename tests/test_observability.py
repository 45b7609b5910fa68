"""Observability: the CloudWatch add-on, vLLM scraping, one dashboard, five alarms, SNS.

Read from the synthesized templates. Three configurations: the default (observability on,
no email), CUSTOM_VARIANT (sets alarmEmail) and observability=false.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from constructs.inference_dashboard import ALB_5XX_PER_5_MINUTES, KV_CACHE_HIGH

from config.errors import ConfigError
from config.settings import build_config
from config.versions import CLOUDWATCH_OBSERVABILITY_ADDON, CLOUDWATCH_OBSERVABILITY_VERSIONS
from planning.plan_report import render

from conftest import CUSTOM_VARIANT, Synthesized, only, render_tokens

WORKLOAD = "VllmWorkloadStack"
OFF = {"observability": False}
# vLLM's Prometheus names for the pinned DLC's vLLM (PrometheusStatLogger in
# vllm-project/vllm vllm/v1/metrics/loggers.py); counters carry prometheus_client's `_total`.
REQUIRED_VLLM_METRICS = (
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:kv_cache_usage_perc",
    "vllm:num_preemptions_total",
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
    "vllm:time_to_first_token_seconds",
    "vllm:inter_token_latency_seconds",
    "vllm:e2e_request_latency_seconds",
)
# Renamed upstream: kv_cache_usage_perc replaced gpu_cache_usage_perc (0.9) and
# inter_token_latency_seconds replaced time_per_output_token_seconds (0.11).
RENAMED_VLLM_METRICS = ("gpu_cache_usage_perc", "time_per_output_token_seconds")
# Container Insights (enhanced) names, from the CloudWatch agent's EMF declarations
# (aws/amazon-cloudwatch-agent translator/tocwconfig/sampleConfig/
# emf_and_kubernetes_with_gpu_config.yaml).
NODE_METRICS = (
    "node_gpu_utilization",
    "node_gpu_memory_utilization",
    "node_efa_rx_bytes",
    "node_efa_tx_bytes",
)
ALB_METRICS = (
    "RequestCount",
    "HTTPCode_Target_4XX_Count",
    "HTTPCode_Target_5XX_Count",
    "HTTPCode_ELB_5XX_Count",
    "TargetResponseTime",
    "HealthyHostCount",
)


@pytest.fixture(scope="module")
def off_app(synth_variant) -> Synthesized:
    return synth_variant(**OFF)


def _addon(app: Synthesized) -> dict[str, Any]:
    addons = {
        logical_id: resource
        for logical_id, resource in app.resources(WORKLOAD, "AWS::EKS::Addon").items()
        if resource["Properties"]["AddonName"] == CLOUDWATCH_OBSERVABILITY_ADDON
    }
    return only(addons)[1]["Properties"]


def _addon_values(app: Synthesized) -> dict[str, Any]:
    return json.loads(render_tokens(_addon(app)["ConfigurationValues"]))


def _dashboard_body(app: Synthesized) -> str:
    _, dashboard = only(app.resources(WORKLOAD, "AWS::CloudWatch::Dashboard"))
    return render_tokens(dashboard["Properties"]["DashboardBody"])


def _alarms(app: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        logical_id.removeprefix("Dashboard")[: -len("00000000")]: resource["Properties"]
        for logical_id, resource in app.resources(WORKLOAD, "AWS::CloudWatch::Alarm").items()
    }


def _topic_ref(app: Synthesized) -> dict[str, str]:
    logical_id, _ = only(app.resources(WORKLOAD, "AWS::SNS::Topic"))
    return {"Ref": logical_id}


# --- Collection ----------------------------------------------------------------------------


def test_given_default_config_then_the_cloudwatch_addon_is_pinned_from_versions(default_app):
    addon = _addon(default_app)
    assert addon["AddonVersion"] == CLOUDWATCH_OBSERVABILITY_VERSIONS["1.35"]


def test_given_default_config_then_the_agent_gets_its_policy_through_pod_identity(default_app):
    """The add-on's agent runs as amazon-cloudwatch/cloudwatch-agent (EKS user guide,
    "Amazon CloudWatch Observability agent"; chart cloudwatch-agent.serviceAccountName)."""
    [association] = _addon(default_app)["PodIdentityAssociations"]
    assert association["ServiceAccount"] == "cloudwatch-agent"
    role_id = association["RoleArn"]["Fn::GetAtt"][0]
    role = default_app.json(WORKLOAD)["Resources"][role_id]["Properties"]
    statement = role["AssumeRolePolicyDocument"]["Statement"][0]
    assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert set(statement["Action"]) == {"sts:AssumeRole", "sts:TagSession"}
    assert "CloudWatchAgentServerPolicy" in json.dumps(role["ManagedPolicyArns"])


def test_given_default_config_then_the_agent_scrapes_only_vllm_leaders_on_its_own_node(
    default_app,
):
    """The scrape keeps pods labelled app.kubernetes.io/name=vllm with a port named like the
    leader's API port (workers run --headless and name none), and each DaemonSet copy keeps its
    own node's pods (K8S_NODE_NAME is set on the agent pods; the agent registers confmap's env
    provider: aws/amazon-cloudwatch-agent service/configprovider/provider.go)."""
    otel = _addon_values(default_app)["agent"]["otelConfig"]
    scrape = otel["receivers"]["prometheus/vllm"]["config"]["scrape_configs"][0]
    discovery = scrape["kubernetes_sd_configs"][0]
    assert discovery["namespaces"]["names"] == ["vllm"]
    assert discovery["selectors"] == [
        {"role": "pod", "field": "spec.nodeName=${env:K8S_NODE_NAME}"}
    ]
    keep = scrape["relabel_configs"][0]
    label, port_name = keep["regex"].split(";")
    lws = default_app.kubernetes_object("LeaderWorkerSet")["spec"]["leaderWorkerTemplate"]
    leader, worker = lws["leaderTemplate"], lws["workerTemplate"]
    assert leader["metadata"]["labels"]["app.kubernetes.io/name"] == label
    assert [p["name"] for p in leader["spec"]["containers"][0]["ports"]] == [port_name]
    assert "ports" not in worker["spec"]["containers"][0]
    assert otel["service"]["pipelines"]["metrics/vllm"] == {
        "receivers": ["prometheus/vllm"],
        "exporters": ["awsemf/vllm"],
    }


def test_given_default_config_then_emf_publishes_every_required_vllm_metric(default_app):
    """The classic agent Prometheus input drops histograms (aws/amazon-cloudwatch-agent
    plugins/inputs/prometheus/metrics_filter.go), so vLLM goes through awsemf, which keeps a
    histogram's count and sum."""
    exporter = _addon_values(default_app)["agent"]["otelConfig"]["exporters"]["awsemf/vllm"]
    [declaration] = exporter["metric_declarations"]
    selectors = [re.compile(pattern) for pattern in declaration["metric_name_selectors"]]
    for name in REQUIRED_VLLM_METRICS:
        assert any(selector.match(name) for selector in selectors), name
    assert declaration["dimensions"] == [["model_name"]]
    assert exporter["namespace"] == "vLLM"


def test_given_default_config_then_application_signals_does_not_instrument_vllm(default_app):
    """The chart's manager.monitorAllServices defaults to true in most regions
    (aws-observability/helm-charts amazon-cloudwatch-observability-6.2.0 _helpers.tpl)."""
    auto_monitor = _addon_values(default_app)["manager"]["applicationSignals"]["autoMonitor"]
    assert auto_monitor["monitorAllServices"] is False


def test_given_default_config_then_container_insights_log_groups_go_with_the_stack(default_app):
    groups = default_app.resources(WORKLOAD, "AWS::Logs::LogGroup")
    names = [render_tokens(g["Properties"].get("LogGroupName", "")) for g in groups.values()]
    insights = [n for n in names if n.startswith("/aws/containerinsights/")]
    assert {n.rsplit("/", 1)[1] for n in insights} == {
        "performance",
        "application",
        "dataplane",
        "host",
    }
    assert all(g["DeletionPolicy"] == "Delete" for g in groups.values())
    assert all("RetentionInDays" in g["Properties"] for g in groups.values())


# --- Dashboard -----------------------------------------------------------------------------


def test_given_default_config_then_the_dashboard_shows_every_required_metric(default_app):
    body = _dashboard_body(default_app)
    for name in (*REQUIRED_VLLM_METRICS, *NODE_METRICS, *ALB_METRICS):
        assert name in body, name
    for name in RENAMED_VLLM_METRICS:
        assert name not in body, name


def test_given_default_config_then_latency_panels_say_they_are_means(default_app):
    widgets = json.loads(_dashboard_body(default_app))["widgets"]
    latency = [
        w
        for w in widgets
        if any(
            name in json.dumps(w)
            for name in (
                "vllm:time_to_first_token_seconds",
                "vllm:inter_token_latency_seconds",
                "vllm:e2e_request_latency_seconds",
            )
        )
    ]
    assert len(latency) == 3
    for widget in latency:
        assert "mean = sum/count" in widget["properties"]["title"]
        # A graph's statistic defaults to Average when the metric names none.
        stats = re.findall(r'"stat":"(\w+)"', json.dumps(widget, separators=(",", ":")))
        assert set(stats) <= {"Average"}


def test_given_default_config_then_the_dashboard_url_is_a_stack_output(default_app):
    outputs = default_app.json(WORKLOAD)["Outputs"]
    dashboard_id, _ = only(default_app.resources(WORKLOAD, "AWS::CloudWatch::Dashboard"))
    url = render_tokens(outputs["DashboardUrl"]["Value"])
    assert "#dashboards/dashboard/" in url and dashboard_id in url


def test_given_default_config_then_alb_dimensions_come_from_the_named_alb(default_app):
    """The controller names the ALB from `alb.ingress.kubernetes.io/load-balancer-name` and
    refuses names over 32 characters (kubernetes-sigs/aws-load-balancer-controller
    pkg/ingress/model_build_load_balancer.go, buildLoadBalancerName)."""
    ingress = default_app.kubernetes_object("Ingress")
    name = ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/load-balancer-name"]
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{0,30}[a-z0-9]", name)
    lookups = default_app.resources(WORKLOAD, "Custom::AWS")
    calls = [json.loads(render_tokens(r["Properties"]["Create"])) for r in lookups.values()]
    by_action = {call["action"]: call for call in calls}
    assert by_action["describeLoadBalancers"]["parameters"] == {"Names": [name]}
    assert "describeTargetGroups" in by_action


# --- Alarms --------------------------------------------------------------------------------


def _alarm_metric_names(alarm: dict[str, Any]) -> set[str]:
    if "MetricName" in alarm:
        return {alarm["MetricName"]}
    return {
        query["MetricStat"]["Metric"]["MetricName"]
        for query in alarm["Metrics"]
        if "MetricStat" in query
    }


@pytest.mark.parametrize(
    ("alarm_id", "metrics", "operator", "threshold", "periods"),
    [
        ("NoHealthyTarget", {"HealthyHostCount"}, "LessThanThreshold", 1, 5),
        (
            "Alb5xx",
            {"HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count"},
            "GreaterThanThreshold",
            ALB_5XX_PER_5_MINUTES,
            1,
        ),
        (
            "RequestsWaiting",
            {"vllm:num_requests_waiting"},
            "GreaterThanOrEqualToThreshold",
            1,
            10,
        ),
        ("KvCacheHigh", {"vllm:kv_cache_usage_perc"}, "GreaterThanThreshold", KV_CACHE_HIGH, 5),
        ("NodeNotReady", {"node_status_condition_ready"}, "LessThanThreshold", 1, 3),
    ],
)
def test_given_default_config_then_each_alarm_has_its_threshold_and_notifies_the_topic(
    default_app, alarm_id, metrics, operator, threshold, periods
):
    alarm = _alarms(default_app)[alarm_id]
    assert _alarm_metric_names(alarm) == metrics
    assert alarm["ComparisonOperator"] == operator
    assert alarm["Threshold"] == threshold
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == periods
    assert alarm["AlarmActions"] == [_topic_ref(default_app)]
    assert alarm["OKActions"] == [_topic_ref(default_app)]
    assert "Look first at" in alarm["AlarmDescription"]


def _period(alarm: dict[str, Any]) -> int:
    if "Period" in alarm:
        return alarm["Period"]
    [period] = {q["MetricStat"]["Period"] for q in alarm["Metrics"] if "MetricStat" in q}
    return period


@pytest.mark.parametrize(
    ("alarm_id", "seconds"),
    [("NoHealthyTarget", 300), ("Alb5xx", 300), ("RequestsWaiting", 600), ("NodeNotReady", 180)],
)
def test_given_default_config_then_each_alarm_spans_the_time_it_states(
    default_app, alarm_id, seconds
):
    alarm = _alarms(default_app)[alarm_id]
    assert _period(alarm) * alarm["EvaluationPeriods"] == seconds


def test_given_no_data_then_lost_targets_and_nodes_alarm_and_idle_vllm_does_not(default_app):
    alarms = _alarms(default_app)
    assert alarms["NoHealthyTarget"]["TreatMissingData"] == "breaching"
    assert alarms["NodeNotReady"]["TreatMissingData"] == "breaching"
    assert alarms["RequestsWaiting"]["TreatMissingData"] == "notBreaching"


def test_given_default_config_then_the_topic_is_encrypted_with_a_key_cloudwatch_may_use(
    default_app,
):
    _, topic = only(default_app.resources(WORKLOAD, "AWS::SNS::Topic"))
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = default_app.json(WORKLOAD)["Resources"][key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    principals = json.dumps(key["KeyPolicy"])
    assert "cloudwatch.amazonaws.com" in principals
    assert default_app.resources(WORKLOAD, "AWS::SNS::Subscription") == {}


def test_given_alarm_email_then_the_topic_sends_email_to_it(custom_app):
    _, subscription = only(custom_app.resources(WORKLOAD, "AWS::SNS::Subscription"))
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == CUSTOM_VARIANT["alarmEmail"]


# --- observability=false -------------------------------------------------------------------


def _without_lambda_logs(app, resource_type: str) -> dict:
    """Resources of that type, leaving out the log groups library provider functions write to."""
    lambda_groups = {
        function["Properties"].get("LoggingConfig", {}).get("LogGroup", {}).get("Ref")
        for function in app.resources(WORKLOAD, "AWS::Lambda::Function").values()
    }
    return {
        logical_id: resource
        for logical_id, resource in app.resources(WORKLOAD, resource_type).items()
        if logical_id not in lambda_groups
    }


def test_given_observability_off_then_none_of_it_is_synthesized(off_app, default_app):
    for resource_type in (
        "AWS::CloudWatch::Dashboard",
        "AWS::CloudWatch::Alarm",
        "AWS::SNS::Topic",
        "AWS::KMS::Key",
        "Custom::AWS",
        "AWS::Logs::LogGroup",
    ):
        assert _without_lambda_logs(off_app, resource_type) == {}, resource_type
        assert _without_lambda_logs(default_app, resource_type) != {}, resource_type
    addons = off_app.resources(WORKLOAD, "AWS::EKS::Addon").values()
    assert CLOUDWATCH_OBSERVABILITY_ADDON not in {a["Properties"]["AddonName"] for a in addons}
    assert "DashboardUrl" not in off_app.json(WORKLOAD).get("Outputs", {})
    assert off_app.kubernetes_object("LeaderWorkerSet")


# --- Settings and cost ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("context", "key"),
    [
        ({"alarmEmail": "not-an-address"}, "alarmEmail"),
        ({"alarmEmail": "ops@example.com", "observability": "false"}, "alarmEmail"),
        ({"observability": "sometimes"}, "observability"),
    ],
)
def test_given_bad_observability_settings_then_one_clear_error_names_the_key(context, key):
    with pytest.raises(ConfigError) as raised:
        build_config(context)
    [problem] = raised.value.problems
    assert str(problem).startswith(f"{key}=")


def test_given_observability_on_or_off_then_make_plan_shows_its_monthly_estimate_or_none():
    on = render(build_config({}))
    off = render(build_config({"observability": "false"}))
    assert "Observability, USD per month (estimate" in on
    assert "Container Insights" in on and "CloudWatch dashboard" in on
    assert "Observability: off" in off and "Container Insights" not in off
