"""Metric collection: the CloudWatch Observability add-on, its Pod Identity role, vLLM scraping.

Pipeline choice. Everything lands in CloudWatch, so the dashboard and the alarms live in
the same service and nothing extra runs (no Prometheus, no Grafana, no AMP workspace).

- GPU, EFA and node metrics: the add-on's Container Insights with enhanced observability
  (its own DCGM exporter on GPU nodes; EFA counters from the EFA device plugin's devices),
  published to the `ContainerInsights` namespace.
- vLLM metrics: the add-on's CloudWatch agent scrapes each leader's `/metrics`. Its classic
  Prometheus input drops histograms outright, `_sum` and `_count` included (the agent's
  plugins/inputs/prometheus/metrics_filter.go keeps only gauges, counters and summaries),
  which would lose TTFT and latency. So the scrape runs in an OpenTelemetry pipeline the add-on
  appends to its agent (`agent.otelConfig`): the `prometheus` receiver feeds the `awsemf`
  exporter, which turns a histogram into a CloudWatch statistic set (count, sum) per period
  and keeps no buckets. The dashboard therefore shows TTFT, inter-token and end-to-end latency
  as means (sum / count), and says so on each panel.
- An Amazon Managed Service for Prometheus workspace with its managed scraper would keep the
  buckets (and so p50/p90/p99), but a CloudWatch dashboard and CloudWatch alarms cannot read
  it: it would need Grafana, the extra thing to operate that this project avoids.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, RemovalPolicy, Validations
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from config.versions import CLOUDWATCH_OBSERVABILITY_ADDON, CLOUDWATCH_OBSERVABILITY_VERSIONS

# The add-on installs into this namespace and runs its agent under this service account
# (EKS user guide "Amazon CloudWatch Observability agent"; the chart's
# `cloudwatch-agent.serviceAccountName` defaults to the agent name, cloudwatch-agent).
AGENT_NAMESPACE = "amazon-cloudwatch"
AGENT_SERVICE_ACCOUNT = "cloudwatch-agent"
AGENT_POLICY = "CloudWatchAgentServerPolicy"
VLLM_METRICS_NAMESPACE = "vLLM"
SCRAPE_INTERVAL = "60s"
# Names exactly as vLLM's PrometheusStatLogger (vllm/v1/metrics/loggers.py) registers them;
# prometheus_client exposes a Counter named X as X_total.
VLLM_GAUGES = (
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:kv_cache_usage_perc",
)
VLLM_COUNTERS = (
    "vllm:num_preemptions_total",
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
)
VLLM_HISTOGRAMS = (
    "vllm:time_to_first_token_seconds",
    "vllm:inter_token_latency_seconds",
    "vllm:e2e_request_latency_seconds",
)
VLLM_METRICS = (*VLLM_GAUGES, *VLLM_COUNTERS, *VLLM_HISTOGRAMS)
# Labels every vLLM metric carries; `model_name` is the served model name.
VLLM_DIMENSION = "model_name"
# Container Insights writes into these groups; made here so they have a retention and go
# with the stack (the agent would otherwise create them, out of reach of destroy).
CONTAINER_INSIGHTS_LOG_GROUPS = ("performance", "application", "dataplane", "host")


class InferenceObservability(Construct):
    """The add-on with its IAM role, vLLM scraping and the log groups it writes to."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.Cluster,
        kubernetes_version: str,
        workload_namespace: str,
        workload_name: str,
        metrics_port_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        log_groups = [
            logs.LogGroup(
                self,
                f"ContainerInsights-{kind}",
                log_group_name=f"/aws/containerinsights/{cluster.cluster_name}/{kind}",
                retention=logs.RetentionDays.ONE_MONTH,
                removal_policy=RemovalPolicy.DESTROY,
            )
            for kind in CONTAINER_INSIGHTS_LOG_GROUPS
        ]
        vllm_log_group = logs.LogGroup(
            self,
            "VllmMetricsLogs",
            log_group_name=f"/aws/vllm/{cluster.cluster_name}/metrics",
            retention=logs.RetentionDays.ONE_WEEK,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "AgentRole",
            description="CloudWatch agent of the amazon-cloudwatch-observability add-on",
            assumed_by=iam.ServicePrincipal("pods.eks.amazonaws.com").with_session_tags(),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(AGENT_POLICY)],
        )
        Validations.of(self.role.node.default_child).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{AGENT_POLICY}]",
                reason="The CloudWatch agent of the amazon-cloudwatch-observability add-on "
                "publishes Container Insights and vLLM metrics as EMF log events into log groups "
                "named per cluster; AWS documents this managed policy for it and maintains it "
                "with the agent.",
            )
        )
        self.addon = eks.Addon(
            self,
            "Addon",
            cluster=cluster,
            addon_name=CLOUDWATCH_OBSERVABILITY_ADDON,
            addon_version=CLOUDWATCH_OBSERVABILITY_VERSIONS[kubernetes_version],
            configuration_values=addon_configuration(
                workload_namespace=workload_namespace,
                workload_name=workload_name,
                metrics_port_name=metrics_port_name,
                log_group_name=vllm_log_group.log_group_name,
            ),
            preserve_on_delete=False,
        )
        cfn_addon = self.addon.node.default_child
        cfn_addon.add_property_override(
            "PodIdentityAssociations",
            [{"ServiceAccount": AGENT_SERVICE_ACCOUNT, "RoleArn": self.role.role_arn}],
        )
        # Pod Identity needs the agent add-on, which aws_eks_v2 creates with the cluster.
        self.addon.node.add_dependency(cluster.eks_pod_identity_agent)
        for log_group in (*log_groups, vllm_log_group):
            self.addon.node.add_dependency(log_group)


