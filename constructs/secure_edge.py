"""What the ALB in front of vLLM carries: the TLS certificate, the DNS record, WAF, access logs.

The AWS Load Balancer Controller creates and names the ALB at run time, so nothing here is
attached to it directly: every piece reaches it through an Ingress annotation
(`ingress_annotations`), and the DNS record points at the host name the controller writes
into the Ingress status.
"""

from __future__ import annotations

from aws_cdk import (
    Acknowledgment,
    Aws,
    CfnCondition,
    CfnMapping,
    CfnOutput,
    Duration,
    Fn,
    RemovalPolicy,
    Validations,
)
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_iam as iam
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_wafv2 as wafv2
from aws_cdk.region_info import RegionInfo
from constructs import Construct, IDependable

from config.settings import Config

ANNOTATION = "alb.ingress.kubernetes.io/"
LOAD_BALANCER_ATTRIBUTES = f"{ANNOTATION}load-balancer-attributes"
# TLS 1.3 with TLS 1.2 fallback, no CBC ciphers.
SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
ACCESS_LOG_PREFIX = "alb"
# Regions opened since August 2022 have no ELB account; their log delivery is a service.
NO_ELB_ACCOUNT = "none"
ELB_LOG_DELIVERY_SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com"
DNS_TTL = Duration.minutes(1)
# Prompts routinely exceed the common rule set's 8 KB body limit: count them, never block.
COUNTED_COMMON_RULES = ("SizeRestrictions_BODY",)
MANAGED_RULE_GROUPS = (
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesCommonRuleSet",
)
RATE_WINDOW_SECONDS = 300


