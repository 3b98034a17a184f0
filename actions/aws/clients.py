"""The one way actions reach AWS: per-account sessions, retries, and the dry-run guard.

Every client comes from :class:`AwsClients`, one per run. It

- uses the ambient credentials in Riposte's own account and assumes ``RIPOSTE_RESPONDER_ROLE``
  in any other account an alert names;
- retries with botocore's ``standard`` mode, and on top of it, with tenacity, the codes botocore
  does not retry (IAM ``ConcurrentModification``, SNS ``Throttled``, …), for at most
  ``RIPOSTE_AWS_RETRY_SECONDS`` in all;
- in dry-run, refuses before any request is built every operation that is not read-only,
  unless it carries ``DryRun=True`` (EC2). The guard, not the actions' good behaviour, is what
  makes a rehearsal safe;
- records every call it was asked to make, and every request it really sent, so a step's
  output and the tests can say exactly what reached AWS.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.paginate import Paginator, PaginatorModel
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_random_exponential,
)

from actions.aws.arns import partition_of
from actions.errors import ActionError
from core.settings import Settings

# Operations that only read, by the verb their name starts with.
READ_ONLY_VERBS = ("Describe", "Get", "List", "Lookup", "Search", "Head", "BatchGet", "Simulate")
# Calls that change no AWS resource although their verb says otherwise.
ALWAYS_ALLOWED = {("sts", "AssumeRole")}

# Codes botocore's standard mode does not retry but that clear up by themselves.
SETTLING_CODES = ("ConcurrentModification", "EntityTemporarilyUnmodifiable", "Throttled")
# Codes that clear up only when the action knows it has just created or changed the target:
# EC2 is eventually consistent right after a create, and a state change takes a moment.
AFTER_CHANGE_CODES = ("*.NotFound", "IncorrectInstanceState", "IncorrectState")
# Operations whose IAM action has another name than the operation.
IAM_NAMES = {
    ("s3", "ListObjectsV2"): "ListBucket",
    ("s3", "ListObjects"): "ListBucket",
    ("s3", "HeadObject"): "GetObject",
}


def is_read_only(service: str, operation: str) -> bool:
    """Whether an operation only reads (by its verb), or is one of the allowed exceptions."""
    return operation.startswith(READ_ONLY_VERBS) or (service, operation) in ALWAYS_ALLOWED


def iam_action(service: str, operation: str) -> str:
    """The IAM action that authorises an operation, e.g. ``ec2:StopInstances``."""
    return f"{service}:{IAM_NAMES.get((service, operation), operation)}"


class AwsError(ActionError):
    """An AWS error answer, carrying its code so playbooks can match it in ``retry.on``."""

    def __init__(self, code: str, message: str, *, operation: str, retryable: bool = True):
        super().__init__(code, f"{operation}: {message}", retryable=retryable)
        self.operation = operation


@dataclass(frozen=True)
class AwsCall:
    """One call an action made (or tried to make) through the factory."""

    service: str
    operation: str
    params: dict[str, Any]
    account: str | None
    region: str

    @property
    def mutating(self) -> bool:
        return not is_read_only(self.service, self.operation) and not self.params.get("DryRun")


@dataclass
class CallLog:
    """What the run's clients were asked to call, and what was really sent to AWS."""

    asked: list[AwsCall] = field(default_factory=list)
    sent: list[AwsCall] = field(default_factory=list)
    refused: list[AwsCall] = field(default_factory=list)


