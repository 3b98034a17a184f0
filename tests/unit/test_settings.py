"""Settings a user can get right: lists as people write them, and errors that name the variable.

Each test sets ``RIPOSTE_*`` variables as a user would and reads the settings as the CLI does
(``read_settings``); the messages asserted are the ones the user sees after ``error: ``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, get_origin

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import make_url
from typer.testing import CliRunner

from core.settings import (
    OTHER_VARIABLES,
    Settings,
    SettingsInvalid,
    env_file_lines,
    read_settings,
)
from riposte.cli import app
from riposte.demo import demo_overrides
from riposte.serve_cli import log_setting_warnings

LIST_SETTINGS = [
    name for name, field in Settings.model_fields.items() if get_origin(field.annotation) is list
]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment with no RIPOSTE_* variable but those a test sets."""
    for name in list(os.environ):
        if name.startswith("RIPOSTE_"):
            monkeypatch.delenv(name)
    return monkeypatch


def problem(env: pytest.MonkeyPatch, **variables: str) -> str:
    """The message ``read_settings`` refuses these variables with."""
    for name, value in variables.items():
        env.setenv(name, value)
    with pytest.raises(SettingsInvalid) as refused:
        read_settings()
    return str(refused.value)


# ---------------------------------------------------------------------------------------------
# Lists and objects


def test_the_list_settings_are_all_found() -> None:
    # The walk below must cover the list settings there are, not an empty list.
    assert {"cloudtrail_sources", "approval_notify", "sns_topics", "break_glass",
            "production_tags", "production_instances", "geoip_databases"} <= set(LIST_SETTINGS)


@pytest.mark.parametrize("form", ["comma-separated", "json", "one plain value"])
@pytest.mark.parametrize("name", LIST_SETTINGS)
def test_every_list_setting_takes_comma_separated_values_or_a_json_list(
    env: pytest.MonkeyPatch, name: str, form: str
) -> None:
    items = ["lookup_events", "ingested"] if name == "cloudtrail_sources" else ["one", "two b"]
    text = {
        "comma-separated": " , ".join(items),
        "json": '["' + '", "'.join(items) + '"]',
        "one plain value": items[0],
    }[form]
    env.setenv(f"RIPOSTE_{name.upper()}", text)

    read = [str(item) for item in getattr(read_settings(), name)]

    assert read == (items[:1] if form == "one plain value" else items)


def test_a_plain_source_is_a_one_source_list(env: pytest.MonkeyPatch) -> None:
    env.setenv("RIPOSTE_CLOUDTRAIL_SOURCES", "s3")
    env.setenv("RIPOSTE_CLOUDTRAIL_BUCKET", "trail-logs")

    assert read_settings().cloudtrail_sources == ["s3"]


def test_an_empty_list_setting_is_an_empty_list(env: pytest.MonkeyPatch) -> None:
    env.setenv("RIPOSTE_PRODUCTION_TAGS", "")

    assert read_settings().production_tags == []


def test_a_broken_json_list_names_the_variable_and_both_forms(env: pytest.MonkeyPatch) -> None:
    assert problem(env, RIPOSTE_BREAK_GLASS='["breakglass-admin"') == (
        "invalid settings: RIPOSTE_BREAK_GLASS: not a JSON list (Expecting ',' delimiter at "
        "character 20): write a JSON list, or the values separated by commas"
    )


def test_a_list_item_of_the_wrong_type_names_the_variable_and_the_item(
    env: pytest.MonkeyPatch,
) -> None:
    assert problem(env, RIPOSTE_PRODUCTION_INSTANCES='["i-0abc", 7]') == (
        "invalid settings: RIPOSTE_PRODUCTION_INSTANCES item 2: Input should be a valid string"
    )


