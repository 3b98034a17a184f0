"""Settings a user can get right: lists as people write them, and errors that name the variable.

Each test sets ``RIPOSTE_*`` variables as a user would and reads the settings as the CLI does
(``read_settings``); the messages asserted are the ones the user sees after ``error: ``.
"""

from __future__ import annotations

import os
from typing import Any, get_origin

import pytest
from hypothesis import given
from hypothesis import strategies as st

from riposte.demo import demo_overrides
from riposte.settings import Settings, SettingsInvalid, env_file_lines, read_settings

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
    [warning] = read_settings().warnings(serving=True)

    assert warning.startswith(
        "RIPOSTE_SNS_TOPICS is empty: POST /v1/webhooks/sns refuses every SNS message (403); "
        "set it to the TopicArn globs of the topics that send to Riposte"
    )
    # Only `riposte serve` has the endpoint: `plan` and `worker` are not told.
    assert read_settings().warnings() == []


def test_serving_with_sns_topics_allowed_is_no_warning(env: pytest.MonkeyPatch) -> None:
    env.setenv("RIPOSTE_SNS_TOPICS", "arn:aws:sns:*:123456789012:riposte-*")

    assert read_settings().warnings(serving=True) == []


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