class SecureEdge(Construct):
    """Certificate (or the user's), WAF web ACL (or the user's), and the access-log bucket."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self.zone = (
            route53.HostedZone.from_hosted_zone_attributes(
                self,
                "Zone",
                hosted_zone_id=config.hosted_zone_id,
                zone_name=config.hosted_zone_name,
            )
            if config.hosted_zone_id
            else None
        )
        certificate = self._certificate()
        web_acl = self._web_acl() if config.waf else None
        self.certificate_arn = (
            certificate.certificate_arn if certificate else config.certificate_arn
        )
        self.web_acl_arn = web_acl.attr_arn if web_acl else config.waf_acl_arn
        self.log_bucket = self._log_bucket()
        # The ALB must never exist without them: the controller's SetLoadBalancerAttributes
        # fails until the bucket policy admits log delivery, and destroy must delete the ALB
        # before the certificate, web ACL and bucket it uses.
        self.ingress_prerequisites: list[IDependable] = [
            resource
            for resource in (self.log_bucket, self.log_bucket.policy, certificate, web_acl)
            if resource is not None
        ]

    @property
    def listen_ports(self) -> list[dict[str, int]]:
        if self._config.https:
            return [{"HTTP": 80}, {"HTTPS": 443}]
        return [{"HTTP": 80}]

    def ingress_annotations(self, load_balancer_attributes: str) -> dict[str, str]:
        """Annotations to add to the Ingress; `load_balancer_attributes` is its current value."""
        logs = (
            f"access_logs.s3.enabled=true,access_logs.s3.bucket={self.log_bucket.bucket_name},"
            f"access_logs.s3.prefix={ACCESS_LOG_PREFIX}"
        )
        annotations = {LOAD_BALANCER_ATTRIBUTES: f"{load_balancer_attributes},{logs}"}
        if self.certificate_arn:
            annotations |= {
                f"{ANNOTATION}certificate-arn": self.certificate_arn,
                f"{ANNOTATION}ssl-policy": SSL_POLICY,
                # Every HTTP listener answers with a redirect to 443 and forwards nothing.
                f"{ANNOTATION}ssl-redirect": "443",
            }
        # Without the annotation the controller leaves an ALB's web ACL as it was, so turning
        # waf off would keep the old ACL attached (and its deletion failing): say "none".
        annotations[f"{ANNOTATION}wafv2-acl-arn"] = self.web_acl_arn or "none"
        return annotations

    def base_url(self, load_balancer_hostname: str) -> str:
        """Where clients connect: the user's host name over HTTPS, else the ALB over HTTP."""
        if self._config.domain_name:
            return f"https://{self._config.domain_name}"
        return f"http://{load_balancer_hostname}"

    def point_domain_at(self, scope: Construct, load_balancer_hostname: str) -> None:
        """A CNAME from the user's host name to the ALB, or an output saying which to create.

        Created in `scope`, outside this construct: it needs the Ingress's status, and the
        Ingress needs this construct's resources first.
        """
        domain = self._config.domain_name
        if not domain:
            return
        if self.zone:
            route53.CnameRecord(
                scope,
                "EndpointDnsRecord",
                zone=self.zone,
                record_name=domain,
                domain_name=load_balancer_hostname,
                ttl=DNS_TTL,
                comment="vLLM endpoint -> the ALB the AWS Load Balancer Controller created",
            )
            return
        CfnOutput(
            scope,
            "DnsRecordToCreate",
            value=f"{domain} CNAME {load_balancer_hostname}",
            description="Create this record in the DNS zone of domainName; HTTPS works after",
        )

    def _certificate(self) -> acm.Certificate | None:
        """A DNS-validated certificate for domainName, unless the user brought one."""
        if self._config.certificate_arn or not self.zone:
            return None
        return acm.Certificate(
            self,
            "Certificate",
            domain_name=self._config.domain_name,
            validation=acm.CertificateValidation.from_dns(self.zone),
        )

    def _web_acl(self) -> wafv2.CfnWebACL:
        rules = [
            wafv2.CfnWebACL.RuleProperty(
                name="RateLimitPerClientIp",
                priority=0,
                action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        aggregate_key_type="IP",
                        limit=self._config.waf_rate_limit,
                        evaluation_window_sec=RATE_WINDOW_SECONDS,
                    )
                ),
                visibility_config=_visibility("RateLimitPerClientIp"),
            )
        ]
        for priority, group in enumerate(MANAGED_RULE_GROUPS, start=1):
            overrides = None
            if group == "AWSManagedRulesCommonRuleSet":
                overrides = [
                    wafv2.CfnWebACL.RuleActionOverrideProperty(
                        name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                    )
                    for rule in COUNTED_COMMON_RULES
                ]
            rules.append(
                wafv2.CfnWebACL.RuleProperty(
                    name=group,
                    priority=priority,
                    # "none" keeps each rule's own action; "count" would disarm the group.
                    override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                            vendor_name="AWS", name=group, rule_action_overrides=overrides
                        )
                    ),
                    visibility_config=_visibility(group),
                )
            )
        return wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            description="Guards the ALB of the vLLM endpoint",
            rules=rules,
            visibility_config=_visibility("VllmEndpoint"),
        )

    def _log_bucket(self) -> s3.Bucket:
        config = self._config
        retain = config.access_log_removal_policy == "RETAIN"
        bucket = s3.Bucket(
            self,
            "AccessLogs",
            # ALB access logs support SSE-S3 only, not SSE-KMS (ELB User Guide, "Enable
            # access logs for your Application Load Balancer", bucket requirements).
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireAccessLogs",
                    expiration=Duration.days(config.access_log_retention_days),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
            auto_delete_objects=not retain,
        )
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlbAccessLogDelivery",
                actions=["s3:PutObject"],
                principals=[self._log_delivery_principal()],
                resources=[
                    bucket.arn_for_objects(f"{ACCESS_LOG_PREFIX}/AWSLogs/{Aws.ACCOUNT_ID}/*")
                ],
            )
        )
        Validations.of(bucket.node.default_child).acknowledge(
            Acknowledgment(
                id="AwsSolutions-S1",
                reason="This bucket receives the ALB's access logs; S3 server access logs of "
                "the log bucket would need yet another bucket and record only log delivery.",
            )
        )
        return bucket

    def _log_delivery_principal(self) -> iam.IPrincipal:
        """Who writes ALB logs in the deploying region, decided at deploy time.

        Regions opened before August 2022 deliver as an ELB account of that region; newer
        ones as a service principal (ELB User Guide, "Enable access logs", step 2). The
        account table is aws-cdk-lib's region-info, the one the elbv2 L2 uses; the L2 needs a
        region at synth, these stacks do not have one.
        """
        mapping = CfnMapping(
            self,
            "ElbLogDeliveryAccount",
            mapping={
                region.name: {"account": region.elbv2_account or NO_ELB_ACCOUNT}
                for region in RegionInfo.regions
            },
        )
        account = mapping.find_in_map(Aws.REGION, "account")
        legacy = CfnCondition(
            self,
            "RegionHasElbAccount",
            expression=Fn.condition_not(Fn.condition_equals(account, NO_ELB_ACCOUNT)),
        )
        account_arn = Fn.condition_if(
            legacy.logical_id,
            Fn.join("", ["arn:", Aws.PARTITION, ":iam::", account, ":root"]),
            Aws.NO_VALUE,
        )
        return iam.CompositePrincipal(
            iam.ServicePrincipal(ELB_LOG_DELIVERY_SERVICE),
            iam.ArnPrincipal(account_arn.to_string()),
        )


def _visibility(metric_name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    """CloudWatch metrics and sampled requests for the ACL and each rule, named for it."""
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True,
        sampled_requests_enabled=True,
        metric_name=metric_name,
    )