def test_the_account_registry_is_a_json_object(env: pytest.MonkeyPatch) -> None:
    env.setenv("RIPOSTE_ACCOUNTS", '{"123456789012": {"name": "prod-apps", '
               '"environment": "production", "owner": "platform@example.com"}}')

    entry = read_settings().accounts["123456789012"]

    assert (entry.name, entry.environment, entry.owner) == (
        "prod-apps", "production", "platform@example.com"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"123456789012": {"name": "prod-apps", "env": "production"}}',
         "RIPOSTE_ACCOUNTS['123456789012']: unknown key 'env' (known: name, environment, owner; "
         "did you mean 'environment'?)"),
        ('{"123456789012": {"name": "prod-apps", "ownr": "a@example.com", "enviroment": "x"}}',
         "RIPOSTE_ACCOUNTS['123456789012']: unknown keys 'ownr', 'enviroment' (known: name, "
         "environment, owner; did you mean 'owner' for 'ownr', 'environment' for "
         "'enviroment'?)"),
        ('{"123456789012": {"name": 7}}',
         "RIPOSTE_ACCOUNTS['123456789012']['name']: Input should be a valid string"),
        ("123456789012=prod-apps",
         "RIPOSTE_ACCOUNTS: not a JSON object (Extra data at character 13)"),
        ('["123456789012"]', "RIPOSTE_ACCOUNTS: a JSON object is expected, not a JSON list"),
    ],
    ids=["misspelt-key", "two-misspelt-keys", "wrong-type", "not-json", "a-list"],
)
def test_a_bad_account_registry_names_riposte_accounts(
    env: pytest.MonkeyPatch, value: str, message: str
) -> None:
    said = problem(env, RIPOSTE_ACCOUNTS=value)

    assert said == f"invalid settings: {message}"
    assert "RIPOSTE_ACCOUNTS_" not in said  # no variable that does not exist


# ---------------------------------------------------------------------------------------------
# CloudTrail sources and the trail's bucket


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        ("lookup_event",
         "unknown source 'lookup_event' (known: lookup_events, s3, ingested; did you mean "
         "'lookup_events'?)"),
        ("S3,ingestd",
         "unknown sources 'S3', 'ingestd' (known: lookup_events, s3, ingested; did you mean "
         "'s3' for 'S3', 'ingested' for 'ingestd'?)"),
        ('["cloudwatch"]', "unknown source 'cloudwatch' (known: lookup_events, s3, ingested)"),
        ("", "name at least one source (lookup_events, s3, ingested)"),
    ],
    ids=["misspelt", "two-misspelt", "unknown", "none"],
)
def test_an_unknown_source_is_refused_at_start_up_with_the_likely_one(
    env: pytest.MonkeyPatch, sources: str, message: str
) -> None:
    assert problem(env, RIPOSTE_CLOUDTRAIL_SOURCES=sources) == (
        f"invalid settings: RIPOSTE_CLOUDTRAIL_SOURCES: {message}"
    )


def test_the_s3_source_without_a_bucket_is_refused_naming_both_variables(
    env: pytest.MonkeyPatch,
) -> None:
    assert problem(env, RIPOSTE_CLOUDTRAIL_SOURCES="lookup_events,s3") == (
        "invalid settings: RIPOSTE_CLOUDTRAIL_SOURCES names s3 but RIPOSTE_CLOUDTRAIL_BUCKET is "
        "not set: set it to the bucket the trail delivers its log files to, or leave s3 out of "
        "the sources"
    )


def test_a_bucket_the_sources_leave_out_is_a_warning_naming_both_variables(
    env: pytest.MonkeyPatch,
) -> None:
    env.setenv("RIPOSTE_CLOUDTRAIL_BUCKET", "trail-logs")

    assert read_settings().warnings() == [
        "RIPOSTE_CLOUDTRAIL_BUCKET is set but RIPOSTE_CLOUDTRAIL_SOURCES (lookup_events) leaves "
        "out s3: investigations do not read the trail's bucket, only steps whose `sources` name "
        "s3 do; add s3 to RIPOSTE_CLOUDTRAIL_SOURCES to read it"
    ]


def test_the_bucket_prefix_and_account_the_sources_leave_out_are_named_too(
    env: pytest.MonkeyPatch,
) -> None:
    env.setenv("RIPOSTE_CLOUDTRAIL_SOURCES", "lookup_events,ingested")
    env.setenv("RIPOSTE_CLOUDTRAIL_BUCKET_PREFIX", "org")
    env.setenv("RIPOSTE_CLOUDTRAIL_BUCKET_ACCOUNT", "999999999999")

    [warning] = read_settings().warnings()

    assert warning.startswith(
        "RIPOSTE_CLOUDTRAIL_BUCKET_PREFIX and RIPOSTE_CLOUDTRAIL_BUCKET_ACCOUNT are set but "
        "RIPOSTE_CLOUDTRAIL_SOURCES (lookup_events,ingested) leaves out s3: "
    )


def test_a_bucket_read_by_the_s3_source_is_no_warning(env: pytest.MonkeyPatch) -> None:
    env.setenv("RIPOSTE_CLOUDTRAIL_SOURCES", "s3,ingested")
    env.setenv("RIPOSTE_CLOUDTRAIL_BUCKET", "trail-logs")

    assert read_settings().warnings() == []


