"""Where SNS signing certificates may come from, and when one is refused."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from engine.sns import (
    CertificateStore,
    SnsSignatureInvalid,
    SnsUrlRefused,
    check_aws_url,
    check_certificate_url,
    parse_sns_message,
    verify,
)
from tests.sns_keys import (
    CERT_FILE_NAME,
    CERT_URL,
    default_identity,
    make_identity,
    notification,
    sign,
)


class RecordingFetch:
    """A fetch function that serves one PEM and remembers every URL it was asked for."""

    def __init__(self, pem: bytes = b"") -> None:
        self.pem = pem or default_identity().certificate_pem
        self.urls: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, url: str) -> bytes:
        with self._lock:
            self.urls.append(url)
        return self.pem


FORBIDDEN_CERT_URLS = [
    f"http://sns.us-east-1.amazonaws.com/{CERT_FILE_NAME}",
    f"https://sns.us-east-1.amazonaws.com.evil.com/{CERT_FILE_NAME}",
    f"https://sns.us-east-1.amazonaws.com.cn.evil.com/{CERT_FILE_NAME}",
    f"https://evil.com/sns.us-east-1.amazonaws.com/{CERT_FILE_NAME}",
    f"https://user@sns.us-east-1.amazonaws.com/{CERT_FILE_NAME}",
    f"https://sns.us-east-1.amazonaws.com@evil.com/{CERT_FILE_NAME}",
    f"https://sns.us-east-1.amazonaws.com:8443/{CERT_FILE_NAME}",
    f"https://sns.us-east-1.amazonaws.com:443/{CERT_FILE_NAME}",
    f"https://sns.us-east-1.amazonaws.com./{CERT_FILE_NAME}",
    f"https://s3.amazonaws.com/sns/{CERT_FILE_NAME}",
    f"https://sns.s3-us-west-2.amazonaws.com/{CERT_FILE_NAME}",  # a bucket named "sns"
    f"https://sns.s3.amazonaws.com/{CERT_FILE_NAME}",
    f"https://sns.amazonaws.com/{CERT_FILE_NAME}",
    f"https://evilsns.us-east-1.amazonaws.com/{CERT_FILE_NAME}",
    f"https://sqs.us-east-1.amazonaws.com/{CERT_FILE_NAME}",
    f"https://sns.us-east-1.amazonaws.com\\@evil.com/{CERT_FILE_NAME}",
    f"https://sns.us-east-1.amazonaws.com /{CERT_FILE_NAME}",
    f"https://sns.us-east-1.amazonaws.com/{CERT_FILE_NAME}\n",
    f"https://sns.us-east-1.amazonaws.com/{CERT_FILE_NAME}?x=1",
    f"https://sns.us-east-1.amazonaws.com/{CERT_FILE_NAME}#frag",
    f"https://sns.us-east-1.amazonaws.com/{CERT_FILE_NAME}.txt",
    "https://sns.us-east-1.amazonaws.com/cert.pem.exe",
    "https://sns.us-east-1.amazonaws.com/",
    "https://sns.us-east-1.amazonaws.com/..pem",
    f"https://sns.ü-east-1.amazonaws.com/{CERT_FILE_NAME}",
    f"ftp://sns.us-east-1.amazonaws.com/{CERT_FILE_NAME}",
    f"//sns.us-east-1.amazonaws.com/{CERT_FILE_NAME}",
    CERT_FILE_NAME,
    "",
]


@pytest.mark.parametrize("url", FORBIDDEN_CERT_URLS)
def test_forbidden_certificate_url_is_refused_without_a_request(url: str) -> None:
    fetch = RecordingFetch()
    store = CertificateStore(fetch=fetch)

    with pytest.raises(SnsUrlRefused, match="SigningCertURL"):
        store.public_key(url)
    message = parse_sns_message(json.dumps(sign(notification(), cert_url=url)))
    with pytest.raises(SnsUrlRefused):
        verify(message, store)

    assert fetch.urls == []


@pytest.mark.parametrize(
    "url",
    [
        CERT_URL,
        f"https://sns.us-gov-west-1.amazonaws.com/{CERT_FILE_NAME}",
        f"https://sns.cn-north-1.amazonaws.com.cn/{CERT_FILE_NAME}",
        f"https://sns.ap-southeast-2.amazonaws.com/{CERT_FILE_NAME}",
        f"https://SNS.EU-WEST-1.AMAZONAWS.COM/{CERT_FILE_NAME}",
    ],
)
def test_certificate_url_on_an_sns_host_is_accepted(url: str) -> None:
    assert check_certificate_url(url) == url


def test_subscribe_url_on_an_sns_host_is_accepted() -> None:
    url = (
        "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription"
        "&TopicArn=arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37"
    )
    assert check_aws_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription",
        "https://sns.us-west-2.amazonaws.com.evil.com/?Action=ConfirmSubscription",
        "https://a:b@sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription",
        "https://sns.us-west-2.amazonaws.com:444/?Action=ConfirmSubscription",
        "https://169.254.169.254/latest/meta-data/",
        "https://localhost/?Action=ConfirmSubscription",
    ],
)
def test_subscribe_url_off_an_sns_host_is_refused(url: str) -> None:
    with pytest.raises(SnsUrlRefused, match="SubscribeURL"):
        check_aws_url(url)


def test_pinned_directory_serves_the_certificate_and_never_fetches(tmp_path: Path) -> None:
    (tmp_path / CERT_FILE_NAME).write_bytes(default_identity().certificate_pem)
    fetch = RecordingFetch()
    store = CertificateStore(cert_dir=tmp_path, fetch=fetch)

    verify(parse_sns_message(json.dumps(sign(notification()))), store)

    assert fetch.urls == []


def test_missing_pinned_certificate_is_refused_naming_the_file_and_directory(
    tmp_path: Path,
) -> None:
    fetch = RecordingFetch()
    store = CertificateStore(cert_dir=tmp_path, fetch=fetch)

    with pytest.raises(SnsSignatureInvalid) as refused:
        store.public_key(CERT_URL)

    assert CERT_FILE_NAME in str(refused.value)
    assert str(tmp_path) in str(refused.value)
    assert fetch.urls == []


def test_certificate_is_fetched_once_and_then_served_from_cache() -> None:
    fetch = RecordingFetch()
    store = CertificateStore(fetch=fetch)
    message = parse_sns_message(json.dumps(sign(notification())))

    verify(message, store)
    verify(message, store)
    store.public_key(CERT_URL)

    assert fetch.urls == [CERT_URL]


def test_concurrent_lookups_all_get_the_key() -> None:
    fetch = RecordingFetch()
    store = CertificateStore(fetch=fetch)
    message = parse_sns_message(json.dumps(sign(notification())))
    failures: list[Exception] = []

    def verify_once() -> None:
        try:
            verify(message, store)
        except Exception as exc:  # collected and asserted on below
            failures.append(exc)

    threads = [threading.Thread(target=verify_once) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert 1 <= len(fetch.urls) <= 16
    store.public_key(CERT_URL)
    assert len(set(fetch.urls)) == 1


def test_expired_certificate_is_refused() -> None:
    now = datetime.now(UTC)
    expired = make_identity(not_before=now - timedelta(days=30), not_after=now - timedelta(days=1))
    store = CertificateStore(fetch=RecordingFetch(expired.certificate_pem))
    message = parse_sns_message(json.dumps(sign(notification(), expired)))

    with pytest.raises(SnsSignatureInvalid, match="expired"):
        verify(message, store)


def test_not_yet_valid_certificate_is_refused() -> None:
    now = datetime.now(UTC)
    future = make_identity(not_before=now + timedelta(days=1), not_after=now + timedelta(days=30))
    store = CertificateStore(fetch=RecordingFetch(future.certificate_pem))

    with pytest.raises(SnsSignatureInvalid, match="not valid before"):
        store.public_key(CERT_URL)


def test_cached_certificate_is_refused_once_it_expires() -> None:
    now = datetime.now(UTC)
    clock_now = [now]
    store = CertificateStore(fetch=RecordingFetch(), clock=lambda: clock_now[0])
    store.public_key(CERT_URL)

    clock_now[0] = now + timedelta(days=400)

    with pytest.raises(SnsSignatureInvalid, match="expired"):
        store.public_key(CERT_URL)


def test_certificate_not_issued_to_sns_is_refused_unless_the_check_is_off() -> None:
    stranger = make_identity(common_name="evil.example.com")
    message = parse_sns_message(json.dumps(sign(notification(), stranger)))

    with pytest.raises(SnsSignatureInvalid, match="evil.example.com"):
        verify(message, CertificateStore(fetch=RecordingFetch(stranger.certificate_pem)))
    verify(
        message,
        CertificateStore(fetch=RecordingFetch(stranger.certificate_pem), common_name=None),
    )


def test_check_of_the_common_name_accepts_a_custom_pattern() -> None:
    local = make_identity(common_name="sns.test.local")
    store = CertificateStore(
        fetch=RecordingFetch(local.certificate_pem), common_name=re.compile(r"sns\.test\.local")
    )
    verify(parse_sns_message(json.dumps(sign(notification(), local))), store)


def test_garbage_instead_of_a_certificate_is_refused() -> None:
    store = CertificateStore(fetch=RecordingFetch(b"<html>Access Denied</html>"))

    with pytest.raises(SnsSignatureInvalid, match="not a PEM certificate"):
        store.public_key(CERT_URL)


def test_certificate_without_an_rsa_key_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM)

    with pytest.raises(SnsSignatureInvalid, match="RSA"):
        CertificateStore(fetch=RecordingFetch(pem)).public_key(CERT_URL)


def test_failed_fetch_is_a_refusal_and_is_retried_next_time() -> None:
    calls: list[str] = []

    def unreachable(url: str) -> bytes:
        calls.append(url)
        raise OSError("network is unreachable")

    store = CertificateStore(fetch=unreachable)

    for _ in range(2):
        with pytest.raises(SnsSignatureInvalid, match="network is unreachable"):
            store.public_key(CERT_URL)
    assert calls == [CERT_URL, CERT_URL]
