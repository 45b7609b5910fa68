"""Finds, at deploy time, the CloudWatch dimensions of the ALB the controller created.

The AWS Load Balancer Controller creates the ALB after the Ingress is applied, so its ARN is
unknown at synth. The Ingress fixes the ALB's name (`alb.ingress.kubernetes.io/
load-balancer-name`), and this looks the ALB and its target group up by that name once the
Ingress reports a hostname. Alarms need exact dimensions (CloudWatch alarms cannot use SEARCH),
which is why a lookup beats a dashboard-only SEARCH on a name prefix.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Fn, Stack, Validations
from aws_cdk import custom_resources as cr
from constructs import Construct
from constructs.sdk_call_provider import acknowledge_sdk_call_provider, sdk_call_log_group

SERVICE = "ElasticLoadBalancingV2"


class LoadBalancerLookup(Construct):
    """`load_balancer` and `target_group`: the ALB's AWS/ApplicationELB dimension values."""

    def __init__(self, scope: Construct, construct_id: str, *, load_balancer_name: str) -> None:
        super().__init__(scope, construct_id)
        self._logs = sdk_call_log_group(self)
        load_balancer = self._call(
            "LoadBalancer",
            "describeLoadBalancers",
            {"Names": [load_balancer_name]},
            "LoadBalancers.0.LoadBalancerArn",
        )
        load_balancer_arn = load_balancer.get_response_field("LoadBalancers.0.LoadBalancerArn")
        target_group = self._call(
            "TargetGroup",
            "describeTargetGroups",
            {"LoadBalancerArn": load_balancer_arn},
            "TargetGroups.0.TargetGroupArn",
        )
        target_group_arn = target_group.get_response_field("TargetGroups.0.TargetGroupArn")
        self.lookups = (load_balancer, target_group)
        # arn:...:loadbalancer/app/<name>/<id> -> app/<name>/<id>
        self.load_balancer = Fn.select(1, Fn.split(":loadbalancer/", load_balancer_arn))
        # arn:aws:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<id>
        self.target_group = Fn.select(5, Fn.split(":", target_group_arn))
        self._acknowledge()

    def _call(
        self, construct_id: str, action: str, parameters: dict, output: str
    ) -> cr.AwsCustomResource:
        call = cr.AwsSdkCall(
            service=SERVICE,
            action=action,
            parameters=parameters,
            output_paths=[output],
            physical_resource_id=cr.PhysicalResourceId.from_response(output),
        )
        return cr.AwsCustomResource(
            self,
            construct_id,
            on_create=call,
            on_update=call,
            install_latest_aws_sdk=False,
            log_group=self._logs,
            # Describe calls on Elastic Load Balancing support no resource-level permissions.
            policy=cr.AwsCustomResourcePolicy.from_sdk_calls(
                resources=cr.AwsCustomResourcePolicy.ANY_RESOURCE
            ),
        )

    def _acknowledge(self) -> None:
        stack = Stack.of(self)
        for lookup in self.lookups:
            Validations.of(
                lookup.node.find_child("CustomResourcePolicy").node.default_child
            ).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-IAM5[Resource::*]",
                    reason="elasticloadbalancing:Describe* supports no resource-level "
                    "permissions; this read-only lookup finds the ALB the controller named.",
                )
            )
        acknowledge_sdk_call_provider(stack, "looks up the ALB")