def addon_configuration(
    *, workload_namespace: str, workload_name: str, metrics_port_name: str, log_group_name: str
) -> dict[str, Any]:
    """Add-on configuration values (the Helm values of aws-observability/helm-charts'
    amazon-cloudwatch-observability chart, which the add-on schema mirrors)."""
    # No tolerations here: the chart's root default (`tolerations: [{operator: Exists}]`,
    # chart 6.2.0 values.yaml) already lets the agent and DCGM exporter onto tainted GPU nodes.
    return {
        # Application Signals would inject auto-instrumentation into the Python vLLM pods.
        "manager": {"applicationSignals": {"autoMonitor": {"monitorAllServices": False}}},
        "agent": {
            "otelConfig": vllm_scrape_pipeline(
                workload_namespace=workload_namespace,
                workload_name=workload_name,
                metrics_port_name=metrics_port_name,
                log_group_name=log_group_name,
            )
        },
    }


def vllm_scrape_pipeline(
    *, workload_namespace: str, workload_name: str, metrics_port_name: str, log_group_name: str
) -> dict[str, Any]:
    """OpenTelemetry pipeline appended to the agent: scrape vLLM, publish EMF to CloudWatch.

    The agent is a DaemonSet, so each copy scrapes only the pods on its own node
    (`K8S_NODE_NAME` is set on the agent pods; the agent expands `${env:...}`).
    Only leaders serve the API and `/metrics`: workers run `--headless` and name no port.
    """
    scrape = {
        "job_name": "vllm",
        "scrape_interval": SCRAPE_INTERVAL,
        "metrics_path": "/metrics",
        "kubernetes_sd_configs": [
            {
                "role": "pod",
                "namespaces": {"names": [workload_namespace]},
                "selectors": [{"role": "pod", "field": "spec.nodeName=${env:K8S_NODE_NAME}"}],
            }
        ],
        "relabel_configs": [
            {
                "source_labels": [
                    "__meta_kubernetes_pod_label_app_kubernetes_io_name",
                    "__meta_kubernetes_pod_container_port_name",
                ],
                "regex": f"{workload_name};{metrics_port_name}",
                "action": "keep",
            }
        ],
    }
    return {
        "receivers": {"prometheus/vllm": {"config": {"scrape_configs": [scrape]}}},
        "exporters": {
            "awsemf/vllm": {
                "namespace": VLLM_METRICS_NAMESPACE,
                "log_group_name": log_group_name,
                "dimension_rollup_option": "NoDimensionRollup",
                "metric_declarations": [
                    {
                        "dimensions": [[VLLM_DIMENSION]],
                        "metric_name_selectors": [f"^{name}" for name in VLLM_METRICS],
                    }
                ],
            }
        },
        "service": {
            "pipelines": {
                "metrics/vllm": {"receivers": ["prometheus/vllm"], "exporters": ["awsemf/vllm"]}
            }
        },
    }