def test_serving_with_no_sns_topic_allowed_is_a_warning_naming_the_variable(
    env: pytest.MonkeyPatch,
) -> None:
    env.setenv("RIPOSTE_CONSOLE_SECRET_KEY", "k" * 64)

    [warning] = read_settings().warnings(serving=True)

    assert warning.startswith(
        "RIPOSTE_SNS_TOPICS is empty: POST /v1/webhooks/sns refuses every SNS message (403); "
        "set it to the TopicArn globs of the topics that send to Riposte"
    )
    # Only `riposte serve` has the endpoint: `plan` and `worker` are not told.
    assert read_settings().warnings() == []


def test_serving_with_sns_topics_allowed_is_no_warning(env: pytest.MonkeyPatch) -> None:
    env.setenv("RIPOSTE_SNS_TOPICS", "arn:aws:sns:*:123456789012:riposte-*")
    env.setenv("RIPOSTE_CONSOLE_SECRET_KEY", "k" * 64)

    assert read_settings().warnings(serving=True) == []


def test_serving_without_a_console_key_is_a_warning_that_sessions_die_with_the_process(
    env: pytest.MonkeyPatch,
) -> None:
    env.setenv("RIPOSTE_SNS_TOPICS", "arn:aws:sns:*:123456789012:riposte-*")

    [warning] = read_settings().warnings(serving=True)

    assert warning.startswith("RIPOSTE_CONSOLE_SECRET_KEY is not set: this API process signs "
                              "console sessions with a random key of its own")
    assert read_settings().warnings() == []  # the workers have no console


def test_a_console_key_too_short_to_sign_is_refused_without_being_shown(
    env: pytest.MonkeyPatch,
) -> None:
    message = problem(env, RIPOSTE_CONSOLE_SECRET_KEY="hunter2-hunter2")

    assert message.startswith("invalid settings: RIPOSTE_CONSOLE_SECRET_KEY: too short")
    assert "hunter2" not in message


def test_the_sns_age_limit_is_positive_seconds(env: pytest.MonkeyPatch) -> None:
    assert read_settings().sns_max_age_seconds == 4500.0  # an hour of SNS retries, and some
    assert problem(env, RIPOSTE_SNS_MAX_AGE_SECONDS="0").startswith(
        "invalid settings: RIPOSTE_SNS_MAX_AGE_SECONDS: ")


def test_a_bad_choice_says_what_was_given(env: pytest.MonkeyPatch) -> None:
    assert problem(env, RIPOSTE_DEFAULT_MODE="shadow") == (
        "invalid settings: RIPOSTE_DEFAULT_MODE: Input should be 'live' or 'dry_run', "
        "not 'shadow'"
    )


def test_every_problem_is_said_at_once(env: pytest.MonkeyPatch) -> None:
    said = problem(env, RIPOSTE_LEASE_SECONDS="soon", RIPOSTE_CLOUDTRAIL_SOURCES="s4")

    assert said.startswith("invalid settings: RIPOSTE_LEASE_SECONDS: Input should be a valid "
                           "number")
    assert "; RIPOSTE_CLOUDTRAIL_SOURCES: unknown source 's4' " in said


# ---------------------------------------------------------------------------------------------
# Settings written as an env file (what the demo prints)


def env_file_values(lines: list[str]) -> dict[str, str]:
    """Read env-file lines as docker's --env-file does: NAME=value, # comments skipped."""
    values = {}
    for line in lines:
        assert "\n" not in line
        if not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def test_the_demo_settings_printed_as_an_env_file_read_back_as_the_demo_runs(
    env: pytest.MonkeyPatch,
) -> None:
    overrides = demo_overrides("http://127.0.0.1:4566")
    lines = env_file_lines(overrides)
    for name, value in env_file_values(lines).items():
        env.setenv(name, value)

    from_env = read_settings()

    as_run = Settings.model_validate(overrides)
    for name in overrides:
        assert getattr(from_env, name) == getattr(as_run, name), name
    assert "RIPOSTE_CLOUDTRAIL_SOURCES=s3,ingested" in lines
    assert "RIPOSTE_CLOUDTRAIL_BUCKET=acme-cloudtrail-logs" in lines
    assert "# RIPOSTE_RESPONDER_ROLE unset" in lines


