"""The hub stack: where Riposte receives events, in one account and region.

Each rule (routing.py) matches on the hub's default event bus — this account and region's own
events and those the region stacks forward from every other region and member account — and
targets one EventBridge API destination posting to ``${PublicUrl}/v1/webhooks/eventbridge``.
The destination's connection authenticates with ``API_KEY``: the ingest token in the header
Riposte reads (``RIPOSTE_EVENTBRIDGE_API_KEY_HEADER``), from a NoEcho parameter that has no
default and is never written into the template (EventBridge keeps it in Secrets Manager).
Riposte answers 5xx when it could not commit a delivery; EventBridge retries for up to a day,
then parks the event in a dead-letter queue instead of dropping it.

CloudWatch alarms cannot target an API destination: they notify an SNS topic whose HTTPS
subscription is ``${PublicUrl}/v1/webhooks/sns`` (signature-verified; the topic must be in
``RIPOSTE_SNS_TOPICS`` before the stack is created, or the subscription is never confirmed —
its name is predictable: ``<stack name>-alarms``). For a playbook whose alarm counts CloudTrail
calls (``vars.event_names``), the stack also makes the metric filter on the trail's log group
and the alarm, named to match the playbook's trigger.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.wiring.routing import CountingAlarm, Rule, Wiring
from engine.wiring.template import TEMPLATE_VERSION, arn, get_att, logical_id, ref, sub

DEAD_LETTER_RETENTION_SECONDS = 14 * 86400  # SQS's longest
# EventBridge's own default and most: retry for a day, at most 185 times.
RETRY_POLICY = {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
# SNS gives an HTTPS endpoint three retries 20 s apart by default; this retries for about 40
# minutes (SNS allows an hour at most), backing off to a minute between tries.
SNS_DELIVERY_POLICY = {
    "healthyRetryPolicy": {
        "numRetries": 60,
        "numNoDelayRetries": 0,
        "minDelayTarget": 1,
        "maxDelayTarget": 60,
        "numMinDelayRetries": 3,
        "numMaxDelayRetries": 30,
        "backoffFunction": "exponential",
    }
}
ALARM_NAMESPACE = "CloudTrailMetrics"
BUS_ARN = arn("events", "event-bus/default")


def hub_template(wiring: Wiring, *, api_key_header: str) -> dict[str, Any]:
    """Return the hub stack for ``wiring`` (raises ValueError if it needs nothing)."""
    if not wiring.rules and not wiring.alarm_playbooks:
        raise ValueError("no playbook needs events from AWS: no hub stack to make")
    parameters: dict[str, Any] = {
        "PublicUrl": {
            "Type": "String",
            "Description": "Riposte's public https URL, without a trailing slash "
            "(e.g. https://riposte.example.com).",
            "AllowedPattern": r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\s]*[^/\s])?$",
            "ConstraintDescription": "an https URL without a trailing slash",
        },
    }
    resources: dict[str, Any] = {
        "DeadLetterQueue": {
            "Type": "AWS::SQS::Queue",
            # Events Riposte never received are evidence: deleting or replacing the stack keeps
            # the queue (delete it by hand once it is drained).
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "MessageRetentionPeriod": DEAD_LETTER_RETENTION_SECONDS,
                "SqsManagedSseEnabled": True,
            },
        },
    }
    senders: list[dict[str, Any]] = []
    if wiring.rules:
        parameters |= _ingest_parameters(api_key_header)
        resources |= _api_destination(api_key_header)
        for rule in wiring.rules:
            resources[rule_id(rule)] = _rule(rule)
        resources["OrganizationPutEvents"] = _bus_policy()
        senders.append(_queue_statement(
            "EventBridgeRules", "events.amazonaws.com",
            [get_att(rule_id(rule), "Arn") for rule in wiring.rules],
        ))
    if wiring.alarm_playbooks:
        resources |= _alarm_topic()
        senders.append(_queue_statement("AlarmSubscription", "sns.amazonaws.com",
                                        [ref("AlarmTopic")]))
    if wiring.alarms:
        parameters["TrailLogGroupName"] = {
            "Type": "String",
            "Description": "The CloudWatch Logs group the CloudTrail trail delivers to, in this "
            "account and region (the alarms count calls in it).",
            "MinLength": 1,
            "MaxLength": 512,
            "AllowedPattern": r"^[\.\-_/#A-Za-z0-9]+$",
        }
        for alarm in wiring.alarms:
            # One filter per metric: two filters writing one metric would count each call twice.
            resources |= _counting_alarm(alarm)
    resources["DeadLetterQueuePolicy"] = {
        "Type": "AWS::SQS::QueuePolicy",
        "Properties": {
            "Queues": [ref("DeadLetterQueue")],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": senders},
        },
    }
    return {
        "AWSTemplateFormatVersion": TEMPLATE_VERSION,
        "Description": _description(wiring),
        "Metadata": metadata(wiring),
        "Parameters": parameters,
        "Resources": resources,
        "Outputs": _outputs(wiring),
    }


def rule_id(rule: Rule) -> str:
    """The rule's logical id: its first playbook and a digest of its pattern (stable)."""
    return logical_id("Rule", rule.playbooks[0], rule.digest)


