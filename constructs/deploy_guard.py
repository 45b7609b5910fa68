"""Makes CloudFormation refuse a stack that was synthesized without allowedCidrs."""

from __future__ import annotations

from aws_cdk import CfnRule, CfnRuleAssertion, Fn
from constructs import Construct

from config.settings import DOCUMENTATION_CIDR, Config


class DeployGuard(Construct):
    """A template rule that fails change-set creation, so nothing is half-created.

    Synth without allowedCidrs uses a documentation CIDR so `cdk synth` and `cdk diff` work;
    the rule makes `cdk deploy` of such a template stop before any resource exists.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: Config) -> None:
        super().__init__(scope, construct_id)
        if not config.allowed_cidrs_defaulted:
            return
        CfnRule(
            self,
            "AllowedCidrsRequired",
            assertions=[
                CfnRuleAssertion(
                    assert_=Fn.condition_equals("allowedCidrs", "set"),
                    assert_description=(
                        f"allowedCidrs is not set (synthesized with {DOCUMENTATION_CIDR}): "
                        "deploy with -c allowedCidrs=<your CIDRs>, e.g. 203.0.113.7/32"
                    ),
                )
            ],
        )
