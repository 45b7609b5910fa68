"""The one Lambda function that aws-cdk-lib's AwsCustomResource shares across a stack."""

from __future__ import annotations

from aws_cdk import Acknowledgment, RemovalPolicy, Stack, Validations
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct


def sdk_call_log_group(scope: Construct) -> logs.LogGroup:
    """Logs of the stack's AwsCustomResource function, deleted with the stack (pass it as
    `log_group` to every AwsCustomResource of the stack: the function is a singleton)."""
    return logs.LogGroup(
        scope,
        "SdkCallLogs",
        retention=logs.RetentionDays.ONE_WEEK,
        removal_policy=RemovalPolicy.DESTROY,
    )


def acknowledge_sdk_call_provider(stack: Stack, purpose: str) -> None:
    """Tell cdk-nag why the shared function's role carries the Lambda logging policy."""
    provider_id = "AWS" + cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace("-", "")
    role = stack.node.find_child(provider_id).node.find_child("ServiceRole").node.default_child
    Validations.of(role).acknowledge(
        Acknowledgment(
            id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
            "service-role/AWSLambdaBasicExecutionRole]",
            reason=f"The AwsCustomResource function that {purpose} uses "
            "AWSLambdaBasicExecutionRole only to write its own logs.",
        )
    )
