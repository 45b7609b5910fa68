"""One CloudWatch dashboard for the inference service, its alarms and their SNS topic."""

from __future__ import annotations

from aws_cdk import Aws, CfnOutput, Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct
from constructs.inference_observability import VLLM_DIMENSION, VLLM_METRICS_NAMESPACE

MINUTE = Duration.minutes(1)
FIVE = Duration.minutes(5)
CONTAINER_INSIGHTS = "ContainerInsights"
ALB = "AWS/ApplicationELB"
# Thresholds, in one place.
ALB_5XX_PER_5_MINUTES = 10
KV_CACHE_HIGH = 0.9
WAITING_MINUTES = 10
NO_HEALTHY_TARGET_MINUTES = 5
NODE_NOT_READY_MINUTES = 3
LATENCY_NOTE = "mean = sum/count; the agent keeps no buckets, so no percentiles"
WIDTH = 8
HEIGHT = 6


class InferenceDashboard(Construct):
    """Dashboard (output DashboardUrl), five alarms and the encrypted topic they notify."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster_name: str,
        model_name: str,
        load_balancer: str,
        target_group: str,
        alarm_email: str | None,
        notify: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        self._cluster_name = cluster_name
        self._model_name = model_name
        self._load_balancer = load_balancer
        self._target_group = target_group
        self._notify = notify
        self.topic = self._topic(alarm_email)
        self.alarms = self._alarms()
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            default_interval=Duration.hours(3),
            widgets=self._rows(),
        )
        url = CfnOutput(
            self,
            "DashboardUrl",
            value=(
                f"https://{Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region={Aws.REGION}"
                f"#dashboards/dashboard/{self.dashboard.dashboard_name}"
            ),
            description="CloudWatch dashboard: vLLM, GPU, EFA and ALB metrics",
        )
        # Operator commands and the README name the output by this key.
        url.override_logical_id("DashboardUrl")

    def _topic(self, alarm_email: str | None) -> sns.Topic:
        # CloudWatch can publish to an encrypted topic only with a customer managed key whose
        # policy lets the CloudWatch service principal use it (not the aws/sns key).
        key = kms.Key(
            self,
            "TopicKey",
            description="Encrypts the vLLM alarm topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        key.grant(
            iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*"
        )
        topic = sns.Topic(
            self, "AlarmTopic", display_name="vLLM alarms", master_key=key, enforce_ssl=True
        )
        if alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        return topic

    def _vllm(self, name: str, statistic: str, label: str | None = None) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=VLLM_METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map={VLLM_DIMENSION: self._model_name},
            statistic=statistic,
            period=MINUTE,
            label=label,
        )

    def _alb(
        self,
        name: str,
        statistic: str,
        with_target_group: bool = False,
        period: Duration = MINUTE,
    ) -> cloudwatch.Metric:
        dimensions = {"LoadBalancer": self._load_balancer}
        if with_target_group:
            dimensions["TargetGroup"] = self._target_group
        return cloudwatch.Metric(
            namespace=ALB,
            metric_name=name,
            dimensions_map=dimensions,
            statistic=statistic,
            period=period,
            label=name,
        )

    def _per_node(
        self, metric_name: str, statistic: str, label: str | None = None
    ) -> cloudwatch.MathExpression:
        # Node names and instance ids are only known at run time: SEARCH finds one line each.
        return cloudwatch.MathExpression(
            expression=(
                f"SEARCH('{{{CONTAINER_INSIGHTS},ClusterName,InstanceId,NodeName}} "
                f'MetricName="{metric_name}" ClusterName="{self._cluster_name}"\', '
                f"'{statistic}', 60)"
            ),
            label=label,
            period=MINUTE,
        )

    def _alarms(self) -> dict[str, cloudwatch.Alarm]:
        definitions = {
            "NoHealthyTarget": (
                self._alb("HealthyHostCount", "Minimum", with_target_group=True),
                1,
                cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                NO_HEALTHY_TARGET_MINUTES,
                cloudwatch.TreatMissingData.BREACHING,
                "No healthy ALB target for 5 minutes: no leader answers /health. Look first at "
                "`kubectl -n vllm get pods -l app.kubernetes.io/component=leader` and the leader's "
                "logs (model load, NCCL/EFA init), then the GPU nodes on the dashboard.",
            ),
            "Alb5xx": (
                cloudwatch.MathExpression(
                    expression="FILL(target, 0) + FILL(elb, 0)",
                    using_metrics={
                        "target": self._alb("HTTPCode_Target_5XX_Count", "Sum", period=FIVE),
                        "elb": self._alb("HTTPCode_ELB_5XX_Count", "Sum", period=FIVE),
                    },
                    period=FIVE,
                    label="ALB + target 5xx per 5 minutes",
                ),
                ALB_5XX_PER_5_MINUTES,
                cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                1,
                cloudwatch.TreatMissingData.NOT_BREACHING,
                f"More than {ALB_5XX_PER_5_MINUTES} HTTP 5xx in 5 minutes. Look first at the "
                "dashboard's ALB panel: ELB 502/504 point at the leader (restarts, keep-alive, "
                "idle timeout), target 5xx at vLLM's own errors in the leader's logs.",
            ),
            "RequestsWaiting": (
                self._vllm("vllm:num_requests_waiting", "Minimum"),
                1,
                cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                WAITING_MINUTES,
                cloudwatch.TreatMissingData.NOT_BREACHING,
                "Requests have queued on every replica for 10 minutes: the service is saturated. "
                "Look first at KV-cache usage and preemptions on the dashboard; add replicas or "
                "lower max_tokens.",
            ),
            "KvCacheHigh": (
                self._vllm("vllm:kv_cache_usage_perc", "Maximum"),
                KV_CACHE_HIGH,
                cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                5,
                cloudwatch.TreatMissingData.NOT_BREACHING,
                "KV-cache usage above 90% for 5 minutes: new requests wait and running ones get "
                "preempted. Look first at the preemptions and requests-waiting panels; consider "
                "a shorter maxModelLen or more replicas.",
            ),
            "NodeNotReady": (
                cloudwatch.Metric(
                    namespace=CONTAINER_INSIGHTS,
                    metric_name="node_status_condition_ready",
                    dimensions_map={"ClusterName": self._cluster_name},
                    statistic="Minimum",
                    period=MINUTE,
                ),
                1,
                cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                NODE_NOT_READY_MINUTES,
                cloudwatch.TreatMissingData.BREACHING,
                "A node of the cluster (GPU or system) has not been Ready for 3 minutes. Look "
                "first at the GPU nodes: `kubectl get nodes -l workload-class=gpu` and "
                "`kubectl describe node` for their conditions (a lost GPU node stops the whole "
                "LeaderWorkerSet group).",
            ),
        }
        alarms = {}
        for alarm_id, (metric, threshold, operator, periods, missing, text) in definitions.items():
            alarm = cloudwatch.Alarm(
                self,
                alarm_id,
                metric=metric,
                threshold=threshold,
                comparison_operator=operator,
                evaluation_periods=periods,
                datapoints_to_alarm=periods,
                treat_missing_data=missing,
                alarm_description=text,
                # Paused, no target is healthy on purpose: the alarms still show, nobody is paged.
                actions_enabled=self._notify,
            )
            alarm.add_alarm_action(actions.SnsAction(self.topic))
            alarm.add_ok_action(actions.SnsAction(self.topic))
            alarms[alarm_id] = alarm
        return alarms

    def _graph(self, title: str, metrics: list, **kwargs) -> cloudwatch.GraphWidget:
        return cloudwatch.GraphWidget(
            title=title, left=metrics, width=WIDTH, height=HEIGHT, **kwargs
        )

    def _tokens_per_second(self, name: str, label: str) -> cloudwatch.MathExpression:
        metric_id = name.split(":")[1].removesuffix("_total")
        return cloudwatch.MathExpression(
            expression=f"{metric_id} / PERIOD({metric_id})",
            using_metrics={metric_id: self._vllm(name, "Sum")},
            label=label,
            period=MINUTE,
        )

    def _rows(self) -> list[list[cloudwatch.IWidget]]:
        latency = [
            ("Time to first token (s)", "vllm:time_to_first_token_seconds"),
            ("Inter-token latency (s)", "vllm:inter_token_latency_seconds"),
            ("End-to-end request latency (s)", "vllm:e2e_request_latency_seconds"),
        ]
        return [
            [
                self._graph(
                    "Requests running and waiting",
                    [
                        self._vllm("vllm:num_requests_running", "Sum", "running"),
                        self._vllm("vllm:num_requests_waiting", "Sum", "waiting"),
                    ],
                ),
                self._graph(
                    "Tokens per second",
                    [
                        self._tokens_per_second("vllm:prompt_tokens_total", "in (prompt)"),
                        self._tokens_per_second("vllm:generation_tokens_total", "out (generated)"),
                    ],
                ),
                self._graph(
                    "KV-cache usage (1 = full)",
                    [self._vllm("vllm:kv_cache_usage_perc", "Maximum", "max over replicas")],
                    left_annotations=[
                        cloudwatch.HorizontalAnnotation(value=KV_CACHE_HIGH, label="alarm")
                    ],
                ),
            ],
            [
                self._graph(f"{title}: {LATENCY_NOTE}", [self._vllm(name, "Average", "mean")])
                for title, name in latency
            ],
            [
                self._graph(
                    "Preemptions per minute",
                    [self._vllm("vllm:num_preemptions_total", "Sum", "preemptions")],
                ),
                self._graph(
                    "GPU utilisation per node (%)",
                    [self._per_node("node_gpu_utilization", "Average")],
                ),
                self._graph(
                    "GPU memory utilisation per node (%)",
                    [self._per_node("node_gpu_memory_utilization", "Average")],
                ),
            ],
            [
                self._graph(
                    "EFA bytes per node",
                    [
                        self._per_node("node_efa_rx_bytes", "Sum", "in"),
                        self._per_node("node_efa_tx_bytes", "Sum", "out"),
                    ],
                ),
                self._graph(
                    "ALB requests, 4xx and 5xx",
                    [
                        self._alb("RequestCount", "Sum"),
                        self._alb("HTTPCode_Target_4XX_Count", "Sum"),
                        self._alb("HTTPCode_Target_5XX_Count", "Sum"),
                        self._alb("HTTPCode_ELB_5XX_Count", "Sum"),
                    ],
                ),
                self._graph(
                    "ALB target response time (s) and healthy targets",
                    [self._alb("TargetResponseTime", "Average")],
                    right=[self._alb("HealthyHostCount", "Minimum", with_target_group=True)],
                ),
            ],
            [
                cloudwatch.AlarmStatusWidget(
                    title="Alarms", alarms=list(self.alarms.values()), width=3 * WIDTH, height=4
                )
            ],
        ]