@given(st.lists(st.text(max_size=12), max_size=5))
def test_any_list_written_as_an_env_file_line_reads_back_the_same(items: list[str]) -> None:
    [line] = env_file_lines({"break_glass": items})
    value = env_file_values([line])["RIPOSTE_BREAK_GLASS"]

    assert Settings.model_validate({"break_glass": value}).break_glass == items


def test_a_list_reads_as_people_write_it_when_it_can() -> None:
    assert env_file_lines({"production_tags": ["Environment=production", "Tier=critical"],
                           "approval_notify": ["https://hooks.example/a?x=1,2"],
                           "sns_topics": []}) == [
        "RIPOSTE_PRODUCTION_TAGS=Environment=production,Tier=critical",
        'RIPOSTE_APPROVAL_NOTIFY=["https://hooks.example/a?x=1,2"]',
        "RIPOSTE_SNS_TOPICS=",
    ]


def test_a_secret_is_never_written() -> None:
    values: dict[str, Any] = {"notify_webhook_url": "https://hooks.example/T0/B0/secret-path"}

    assert env_file_lines(values) == ["# RIPOSTE_NOTIFY_WEBHOOK_URL set (a secret: not shown)"]


def test_writing_a_setting_that_does_not_exist_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown setting 'cloudtrail_bucket_name' .*did you "
                                         r"mean 'cloudtrail_bucket'\?"):
        env_file_lines({"cloudtrail_bucket_name": "trail-logs"})


# ---------------------------------------------------------------------------------------------
# Variables that name no setting


def test_a_misspelt_variable_is_a_warning_naming_the_setting_meant(
    env: pytest.MonkeyPatch,
) -> None:
    env.setenv("RIPOSTE_NOTIFY_WEBHOOK", "https://hooks.example/T0/B0/x")

    settings = read_settings()

    expected = ("RIPOSTE_NOTIFY_WEBHOOK is set but names no setting: it is ignored (did you mean "
                "RIPOSTE_NOTIFY_WEBHOOK_URL?)")
    assert settings.notify_webhook_url is None
    assert settings.warnings() == [expected]
    assert settings.warnings(serving=True)[0] == expected  # `riposte serve` says it first
    assert settings.unknown_variables() == [expected]


def test_an_unknown_variable_like_no_setting_is_reported_without_a_guess(
    env: pytest.MonkeyPatch,
) -> None:
    env.setenv("RIPOSTE_FROBNICATE", "1")

    assert read_settings().unknown_variables() == [
        "RIPOSTE_FROBNICATE is set but names no setting: it is ignored"
    ]


def test_variables_read_by_others_and_settings_in_lower_case_are_not_reported(
    env: pytest.MonkeyPatch,
) -> None:
    for name in OTHER_VARIABLES:
        env.setenv(name, "1")
    env.setenv("riposte_log_level", "DEBUG")

    settings = read_settings()

    assert settings.log_level == "DEBUG"
    assert settings.unknown_variables() == []