def metadata(wiring: Wiring, *, ids: Callable[[Rule], str] = rule_id) -> dict[str, Any]:
    """What the template was derived from: the playbooks, each rule's (by its logical id in
    this template, ``ids``) and what no rule routes."""
    return {
        "Riposte": {
            "Playbooks": wiring.playbooks,
            "Rules": {
                ids(rule): {"Playbooks": rule.playbooks, "Superset": rule.loose}
                for rule in wiring.rules
            },
            "AlarmPlaybooks": wiring.alarm_playbooks,
            "NotRouted": wiring.notes,
        }
    }


def _description(wiring: Wiring) -> str:
    return (
        "Riposte hub: EventBridge rules derived from the playbooks' triggers "
        f"({len(wiring.rules)} rule(s), {len(wiring.playbooks)} playbook(s)) send this "
        "account's and region's matching events, and those the region stacks forward, to "
        "Riposte's /v1/webhooks/eventbridge (API destination, API_KEY auth with an ingest "
        "token, retries, dead-letter queue); CloudWatch alarms reach /v1/webhooks/sns through "
        "an SNS topic. Generated by `riposte aws template hub`: regenerate, do not edit."
    )


def _ingest_parameters(api_key_header: str) -> dict[str, Any]:
    return {
        "IngestToken": {
            "Type": "String",
            "NoEcho": True,
            "MinLength": 1,
            "MaxLength": 512,
            "Description": "A Riposte token of role ingest (`riposte token create --role "
            f"ingest`), sent in the {api_key_header} header; kept by EventBridge in Secrets "
            "Manager.",
        },
        "OrganizationId": {
            "Type": "String",
            "Description": "The AWS Organization whose accounts may put events on this bus "
            "(the region stacks forward to it).",
            "AllowedPattern": r"^o-[a-z0-9]{10,32}$",
        },
    }


def _api_destination(api_key_header: str) -> dict[str, Any]:
    return {
        "IngestConnection": {
            "Type": "AWS::Events::Connection",
            "Properties": {
                "Description": "Riposte's ingest token, sent as an API key header.",
                "AuthorizationType": "API_KEY",
                "AuthParameters": {
                    "ApiKeyAuthParameters": {
                        "ApiKeyName": api_key_header,
                        "ApiKeyValue": ref("IngestToken"),
                    }
                },
            },
        },
        "IngestDestination": {
            "Type": "AWS::Events::ApiDestination",
            "Properties": {
                "Description": "Riposte's EventBridge webhook.",
                "ConnectionArn": get_att("IngestConnection", "Arn"),
                "HttpMethod": "POST",
                "InvocationEndpoint": sub("${PublicUrl}/v1/webhooks/eventbridge"),
            },
        },
        "IngestRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "Assumed by EventBridge to invoke Riposte's API destination.",
                "AssumeRolePolicyDocument": events_trust(),
                "Policies": [{
                    "PolicyName": "invoke-riposte",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{
                            "Effect": "Allow",
                            "Action": "events:InvokeApiDestination",
                            "Resource": get_att("IngestDestination", "Arn"),
                        }],
                    },
                }],
            },
        },
    }


