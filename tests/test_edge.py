"""The secure edge: HTTPS on the user's host name, the WAF web ACL, and ALB access logs.

Two variants are synthesized once each: PRODUCTION (a Route 53 zone, so the app creates the
certificate and the record, and waf=true) and OWN_CERTIFICATE (no zone: the user's
certificate and web ACL, shorter log retention, the log bucket retained). The default app
is the plain-HTTP trial.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from cfnlint.api import lint

import app as cdk_app
from config.errors import ConfigError
from config.settings import build_config

from conftest import Synthesized, only, render_tokens

WORKLOAD = "VllmWorkloadStack"
TODAY = date(2026, 11, 30)
ANNOTATION = "alb.ingress.kubernetes.io/"
DOMAIN = "llm.example.com"
ZONE_ID = "Z0123456789ABCDEFGHIJ"
ZONE_NAME = "example.com"
CERTIFICATE_ARN = (
    "arn:aws:acm:us-west-2:123456789012:certificate/11111111-2222-3333-4444-555555555555"
)
WAF_ACL_ARN = "arn:aws:wafv2:us-west-2:123456789012:regional/webacl/shared-acl/0a1b2c3d-4e5f"
PRODUCTION = {
    "allowedCidrs": "203.0.113.7/32",
    "domainName": DOMAIN,
    "hostedZoneId": ZONE_ID,
    "hostedZoneName": ZONE_NAME,
    "waf": "true",
}
OWN_CERTIFICATE = {
    "allowedCidrs": "203.0.113.7/32",
    "domainName": DOMAIN,
    "certificateArn": CERTIFICATE_ARN,
    "wafAclArn": WAF_ACL_ARN,
    "accessLogRetentionDays": 30,
    "accessLogRemovalPolicy": "RETAIN",
}
# Documented ELB log-delivery accounts (ELB User Guide, "Enable access logs", step 2) and
# regions launched after August 2022 that have none.
ELB_ACCOUNTS = {"us-east-1": "127311923021", "us-west-2": "797873946194"}
SERVICE_PRINCIPAL_REGIONS = ("ap-south-2", "eu-central-2", "il-central-1")


@pytest.fixture(scope="module")
def production(synth_variant) -> Synthesized:
    return synth_variant(**PRODUCTION)


@pytest.fixture(scope="module")
def own_certificate(synth_variant) -> Synthesized:
    return synth_variant(**OWN_CERTIFICATE)


def annotations(app: Synthesized) -> dict[str, str]:
    return app.kubernetes_object("Ingress", "vllm")["metadata"]["annotations"]


def load_balancer_attributes(app: Synthesized) -> dict[str, str]:
    text = annotations(app)[f"{ANNOTATION}load-balancer-attributes"]
    return dict(item.split("=", 1) for item in text.split(","))


def output_text(app: Synthesized, name: str) -> str:
    (value,) = [o["Value"] for k, o in app.json(WORKLOAD).get("Outputs", {}).items() if name in k]
    return render_tokens(value)


def ref_marker(logical_id: str) -> str:
    return render_tokens({"Ref": logical_id})


def problems(context: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        build_config(context, today=TODAY)
    return [str(problem) for problem in raised.value.problems]


def ingress_depends_on(app: Synthesized) -> list[str]:
    return app.depends_on(WORKLOAD, app.manifest_logical_id("Ingress", "vllm"))


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


def test_given_no_edge_settings_then_http_no_waf_and_90_days_of_logs():
    config = build_config({}, today=TODAY)
    assert not config.https and config.domain_name is None
    assert (config.waf, config.waf_acl_arn, config.waf_rate_limit) == (False, None, 2000)
    assert config.access_log_retention_days == 90
    assert config.access_log_removal_policy == "DESTROY"


def test_given_certificate_arn_without_domain_name_then_one_line_names_both_keys():
    (problem,) = problems({"certificateArn": CERTIFICATE_ARN})
    assert problem.startswith(f"certificateArn={CERTIFICATE_ARN}:")
    assert "domainName" in problem and "\n" not in problem


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"domainName": DOMAIN}, "domainName=llm.example.com: without a Route 53 zone"),
        ({"domainName": "Not A Name"}, "domainName=Not A Name: not in the expected form"),
        (
            {"domainName": DOMAIN, "hostedZoneId": ZONE_ID},
            f"hostedZoneId={ZONE_ID}: needs the zone's name",
        ),
        (
            {"domainName": DOMAIN, "hostedZoneName": ZONE_NAME},
            "hostedZoneName=example.com: needs the zone's id",
        ),
        (
            {"domainName": ZONE_NAME, "hostedZoneId": ZONE_ID, "hostedZoneName": ZONE_NAME},
            "domainName=example.com: the zone apex cannot hold the CNAME",
        ),
        (
            {"domainName": "llm.other.org", "hostedZoneId": ZONE_ID, "hostedZoneName": ZONE_NAME},
            "domainName=llm.other.org: not inside hostedZoneName=example.com",
        ),
        (
            {"hostedZoneId": ZONE_ID, "hostedZoneName": ZONE_NAME},
            f"hostedZoneId={ZONE_ID}: a zone is only used for the endpoint's host name",
        ),
        (
            {"domainName": DOMAIN, "hostedZoneId": "zone-1", "hostedZoneName": ZONE_NAME},
            "hostedZoneId=zone-1: not in the expected form",
        ),
        ({"waf": "yes"}, "waf=yes: not a boolean"),
        ({"waf": "true", "wafAclArn": WAF_ACL_ARN}, f"wafAclArn={WAF_ACL_ARN}: waf=true creates"),
        ({"wafAclArn": "arn:aws:wafv2:us-west-2:1:global/webacl/x/y"}, "wafAclArn=arn:aws:wafv2"),
        ({"waf": "true", "wafRateLimit": "9"}, "wafRateLimit=9: out of range"),
        ({"waf": "true", "wafRateLimit": "2000000001"}, "wafRateLimit=2000000001: out of range"),
        ({"wafRateLimit": "500"}, "wafRateLimit=500: only the web ACL the app creates"),
        ({"accessLogRetentionDays": "0"}, "accessLogRetentionDays=0: out of range"),
        ({"accessLogRemovalPolicy": "KEEP"}, "accessLogRemovalPolicy=KEEP: not a supported"),
    ],
)
def test_given_a_bad_edge_setting_then_one_error_names_key_value_and_allowed(context, expected):
    (problem,) = problems(context)
    assert problem.startswith(expected)
    assert "(allowed: " in problem


def test_given_a_zone_name_with_the_root_dot_then_it_is_the_same_zone():
    context = {**PRODUCTION, "hostedZoneName": f"{ZONE_NAME}."}
    assert build_config(context, today=TODAY).hosted_zone_name == ZONE_NAME


def test_given_the_waf_rate_limit_bounds_then_both_are_accepted():
    """WAFv2 API Reference, RateBasedStatement.Limit: 10 to 2,000,000,000 (10 since 2024)."""
    for limit in (10, 2_000_000_000):
        assert build_config({"waf": "true", "wafRateLimit": str(limit)}, today=TODAY).waf


def test_given_internet_facing_http_then_synth_notes_the_key_travels_in_clear_text():
    notices = cdk_app._notices(build_config({}, today=TODAY))
    assert any("clear text" in notice and notice.startswith("NOTE") for notice in notices)
    https = build_config(PRODUCTION, today=TODAY)
    internal = build_config({"endpointScheme": "internal"}, today=TODAY)
    for config in (https, internal):
        assert not any("clear text" in notice for notice in cdk_app._notices(config))


# ---------------------------------------------------------------------------------------------
# HTTPS on the user's host name
# ---------------------------------------------------------------------------------------------


def test_given_a_zone_then_a_dns_validated_certificate_for_the_domain_is_on_the_alb(production):
    certificate_id, certificate = only(
        production.resources(WORKLOAD, "AWS::CertificateManager::Certificate")
    )
    properties = certificate["Properties"]
    assert properties["DomainName"] == DOMAIN
    assert properties["ValidationMethod"] == "DNS"
    assert properties["DomainValidationOptions"] == [
        {"DomainName": DOMAIN, "HostedZoneId": ZONE_ID}
    ]
    notes = annotations(production)
    assert notes[f"{ANNOTATION}certificate-arn"] == ref_marker(certificate_id)
    assert certificate_id in ingress_depends_on(production)


def test_given_a_zone_then_a_cname_points_the_domain_at_the_ingress_status_hostname(production):
    """The controller names the ALB; its DNS name is only known from the Ingress status."""
    _, record = only(production.resources(WORKLOAD, "AWS::Route53::RecordSet"))
    properties = record["Properties"]
    assert properties["HostedZoneId"] == ZONE_ID
    assert properties["Name"] == f"{DOMAIN}."
    assert properties["Type"] == "CNAME"
    (target,) = properties["ResourceRecords"]
    value_id = target["Fn::GetAtt"][0]
    reader = production.json(WORKLOAD)["Resources"][value_id]["Properties"]
    assert reader["ObjectType"] == "ingress" and reader["ObjectName"] == "vllm"
    assert reader["JsonPath"] == ".status.loadBalancer.ingress[0].hostname"


@pytest.mark.parametrize("variant", [PRODUCTION, OWN_CERTIFICATE], ids=["zone", "own-cert"])
def test_given_a_domain_then_clients_use_https_on_it_and_port_80_only_redirects(
    synth_variant, variant
):
    """Controller docs (v3.2.2 docs/guide/ingress/annotations.md): with ssl-redirect every
    HTTP listener answers with a redirect to the named port and its other rules are ignored."""
    app = synth_variant(**variant)
    assert output_text(app, "EndpointUrl") == f"https://{DOMAIN}/v1"
    for curl in ("CurlCompletions", "CurlChatCompletions"):
        assert f"curl -sS https://{DOMAIN}/v1/" in output_text(app, curl)
    notes = annotations(app)
    assert json.loads(notes[f"{ANNOTATION}listen-ports"]) == [{"HTTP": 80}, {"HTTPS": 443}]
    assert notes[f"{ANNOTATION}ssl-redirect"] == "443"
    assert notes[f"{ANNOTATION}ssl-policy"].startswith("ELBSecurityPolicy-TLS13")


def test_given_own_certificate_without_zone_then_an_output_names_the_cname_to_create(
    own_certificate,
):
    assert own_certificate.resources(WORKLOAD, "AWS::CertificateManager::Certificate") == {}
    assert own_certificate.resources(WORKLOAD, "AWS::Route53::RecordSet") == {}
    assert annotations(own_certificate)[f"{ANNOTATION}certificate-arn"] == CERTIFICATE_ARN
    record = output_text(own_certificate, "DnsRecordToCreate")
    assert record.startswith(f"{DOMAIN} CNAME <")
    assert "LoadBalancerHostname" in record


def test_given_no_domain_then_the_trial_endpoint_is_plain_http_on_the_alb_name(default_app):
    assert output_text(default_app, "EndpointUrl").startswith("http://<")
    assert output_text(default_app, "EndpointUrl").endswith("/v1")
    notes = annotations(default_app)
    assert json.loads(notes[f"{ANNOTATION}listen-ports"]) == [{"HTTP": 80}]
    assert f"{ANNOTATION}certificate-arn" not in notes
    assert default_app.resources(WORKLOAD, "AWS::Route53::RecordSet") == {}


# ---------------------------------------------------------------------------------------------
# WAF
# ---------------------------------------------------------------------------------------------


def web_acl_rules(app: Synthesized) -> dict[str, dict[str, Any]]:
    _, acl = only(app.resources(WORKLOAD, "AWS::WAFv2::WebACL"))
    return {rule["Name"]: rule for rule in acl["Properties"]["Rules"]}


def test_given_waf_then_a_regional_acl_allows_by_default_and_records_everything(production):
    acl_id, acl = only(production.resources(WORKLOAD, "AWS::WAFv2::WebACL"))
    properties = acl["Properties"]
    assert properties["Scope"] == "REGIONAL"
    assert properties["DefaultAction"] == {"Allow": {}}
    configs = [properties["VisibilityConfig"]] + [
        rule["VisibilityConfig"] for rule in properties["Rules"]
    ]
    for config in configs:
        assert config["CloudWatchMetricsEnabled"] is True
        assert config["SampledRequestsEnabled"] is True
    assert len({rule["Priority"] for rule in properties["Rules"]}) == len(properties["Rules"])
    assert acl_id in ingress_depends_on(production)


def test_given_waf_then_the_managed_groups_keep_their_actions_but_body_size_only_counts(
    production,
):
    """Prompts exceed the common rule set's 8 KB SizeRestrictions_BODY limit: count it."""
    rules = web_acl_rules(production)
    for group in (
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
    ):
        statement = rules[group]["Statement"]["ManagedRuleGroupStatement"]
        assert (statement["VendorName"], statement["Name"]) == ("AWS", group)
        assert rules[group]["OverrideAction"] == {"None": {}}
    common = rules["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
    assert common["RuleActionOverrides"] == [
        {"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}
    ]


def test_given_waf_then_each_client_ip_is_blocked_past_the_rate_limit(production):
    rule = web_acl_rules(production)["RateLimitPerClientIp"]
    assert rule["Action"] == {"Block": {}}
    assert rule["Statement"]["RateBasedStatement"] == {
        "AggregateKeyType": "IP",
        "Limit": 2000,
        "EvaluationWindowSec": 300,
    }


def test_given_waf_then_the_ingress_attaches_the_acl_by_arn(production):
    acl_id, _ = only(production.resources(WORKLOAD, "AWS::WAFv2::WebACL"))
    expected = render_tokens({"Fn::GetAtt": [acl_id, "Arn"]})
    assert annotations(production)[f"{ANNOTATION}wafv2-acl-arn"] == expected


def test_given_waf_acl_arn_then_that_acl_is_attached_and_none_is_created(own_certificate):
    assert own_certificate.resources(WORKLOAD, "AWS::WAFv2::WebACL") == {}
    assert annotations(own_certificate)[f"{ANNOTATION}wafv2-acl-arn"] == WAF_ACL_ARN


def test_given_no_waf_then_no_acl_and_the_ingress_detaches_any(default_app):
    """Controller docs (v3.2.2 annotations.md, wafv2-acl-arn): an absent annotation keeps the
    ALB's web ACL unchanged; 'none' removes it. Turning waf off must detach the old ACL."""
    assert default_app.resources(WORKLOAD, "AWS::WAFv2::WebACL") == {}
    assert annotations(default_app)[f"{ANNOTATION}wafv2-acl-arn"] == "none"


def test_given_the_pinned_controller_then_its_iam_policy_may_associate_web_acls(default_app):
    """The controller associates the ACL itself (controller flag --enable-wafv2, chart value
    enableWafv2 default true, v3.2.2 helm/aws-load-balancer-controller/values.yaml) with the
    policy aws-cdk-lib 2.275.0 bundles for V3_2_2 (aws-eks-v2/lib/addons/
    alb-iam_policy-v3.2.2.json), which the synthesized WorkloadStack must carry."""
    needed = {
        "wafv2:AssociateWebACL",
        "wafv2:DisassociateWebACL",
        "wafv2:GetWebACL",
        "wafv2:GetWebACLForResource",
    }
    controller_policies = []
    for policy in default_app.resources(WORKLOAD, "AWS::IAM::Policy").values():
        granted = set()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            if statement["Effect"] == "Allow" and statement.get("Resource") == "*":
                granted.update([actions] if isinstance(actions, str) else actions)
        if "elasticloadbalancing:CreateLoadBalancer" in json.dumps(policy):
            controller_policies.append(granted)
    (granted,) = controller_policies
    assert needed <= granted


# ---------------------------------------------------------------------------------------------
# Access logs
# ---------------------------------------------------------------------------------------------


def log_bucket(app: Synthesized) -> tuple[str, dict[str, Any]]:
    return only(app.resources(WORKLOAD, "AWS::S3::Bucket"))


def bucket_statements(app: Synthesized) -> list[dict[str, Any]]:
    _, policy = only(app.resources(WORKLOAD, "AWS::S3::BucketPolicy"))
    return policy["Properties"]["PolicyDocument"]["Statement"]


def test_given_any_config_then_the_log_bucket_is_sse_s3_private_and_expires_logs(default_app):
    """ELB User Guide, "Enable access logs for your Application Load Balancer": the only
    server-side encryption supported for the log bucket is SSE-S3."""
    _, bucket = log_bucket(default_app)
    properties = bucket["Properties"]
    (encryption,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert set(properties["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(properties["PublicAccessBlockConfiguration"]) == 4
    (rule,) = properties["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled" and rule["ExpirationInDays"] == 90
    assert "Prefix" not in rule and "Filter" not in rule


def test_given_any_config_then_the_log_bucket_refuses_requests_without_tls(default_app):
    denies = [
        s
        for s in bucket_statements(default_app)
        if s["Effect"] == "Deny"
        and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
    ]
    assert denies and denies[0]["Action"] == "s3:*"


def test_given_any_config_then_alb_log_delivery_may_write_only_under_the_log_prefix(
    default_app,
):
    """Old regions deliver as a per-region ELB account, newer ones as the
    logdelivery.elasticloadbalancing.amazonaws.com service (ELB User Guide, "Enable access
    logs", step 2); the stack decides at deploy time from the region."""
    bucket_id, _ = log_bucket(default_app)
    (statement,) = [
        s for s in bucket_statements(default_app) if s.get("Sid") == "AlbAccessLogDelivery"
    ]
    assert statement["Effect"] == "Allow" and statement["Action"] == "s3:PutObject"
    assert statement["Principal"]["Service"] == "logdelivery.elasticloadbalancing.amazonaws.com"
    resource = render_tokens(statement["Resource"])
    arn = render_tokens({"Fn::GetAtt": [bucket_id, "Arn"]})
    assert resource == f"{arn}/alb/AWSLogs/{render_tokens({'Ref': 'AWS::AccountId'})}/*"

    condition_id, account_arn, _ = statement["Principal"]["AWS"]["Fn::If"]
    assert statement["Principal"]["AWS"]["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    template = default_app.json(WORKLOAD)
    lookup = account_arn["Fn::Join"][1][3]["Fn::FindInMap"]
    mapping = template["Mappings"][lookup[0]]
    assert lookup[1] == {"Ref": "AWS::Region"}
    for region, account in ELB_ACCOUNTS.items():
        assert mapping[region][lookup[2]] == account
    for region in SERVICE_PRINCIPAL_REGIONS:
        assert mapping[region][lookup[2]] == "none"
    condition = template["Conditions"][condition_id]
    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Fn::FindInMap": lookup}, "none"]}]}


def test_given_any_config_then_the_ingress_logs_to_the_bucket_next_to_the_idle_timeout(
    default_app,
):
    """Controller docs (annotations.md, load-balancer-attributes): access_logs.s3.* are ALB
    attributes set through this annotation; only the attributes named are changed."""
    bucket_id, _ = log_bucket(default_app)
    attributes = load_balancer_attributes(default_app)
    assert attributes["access_logs.s3.enabled"] == "true"
    assert attributes["access_logs.s3.bucket"] == ref_marker(bucket_id)
    assert attributes["access_logs.s3.prefix"] == "alb"
    assert attributes["idle_timeout.timeout_seconds"] == "600"


def test_given_any_config_then_the_ingress_waits_for_the_bucket_policy(default_app):
    """ELB refuses access_logs.s3.enabled until the bucket policy admits log delivery."""
    policy_id, _ = only(default_app.resources(WORKLOAD, "AWS::S3::BucketPolicy"))
    assert policy_id in ingress_depends_on(default_app)


def test_given_default_config_then_destroy_empties_and_deletes_the_log_bucket(default_app):
    bucket_id, bucket = log_bucket(default_app)
    assert bucket["DeletionPolicy"] == "Delete"
    (cleaner,) = default_app.resources(WORKLOAD, "Custom::S3AutoDeleteObjects").values()
    assert cleaner["Properties"]["BucketName"] == {"Ref": bucket_id}


def test_given_retention_settings_then_logs_expire_later_and_the_bucket_stays(
    own_certificate,
):
    _, bucket = log_bucket(own_certificate)
    assert bucket["DeletionPolicy"] == "Retain"
    (rule,) = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == 30
    assert own_certificate.resources(WORKLOAD, "Custom::S3AutoDeleteObjects") == {}


def test_given_the_production_edge_when_linted_then_cfn_lint_reports_no_errors(production):
    matches = lint(json.dumps(production.json(WORKLOAD)), regions=["us-east-1", "ap-south-2"])
    errors = [f"{m.rule.id} {m.message}" for m in matches if m.rule.id.startswith("E")]
    assert errors == []
