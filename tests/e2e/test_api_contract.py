"""The API keeps its OpenAPI contract: schemathesis generates requests from the document and
checks every answer against it (every check on), on the live app with a real database.

Bounded: a fixed number of examples per operation and no deadline (this runs on 2 shared
cores); the file takes well under a minute on an idle machine. Requests carry an admin token
(admitted everywhere; schemathesis' ignored_auth check sends them without it too). The webhook
routes that need what a generated body cannot carry (an SNS signature, a Slack signature) must
refuse it with a status they document, as a problem.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig

from api.app import create_app
from api.routes.runs import RunStatus
from core.settings import Settings
from engine.conductor import TRANSITIONS
from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import ApiToken
from engine.store.tokens import PREFIX, token_hash
from tests.live_server import serving

EXAMPLES_PER_OPERATION = 10
# The admin token every request carries, known before the document is read so that schemathesis
# holds it as the credential of the HTTPBearer scheme: it knows when a case it made leaves the
# token out or spoils it (negative cases), which a header added at call time would overwrite.
ADMIN_TOKEN = PREFIX + secrets.token_urlsafe(32)
PLAYBOOK = """\
name: contract-check
trigger:
  source: [generic]
steps:
  - id: note
    action: core.log
    with:
      message: seen
"""


@pytest.fixture(scope="module")
def live_api(_sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Serve the app on a fresh SQLite database with ADMIN_TOKEN; yield its URL."""
    directory = tmp_path_factory.mktemp("contract")
    database = directory / "riposte.db"
    shutil.copyfile(_sqlite_template, database)
    playbooks = directory / "playbooks"
    playbooks.mkdir()
    (playbooks / "contract-check.yml").write_text(PLAYBOOK, encoding="utf-8")
    url = f"sqlite:///{database}"
    engine = make_engine(url)
    with make_sessionmaker(engine).begin() as session:
        session.add(ApiToken(name="contract-admin", role="admin",
                             token_hash=token_hash(ADMIN_TOKEN)))
    engine.dispose()
    settings_ = Settings(database_url=url, playbook_dir=playbooks, max_body_bytes=64 * 1024,
                         sns_topics=["arn:aws:sns:*:123456789012:riposte-*"])
    with serving(create_app(settings_)) as base_url:
        yield base_url


# The document as the app serves it (it does not depend on the settings). Read at collection,
# not from the live server through a fixture: schemathesis' lazy fixture loader does not work
# with this pytest.
# The webhooks read bodies the schema can only outline (a signed SNS message, an AWS event
# that a normalizer reads): refusing a generated one is right, with a status they document.
WEBHOOK_REFUSALS = ["2xx", "400", "401", "403", "404", "409", "413", "422", "5xx"]
CONFIG = SchemathesisConfig.from_dict({
    "auth": {"openapi": {"HTTPBearer": {"bearer": ADMIN_TOKEN}}},
    # A body over RIPOSTE_MAX_BODY_BYTES is refused before it is read (413): a refusal too.
    "checks": {"negative_data_rejection": {"expected-statuses": [
        "400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429",
        "5xx"]}},
    "operations": [{
        "include-operation-id": ["ingestEventBridge", "ingestCloudTrail", "ingestSns",
                                 "takeSlackInteraction"],
        "checks": {"positive_data_acceptance": {"expected-statuses": WEBHOOK_REFUSALS}},
    }, {
        # A token's expiry must be in the future and its name not a role's nor Riposte's own:
        # rules a schema has no words for; their refusal is a documented 422.
        "include-operation-id": ["createToken"],
        "checks": {"positive_data_acceptance": {"expected-statuses": [
            "2xx", "401", "403", "409", "422"]}},
    }],
})
schema = schemathesis.openapi.from_dict(
    create_app(Settings(database_url="sqlite://", playbook_dir=Path(__file__).parent)).openapi(),
    config=CONFIG)


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_keeps_its_contract(case: Any, live_api: str) -> None:
    case.call_and_validate(base_url=live_api)


def test_every_check_is_on() -> None:
    config = CONFIG.projects.get_default().checks_config_for()
    load_all_checks()
    names = [name for name in CHECKS.get_all_names() if name != "max_response_time"]
    assert len(names) >= 14
    assert all(getattr(config, name).enabled for name in names), names


def test_every_operation_is_named_and_answers_its_errors_as_problems() -> None:
    document = schema.raw_schema
    assert "HTTPValidationError" not in json.dumps(document)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert re.fullmatch("[a-z]+([A-Z][a-z]*)*", operation["operationId"]), (method, path)
            for status, answer in operation["responses"].items():
                if int(status) >= 400:
                    assert list(answer["content"]) == ["application/problem+json"], (path, status)


def test_the_run_statuses_in_the_schema_are_the_conductors() -> None:
    assert set(get_args(RunStatus)) == set(TRANSITIONS)
