"""The wire: pydantic models of what the API accepts and answers (not the storage models)."""

from api.schemas.alerts import (
    AlertIn,
    AlertList,
    AlertOut,
    DeliveryList,
    DeliveryOut,
    IngestOut,
    PrincipalIn,
    ResourceIn,
    WebhookOut,
)
from api.schemas.approvals import (
    ApprovalList,
    ApprovalOut,
    ApprovalSummary,
    DecisionIn,
    DecisionOut,
)
from api.schemas.audit import AuditEventOut, AuditPage, ChainReportOut
from api.schemas.common import MAX_JSON_DEPTH, JsonValue, RequestModel, ResponseModel, Text
from api.schemas.health import Status
from api.schemas.playbooks import PlaybookDetail, PlaybookList, PlaybookOut, ProblemOut, StepBrief
from api.schemas.runs import ApprovalRef, Mode, RunIn, RunList, RunOut, RunSummary, StepOut

__all__ = [
    "AlertIn",
    "AlertList",
    "AlertOut",
    "ApprovalList",
    "ApprovalOut",
    "ApprovalRef",
    "ApprovalSummary",
    "AuditEventOut",
    "AuditPage",
    "ChainReportOut",
    "DecisionIn",
    "DecisionOut",
    "DeliveryList",
    "DeliveryOut",
    "IngestOut",
    "JsonValue",
    "MAX_JSON_DEPTH",
    "Mode",
    "PlaybookDetail",
    "PlaybookList",
    "PlaybookOut",
    "PrincipalIn",
    "ProblemOut",
    "RequestModel",
    "ResourceIn",
    "ResponseModel",
    "RunIn",
    "RunList",
    "RunOut",
    "RunSummary",
    "Status",
    "StepBrief",
    "StepOut",
    "Text",
    "WebhookOut",
]
