"""What the log filter redacts: the secrets Riposte was told of, and whatever looks like one in the
lines the HTTP and AWS libraries write at DEBUG (their formats, copied from their source)."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator

import pytest

from core.logs import QUIET_LIBRARIES, REDACTED, configure, keep_secret, redact

SIGNATURE = "0f" * 32


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    """The root logger as `riposte serve` configures it at DEBUG, writing into a buffer."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, {n: logging.getLogger(n).level for n in QUIET_LIBRARIES}
    output = io.StringIO()
    configure("DEBUG")
    [handler] = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(output)
    try:
        yield output
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)


def test_a_kept_url_loses_its_credentials_path_and_query_but_keeps_its_host() -> None:
    url = "https://bot:s3cretPass@hooks.example.com/services/T01/B02/xoxSecret?token=q1w2e3r4"
    keep_secret(url)
    basic = base64.b64encode(b"bot:s3cretPass").decode()
    secrets = ("xoxSecret", "q1w2e3r4", "s3cretPass", basic)
    # Whichever part a library writes alone: the path, the query, the password, the header.
    for part in ("/services/T01/B02/xoxSecret", "token=q1w2e3r4", "s3cretPass", basic):
        said = redact(f"saw {part} here")
        assert not any(secret in said for secret in secrets), said
    assert redact(f"POST {url}") == f"POST https://{REDACTED}@hooks.example.com/{REDACTED}?{REDACTED}"


def test_a_short_path_is_not_kept_so_common_words_stay_readable() -> None:
    keep_secret("http://127.0.0.1:9/hook")
    assert redact("posted a message to the webhook on 127.0.0.1") == (
        "posted a message to the webhook on 127.0.0.1")


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        # httpx, INFO: every request's URL.
        ('HTTP Request: POST https://u:pw123456@hooks.slack.com/services/T0/B0/abcXYZ '
         '"HTTP/1.1 200 OK"', "abcXYZ"),
        ('HTTP Request: POST https://u:pw123456@example.com/x "HTTP/1.1 200 OK"', "pw123456"),
        ("HTTP Request: GET https://example.com/feed?token=tok9876543 ", "tok9876543"),
        ("https://discord.com/api/webhooks/123/discordSecret", "discordSecret"),
        # urllib3, DEBUG: the path and query alone.
        ('https://example.com:443 "POST /v1/x?api_key=k3y9876543&a=1 HTTP/1.1" 200 2',
         "k3y9876543"),
        # botocore, DEBUG: the prepared request's headers.
        ("Sending http request: <AWSPreparedRequest method=POST, url=https://sts.amazonaws.com/, "
         "headers={'X-Amz-Security-Token': b'FQoGZXIvYXdzSession', 'Authorization': "
         "b'AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20240101/us-east-1/sts/aws4_request, "
         f"SignedHeaders=host, Signature={SIGNATURE}'}}>", "FQoGZXIvYXdzSession"),
        ("headers={'Authorization': b'AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/x, "
         f"Signature={SIGNATURE}'}}", SIGNATURE),
        # botocore, DEBUG: the canonical request and the signature.
        ("CanonicalRequest:\nPOST\n/\n\nhost:sts.amazonaws.com\n"
         "x-amz-security-token:FQoGZXIvYXdzSession\n", "FQoGZXIvYXdzSession"),
        (f"Signature:\n{SIGNATURE}", SIGNATURE),
        # botocore, DEBUG: parameters and an STS answer.
        ("Making request with params: {'body': {'Action': 'AssumeRole', "
         "'ExternalId': 'ext-id-secret'}}", "ext-id-secret"),
        ("Response body:\nb'<Credentials><AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey>"
         "wJalrXUtnFEMI</SecretAccessKey><SessionToken>FQoSessionTok</SessionToken>'",
         "wJalrXUtnFEMI"),
        ("<SessionToken>FQoSessionTok</SessionToken>", "FQoSessionTok"),
        ('{"SecretAccessKey": "wJalrXUtnFEMI", "AccessKeyId": "ASIA1"}', "wJalrXUtnFEMI"),
        # Any bearer or basic credentials, and Riposte's tokens wherever they appear.
        ("headers={'authorization': 'Bearer eyJhbGciOi.payload.sig'}", "eyJhbGciOi"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        ("token rip_Zm9vYmFyYmF6cXV4cXV1eA seen", "rip_Zm9vYmFyYmF6cXV4cXV1eA"),
        ("database postgresql+psycopg://riposte:dbPassw0rd@db:5432/riposte", "dbPassw0rd"),
    ],
)
def test_a_secret_shaped_value_is_redacted(line: str, secret: str) -> None:
    assert secret not in redact(line)
    assert REDACTED in redact(line)


@pytest.mark.parametrize(
    "line",
    [
        "run 01a2 waits for approval 01b3 of step contain",
        "posted a message to the webhook on hooks.slack.com",
        "HTTP Request: POST https://iam.amazonaws.com/ \"HTTP/1.1 200 OK\"",
        "created admin token 'pager'; it is not shown again",
        "access key AKIAIOSFODNN7EXAMPLE deactivated",
    ],
)
def test_ordinary_lines_are_left_alone(line: str) -> None:
    assert redact(line) == line


def test_every_record_is_redacted_its_arguments_and_traceback_too(log: io.StringIO) -> None:
    url = "https://hooks.example.com/services/T9/B9/tracebackSecret"
    keep_secret(url)
    logger = logging.getLogger("riposte.test")
    logger.debug("posting to %s with %s", url, {"Authorization": "Bearer rip_abcdefghijklmnop"})
    try:
        raise RuntimeError(f"could not reach {url}")
    except RuntimeError:
        logger.exception("failed")
    written = log.getvalue()
    assert "tracebackSecret" not in written and "rip_abcdefghijklmnop" not in written
    first, second = (json.loads(line) for line in written.splitlines())
    assert first["message"] == (
        f"posting to https://hooks.example.com/{REDACTED} with {{'Authorization': {REDACTED}}}")
    assert f"RuntimeError: could not reach https://hooks.example.com/{REDACTED}" in (
        second["exception"])


def test_the_http_and_aws_libraries_write_only_warnings_whatever_the_level(
    log: io.StringIO,
) -> None:
    for name in QUIET_LIBRARIES:
        assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING
    logging.getLogger("httpx").info("HTTP Request: POST https://example.com/x")
    logging.getLogger("riposte.test").debug("riposte's own debug line")
    assert [json.loads(line)["logger"] for line in log.getvalue().splitlines()] == [
        "riposte.test"]