def events_trust() -> dict[str, Any]:
    """A trust policy for EventBridge acting for this account's rules only."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")}},
        }],
    }


def _rule(rule: Rule) -> dict[str, Any]:
    return {
        "Type": "AWS::Events::Rule",
        "Properties": {
            "Description": rule.description,
            "EventPattern": rule.pattern,
            "State": "ENABLED",
            "Targets": [{
                "Id": "riposte",
                "Arn": get_att("IngestDestination", "Arn"),
                "RoleArn": get_att("IngestRole", "Arn"),
                "RetryPolicy": RETRY_POLICY,
                "DeadLetterConfig": {"Arn": get_att("DeadLetterQueue", "Arn")},
            }],
        },
    }


def _bus_policy() -> dict[str, Any]:
    return {
        "Type": "AWS::Events::EventBusPolicy",
        "Properties": {
            "EventBusName": "default",
            "StatementId": "riposte-organization-put-events",
            "Statement": {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "events:PutEvents",
                "Resource": BUS_ARN,
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": ref("OrganizationId")}},
            },
        },
    }


def _queue_statement(sid: str, service: str, sources: list[Any]) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sqs:SendMessage",
        "Resource": get_att("DeadLetterQueue", "Arn"),
        "Condition": {"ArnEquals": {"aws:SourceArn": sources}},
    }


def _alarm_topic() -> dict[str, Any]:
    return {
        "AlarmTopic": {
            "Type": "AWS::SNS::Topic",
            "Properties": {
                # Predictable, so RIPOSTE_SNS_TOPICS can name it before the stack exists.
                "TopicName": sub("${AWS::StackName}-alarms"),
            },
        },
        "AlarmTopicPolicy": {
            "Type": "AWS::SNS::TopicPolicy",
            "Properties": {
                "Topics": [ref("AlarmTopic")],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Sid": "AlarmsOfThisAccount",
                        "Effect": "Allow",
                        "Principal": {"Service": "cloudwatch.amazonaws.com"},
                        "Action": "sns:Publish",
                        "Resource": ref("AlarmTopic"),
                        "Condition": {
                            "StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")},
                            "ArnLike": {"aws:SourceArn": arn("cloudwatch", "alarm:*")},
                        },
                    }],
                },
            },
        },
        "AlarmSubscription": {
            "Type": "AWS::SNS::Subscription",
            "Properties": {
                "TopicArn": ref("AlarmTopic"),
                "Protocol": "https",
                "Endpoint": sub("${PublicUrl}/v1/webhooks/sns"),
                "DeliveryPolicy": SNS_DELIVERY_POLICY,
                "RedrivePolicy": {"deadLetterTargetArn": get_att("DeadLetterQueue", "Arn")},
            },
        },
    }


def _counting_alarm(alarm: CountingAlarm) -> dict[str, Any]:
    return {
        logical_id(alarm.metric_name, "Filter"): {
            "Type": "AWS::Logs::MetricFilter",
            "Properties": {
                "LogGroupName": ref("TrailLogGroupName"),
                "FilterPattern": alarm.filter_pattern,
                "MetricTransformations": [{
                    "MetricNamespace": ALARM_NAMESPACE,
                    "MetricName": alarm.metric_name,
                    "MetricValue": "1",
                }],
            },
        },
        logical_id(alarm.alarm_name, "Alarm"): {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmName": alarm.alarm_name,
                "AlarmDescription": (
                    f"{alarm.threshold} or more {' / '.join(alarm.calls)} calls within "
                    f"{alarm.period_seconds // 60} minutes (calls, not instances: one call can "
                    "end many); starts Riposte playbook(s) " + ", ".join(alarm.playbooks) + "."
                ),
                "Namespace": ALARM_NAMESPACE,
                "MetricName": alarm.metric_name,
                "Statistic": "Sum",
                "Period": alarm.period_seconds,
                "EvaluationPeriods": 1,
                "DatapointsToAlarm": 1,
                "Threshold": alarm.threshold,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "TreatMissingData": "notBreaching",
                "AlarmActions": [ref("AlarmTopic")],
            },
        },
    }


def _outputs(wiring: Wiring) -> dict[str, Any]:
    outputs: dict[str, Any] = {
        "EventBusArn": {
            "Description": "The hub's default event bus: HubEventBusArn of the region and "
            "member stacks.",
            "Value": BUS_ARN,
        },
        "DeadLetterQueueUrl": {
            "Description": "Events and alarm notifications Riposte did not accept in time.",
            "Value": ref("DeadLetterQueue"),
        },
    }
    if wiring.alarm_playbooks:
        outputs["AlarmTopicArn"] = {
            "Description": "The alarms' SNS topic: put it in RIPOSTE_SNS_TOPICS.",
            "Value": ref("AlarmTopic"),
        }
    return outputs
