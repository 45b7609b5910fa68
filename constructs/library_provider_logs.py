"""Log groups for the Lambda functions that aws-cdk-lib's own custom-resource providers add.

The VPC's default-security-group lockdown, a bucket's auto-delete and CfnJson each bring a
provider function declared without a log group. Lambda then creates `/aws/lambda/<name>` on the
first invocation, outside the template: it never expires and outlives `cdk destroy`.
"""

from __future__ import annotations

from aws_cdk import CfnResource, RemovalPolicy, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs


def keep_library_provider_logs_in_stack(stack: Stack) -> None:
    """Point every such provider function of `stack` at a log group the stack deletes.

    Call once, after the stack's constructs exist. The function names the group in its
    LoggingConfig, so the group exists before any invocation and is deleted after the function.
    """
    for handler in _library_provider_functions(stack):
        group = logs.LogGroup(
            handler.node.scope,
            "HandlerLogs",
            retention=logs.RetentionDays.ONE_WEEK,
            removal_policy=RemovalPolicy.DESTROY,
        )
        handler.add_property_override("LoggingConfig.LogGroup", group.log_group_name)


def _library_provider_functions(stack: Stack) -> list[CfnResource]:
    # Core providers declare their function as a plain CfnResource; lambda.Function and its
    # CfnFunction (kubectl provider, AwsCustomResource) already get explicit groups here.
    return [
        child
        for child in stack.node.find_all()
        if isinstance(child, CfnResource)
        and not isinstance(child, lambda_.CfnFunction)
        and child.cfn_resource_type == "AWS::Lambda::Function"
    ]
