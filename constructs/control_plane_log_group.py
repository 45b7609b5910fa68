"""The EKS control-plane log group, adopted rather than owned so a redeploy after destroy works."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import custom_resources as cr
from constructs import Construct
from constructs.sdk_call_provider import acknowledge_sdk_call_provider, sdk_call_log_group

RETENTION_DAYS = 30


class ControlPlaneLogGroup(Construct):
    """Creates `/aws/eks/<cluster>/cluster` if missing, sets retention, deletes it last.

    EKS writes control-plane logs to that fixed name and re-creates the group when late log
    streams arrive after it was deleted (terraform-aws-eks issues 2486, 2763). A plain
    AWS::Logs::LogGroup then fails the next deploy with "already exists". So this creates the
    group through the Logs API, treating "already exists" as success (a revived group is
    adopted), and deletes it only after everything that must outlive it (`outlived_by`) is
    gone, which leaves EKS time to flush its last streams. The cluster name stays fixed at
    synth: a random suffix would replace the cluster on every deploy.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster_name: str,
        outlived_by: list[Construct],
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group_name = f"/aws/eks/{cluster_name}/cluster"
        stack = Stack.of(self)
        arn = (
            f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:"
            f"log-group:{self.log_group_name}"
        )
        handler_logs = sdk_call_log_group(self)
        policy = cr.AwsCustomResourcePolicy.from_statements(
            [
                iam.PolicyStatement(
                    actions=[
                        "logs:CreateLogGroup",
                        "logs:DeleteLogGroup",
                        "logs:PutRetentionPolicy",
                    ],
                    resources=[arn, f"{arn}:*"],
                )
            ]
        )
        group_parameters = {"logGroupName": self.log_group_name}
        self.group = cr.AwsCustomResource(
            self,
            "Group",
            on_create=cr.AwsSdkCall(
                service="CloudWatchLogs",
                action="createLogGroup",
                parameters=group_parameters,
                physical_resource_id=cr.PhysicalResourceId.of(self.log_group_name),
                ignore_error_codes_matching="ResourceAlreadyExistsException",
            ),
            on_delete=cr.AwsSdkCall(
                service="CloudWatchLogs",
                action="deleteLogGroup",
                parameters=group_parameters,
                ignore_error_codes_matching="ResourceNotFoundException",
            ),
            policy=policy,
            log_group=handler_logs,
            install_latest_aws_sdk=False,
        )
        retention_call = cr.AwsSdkCall(
            service="CloudWatchLogs",
            action="putRetentionPolicy",
            parameters={**group_parameters, "retentionInDays": RETENTION_DAYS},
            physical_resource_id=cr.PhysicalResourceId.of(f"{self.log_group_name}-retention"),
        )
        self.retention = cr.AwsCustomResource(
            self,
            "Retention",
            on_create=retention_call,
            on_update=retention_call,
            policy=policy,
            log_group=handler_logs,
            install_latest_aws_sdk=False,
        )
        self.retention.node.add_dependency(self.group)
        for construct in outlived_by:
            construct.node.add_dependency(self.retention)
        self._acknowledge_findings(stack)

    def _acknowledge_findings(self, stack: Stack) -> None:
        for resource in (self.group, self.retention):
            Validations.of(
                resource.node.find_child("CustomResourcePolicy").node.default_child
            ).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:"
                    f"<AWS::AccountId>:log-group:{self.log_group_name}:*]",
                    reason="CloudWatch Logs authorizes log-group actions on the group's ARN with "
                    "the ':*' suffix; this names one log group, the cluster's own.",
                )
            )
        acknowledge_sdk_call_provider(stack, "manages the control-plane log group")