class Client:
    """A botocore client whose operations retry settling codes and raise :class:`AwsError`."""

    def __init__(self, client: Any, *, retry_seconds: float, codes: tuple[str, ...]) -> None:
        self._client = client
        self._retry_seconds = retry_seconds
        self._codes = codes
        self.meta = client.meta

    def settling(self, *codes: str) -> Client:
        """This client, also retrying ``codes`` (default: NotFound and state codes).

        For calls on something the action has just created or changed.
        """
        extra = codes or AFTER_CHANGE_CODES
        return Client(self._client, retry_seconds=self._retry_seconds, codes=self._codes + extra)

    def get_paginator(
        self, operation: str, *, before_each_page: Callable[[], object] | None = None
    ) -> Paginator:
        """botocore's paginator for ``operation``, each page requested through this client.

        So a page is retried on the settling codes and fails as an :class:`AwsError`, as a
        direct call does (a raw client's paginator would do neither). ``before_each_page``
        runs before every page request: a rate limit waits there.
        """
        model = self.meta.service_model
        name = self.meta.method_to_api_mapping[operation]
        config = _paginator_model(model.service_name, model.api_version).get_paginator(name)
        call = getattr(self, operation)

        def page(**kwargs: Any) -> Any:
            if before_each_page is not None:
                before_each_page()
            return call(**kwargs)

        return Paginator(page, config, model.operation_model(name))

    def every(self, operation: str, key: str, **params: Any) -> list[Any]:
        """Every item under ``key`` of a paginated operation, all pages read."""
        pages = self.get_paginator(operation).paginate(**params)
        return list(pages.build_full_result().get(key, []))

    def get_waiter(self, name: str) -> Any:
        return self._client.get_waiter(name)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if name not in self._client.meta.method_to_api_mapping:
            return method
        operation = self._client.meta.method_to_api_mapping[name]

        def call(**kwargs: Any) -> Any:
            return self._call(method, operation, kwargs)

        return call

    def _call(self, method: Any, operation: str, kwargs: dict[str, Any]) -> Any:
        retrying = Retrying(
            stop=stop_after_delay(self._retry_seconds),
            wait=wait_random_exponential(multiplier=0.5, max=5),
            retry=retry_if_exception(self._settling),
            reraise=True,
        )
        try:
            return retrying(method, **kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code") or "ClientError")
            raise AwsError(code, str(error.get("Message") or exc), operation=operation) from exc
        except BotoCoreError as exc:
            raise AwsError(type(exc).__name__, str(exc), operation=operation) from exc

    def _settling(self, exc: BaseException) -> bool:
        if not isinstance(exc, ClientError):
            return False
        code = str(exc.response.get("Error", {}).get("Code", ""))
        return any(fnmatch.fnmatchcase(code, pattern) for pattern in self._codes)


@functools.cache
def _shared_loader() -> Any:
    return botocore.session.get_session().get_component("data_loader")


@functools.cache
def _paginator_model(service: str, api_version: str) -> PaginatorModel:
    """The pagination rules botocore ships for a service (read once per process)."""
    return PaginatorModel(_shared_loader().load_service_model(service, "paginators-1", api_version))


def new_session(**credentials: str) -> boto3.Session:
    """A boto3 session sharing one model loader: each run reads the service models once."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _shared_loader())
    return boto3.Session(botocore_session=core, **credentials)


# Called with each new botocore client, the account it reaches (None: Riposte's own) and the
# region asked for, after the guard is installed: ``riposte replay`` records or replays lookups
# through the client's events.
ClientHook = Callable[[Any, str | None, str], None]


class AwsClients:
    """The AWS client factory of one run."""

    def __init__(
        self, settings: Settings, *, dry_run: bool, run_id: str, hook: ClientHook | None = None
    ) -> None:
        self.settings = settings
        self.dry_run = dry_run
        self.run_id = run_id
        self._hook = hook
        self.calls = CallLog()
        self._base = new_session()
        self._sessions: dict[str, boto3.Session] = {}
        self._identity: dict[str, str] | None = None
        self._config = Config(
            retries={"mode": "standard", "max_attempts": 5},
            connect_timeout=5,
            read_timeout=60,
            user_agent_extra="riposte",
        )

    def client(
        self, service: str, *, account: str | None = None, region: str | None = None
    ) -> Client:
        """A client for ``service`` in ``account`` (default: Riposte's own) and ``region``."""
        region = region or self.settings.aws_region
        session = self._session(account)
        raw = session.client(
            service,
            region_name=region,
            endpoint_url=self.settings.aws_endpoint_url,
            config=self._config,
        )
        self._watch(raw, account=account, region=region)
        if self._hook is not None:
            self._hook(raw, account, region)
        return Client(raw, retry_seconds=self.settings.aws_retry_seconds, codes=SETTLING_CODES)

    def identity(self) -> dict[str, str]:
        """Riposte's own identity (``sts:GetCallerIdentity``): Account, Arn, UserId."""
        if self._identity is None:
            answer = self.client("sts").get_caller_identity()
            self._identity = {key: answer[key] for key in ("Account", "Arn", "UserId")}
        return self._identity

    def own_account(self) -> str:
        return self.identity()["Account"]

    def _session(self, account: str | None) -> boto3.Session:
        if account is None or account == self.own_account():
            return self._base
        if account not in self._sessions:
            self._sessions[account] = self._assume(account)
        return self._sessions[account]

    def _assume(self, account: str) -> boto3.Session:
        role = self.settings.responder_role
        if not role:
            raise ActionError(
                "NoAccessToAccount",
                f"account {account} is not Riposte's own and RIPOSTE_RESPONDER_ROLE is not set",
                retryable=False,
            )
        partition = partition_of(self.identity()["Arn"])
        request: dict[str, Any] = {
            "RoleArn": f"arn:{partition}:iam::{account}:role/{role.strip('/')}",
            "RoleSessionName": f"riposte-{self.run_id}"[:64],
        }
        if self.settings.responder_external_id is not None:
            request["ExternalId"] = self.settings.responder_external_id.get_secret_value()
        credentials = self.client("sts").assume_role(**request)["Credentials"]
        return new_session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )

    def _watch(self, client: Any, *, account: str | None, region: str) -> None:
        service = client.meta.service_model.service_name
        events = client.meta.events

        def asked(params: dict[str, Any], model: Any, **_: Any) -> None:
            call = AwsCall(service, model.name, copy.deepcopy(params), account, region)
            self.calls.asked.append(call)
            if self.dry_run and call.mutating:
                self.calls.refused.append(call)
                raise ActionError(
                    "DryRunRefused",
                    f"dry-run: {service}:{model.name} changes AWS and was not sent",
                    retryable=False,
                )

        def keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            context["riposte_params"] = copy.deepcopy(params)

        def sent(model: Any, context: dict[str, Any], **_: Any) -> None:
            params = context.get("riposte_params", {})
            self.calls.sent.append(AwsCall(service, model.name, params, account, region))

        # before-parameter-build sees the caller's parameters before any request exists;
        # before-call fires once the request is built, just before it is sent.
        events.register(f"before-parameter-build.{service}", asked)
        events.register(f"before-parameter-build.{service}", keep_params)
        events.register(f"before-call.{service}", sent)