def test_riposte_plan_prints_the_unknown_variable_on_stderr(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    playbook = tmp_path / "p.yml"
    playbook.write_text("name: p\nsteps:\n  - id: a\n    action: core.log\n    with:\n"
                        "      message: hi\n", encoding="utf-8")
    alert = tmp_path / "alert.json"
    alert.write_text('{"title": "t", "severity": 10}', encoding="utf-8")
    env.setenv("RIPOSTE_SNS_TOPIC", "arn:aws:sns:*:123456789012:riposte-*")

    result = CliRunner().invoke(app, ["plan", str(playbook), str(alert)])

    assert result.exit_code == 0, result.output
    assert ("warning: RIPOSTE_SNS_TOPIC is set but names no setting: it is ignored (did you "
            "mean RIPOSTE_SNS_TOPICS?)") in result.stderr


def test_serve_and_worker_log_the_unknown_variable(
    env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env.setenv("RIPOSTE_LEASE_SECOND", "60")

    with caplog.at_level(logging.WARNING, logger="riposte.settings"):
        log_setting_warnings(read_settings(), serving=False)

    assert [record.getMessage() for record in caplog.records] == [
        "RIPOSTE_LEASE_SECOND is set but names no setting: it is ignored (did you mean "
        "RIPOSTE_LEASE_SECONDS?)"
    ]


# ---------------------------------------------------------------------------------------------
# Secret files (RIPOSTE_SECRETS_DIR), as docker-compose.yml mounts them in /run/secrets


@pytest.fixture
def secrets_dir(env: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    directory = tmp_path / "secrets"
    directory.mkdir()
    env.setenv("RIPOSTE_SECRETS_DIR", str(directory))
    return directory


def test_a_secret_file_gives_its_setting(secrets_dir: Path) -> None:
    (secrets_dir / "riposte_notify_webhook_url").write_text("https://hooks.example/T0/B0/s\n")
    (secrets_dir / "RIPOSTE_LEASE_SECONDS").write_text("45")  # any case, like the variables

    settings = read_settings()

    assert settings.notify_webhook_url is not None
    assert settings.notify_webhook_url.get_secret_value() == "https://hooks.example/T0/B0/s"
    assert settings.lease_seconds == 45.0
    assert settings.secrets_dir == secrets_dir
    assert settings.warnings() == []


def test_an_empty_secret_file_leaves_its_setting_unset(secrets_dir: Path) -> None:
    (secrets_dir / "riposte_sns_basic_auth").write_text("\n")

    assert read_settings().sns_basic_auth is None


def test_a_setting_given_as_a_variable_and_as_a_file_is_refused(
    env: pytest.MonkeyPatch, secrets_dir: Path
) -> None:
    path = secrets_dir / "riposte_sns_basic_auth"
    path.write_text("sns:from-the-file")

    assert problem(env, RIPOSTE_SNS_BASIC_AUTH="sns:from-the-environment") == (
        f"invalid settings: RIPOSTE_SNS_BASIC_AUTH is given twice, as a variable and as the "
        f"secret file {path}: remove one of them"
    )


def test_a_secrets_dir_that_does_not_exist_is_refused(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert problem(env, RIPOSTE_SECRETS_DIR=str(tmp_path / "nowhere")) == (
        f"invalid settings: RIPOSTE_SECRETS_DIR: {tmp_path / 'nowhere'} does not exist"
    )


def test_a_misnamed_secret_file_is_a_warning_and_other_secrets_are_left_alone(
    secrets_dir: Path,
) -> None:
    (secrets_dir / "riposte_notify_webhook").write_text("https://hooks.example/T0/B0/s")
    (secrets_dir / "postgres_password").write_text("for the database, not for Riposte")
    (secrets_dir / "audit_signing_key.pem").write_text("a key file a setting names")

    settings = read_settings()

    assert settings.notify_webhook_url is None
    assert settings.warnings() == [
        f"the secret file {secrets_dir / 'riposte_notify_webhook'} names no setting: it is "
        "ignored (did you mean riposte_notify_webhook_url?)"
    ]


def test_a_bad_value_in_a_secret_file_names_the_variable_and_the_file(
    env: pytest.MonkeyPatch, secrets_dir: Path
) -> None:
    path = secrets_dir / "riposte_lease_seconds"
    path.write_text("soon")

    assert problem(env).startswith(
        f"invalid settings: RIPOSTE_LEASE_SECONDS (from the secret file {path}): Input should "
        "be a valid number"
    )


# ---------------------------------------------------------------------------------------------
# The database password apart from the URL


def test_the_database_password_goes_into_the_url(
    env: pytest.MonkeyPatch, secrets_dir: Path
) -> None:
    env.setenv("RIPOSTE_DATABASE_URL", "postgresql+psycopg://riposte_app@postgres:5432/riposte")
    (secrets_dir / "riposte_database_password").write_text("p@ss/w:rd%?\n")

    settings = read_settings()

    url = make_url(settings.database_url)
    assert (url.username, url.password, url.host, url.database) == (
        "riposte_app", "p@ss/w:rd%?", "postgres", "riposte")
    # The demo validates the settings it read again with its own: the same URL comes out.
    again = Settings.model_validate({**settings.model_dump(), "ec2_poll_seconds": 0.5})
    assert again.database_url == settings.database_url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:///riposte.db",
         "RIPOSTE_DATABASE_PASSWORD is set but RIPOSTE_DATABASE_URL names a SQLite file, which "
         "takes no password: unset it"),
        ("postgresql+psycopg://riposte_app:other@postgres/riposte",
         "RIPOSTE_DATABASE_URL carries a password and RIPOSTE_DATABASE_PASSWORD gives another: "
         "leave the password out of the URL"),
    ],
    ids=["sqlite", "two-passwords"],
)
def test_a_database_password_the_url_cannot_take_is_refused(
    env: pytest.MonkeyPatch, url: str, message: str
) -> None:
    assert problem(env, RIPOSTE_DATABASE_URL=url, RIPOSTE_DATABASE_PASSWORD="secret") == (
        f"invalid settings: {message}"
    )
