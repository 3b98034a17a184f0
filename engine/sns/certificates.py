"""Get the certificate SNS signed a message with: only from an SNS host, cached, or pinned."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.x509.oid import NameOID

from engine.sns.errors import SnsSignatureInvalid, SnsUrlRefused

# The region is spelled out (us-east-1, us-gov-west-1, cn-north-1) rather than "any label":
# a looser pattern such as [a-z0-9-]{3,} also admits legacy S3 endpoints like
# sns.s3-us-west-2.amazonaws.com, where anyone can serve a bucket named "sns".
SNS_HOST = re.compile(r"sns\.[a-z]{2}(?:-[a-z]+)+-\d{1,2}\.amazonaws\.com(?:\.cn)?")
CERTIFICATE_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.pem")
# CN of the certificates SNS signs with (sns.amazonaws.com); the regional and .cn forms are
# admitted because AWS does not document the China partition's certificate.
SNS_COMMON_NAME = re.compile(r"sns(?:\.[a-z0-9-]+)?\.amazonaws\.com(?:\.cn)?")
MAX_CERTIFICATE_BYTES = 64 * 1024
FETCH_TIMEOUT_SECONDS = 5.0
MAX_CACHED_CERTIFICATES = 32

FetchCertificate = Callable[[str], bytes]
Clock = Callable[[], datetime]


def check_aws_url(url: str, *, field: str = "SubscribeURL") -> str:
    """Return the URL if it is https on an Amazon SNS host, else raise SnsUrlRefused."""
    # Control characters, spaces, backslashes and non-ASCII are parsed differently by different
    # URL parsers; an SNS URL never holds them.
    if not url.isascii() or not url.isprintable() or " " in url or "\\" in url:
        raise SnsUrlRefused(f"{field} {url!r} holds characters no Amazon SNS URL contains")
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise SnsUrlRefused(f"{field} {url!r} is not https")
    if "@" in parts.netloc:
        raise SnsUrlRefused(f"{field} {url!r} carries credentials; Amazon SNS URLs never do")
    if not SNS_HOST.fullmatch(parts.netloc.lower()):
        raise SnsUrlRefused(
            f"{field} {url!r} is not on an Amazon SNS host "
            "(https://sns.<region>.amazonaws.com or .amazonaws.com.cn, no port)"
        )
    return url


def check_certificate_url(url: str) -> str:
    """Return SigningCertURL if it names a .pem file on an Amazon SNS host, else refuse it."""
    check_aws_url(url, field="SigningCertURL")
    parts = urlsplit(url)
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise SnsUrlRefused(f"SigningCertURL {url!r} must not carry a query or fragment")
    if not CERTIFICATE_FILE_NAME.fullmatch(certificate_file_name(url)):
        raise SnsUrlRefused(f"SigningCertURL {url!r} does not name a .pem file")
    return url


def certificate_file_name(url: str) -> str:
    """Return the last path segment of a certificate URL: its file name in a pinned directory."""
    return urlsplit(url).path.rsplit("/", 1)[-1]


def fetch_certificate_over_https(url: str) -> bytes:
    """Download a certificate; callers pass only URLs that check_certificate_url accepted."""
    try:
        # No redirects: a redirect could leave the SNS host the URL rule vouched for.
        with httpx.stream("GET", url, timeout=FETCH_TIMEOUT_SECONDS) as response:
            if response.status_code != 200:
                raise SnsSignatureInvalid(
                    f"fetching SigningCertURL {url!r} answered HTTP {response.status_code}"
                )
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_CERTIFICATE_BYTES:
                    raise SnsSignatureInvalid(
                        f"SigningCertURL {url!r} sent more than {MAX_CERTIFICATE_BYTES} bytes"
                    )
            return body
    except httpx.HTTPError as exc:
        raise SnsSignatureInvalid(f"could not fetch SigningCertURL {url!r}: {exc}") from exc


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CertificateStore:
    """Signing certificates by URL: fetched once and cached, or read from a pinned directory.

    With ``cert_dir`` set nothing is ever fetched: the certificate must already be a file in that
    directory, named like the URL's last path segment (networks with no egress pin them there).
    Safe to share between threads.
    """

    def __init__(
        self,
        *,
        cert_dir: Path | None = None,
        fetch: FetchCertificate = fetch_certificate_over_https,
        common_name: re.Pattern[str] | None = SNS_COMMON_NAME,
        clock: Clock = _utc_now,
    ) -> None:
        self._cert_dir = cert_dir
        self._fetch = fetch
        self._common_name = common_name
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, x509.Certificate] = {}

    def public_key(self, url: str) -> RSAPublicKey:
        """Return the RSA key of the certificate at url, refusing it unless SNS could own it."""
        check_certificate_url(url)
        with self._lock:
            certificate = self._cache.get(url)
        if certificate is None:
            certificate = self._load(url)
            with self._lock:
                if len(self._cache) >= MAX_CACHED_CERTIFICATES:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[url] = certificate
        # Checked on every use: a cached certificate can expire while the process runs.
        self._check_validity(url, certificate)
        key = certificate.public_key()
        if not isinstance(key, RSAPublicKey):
            raise SnsSignatureInvalid(f"certificate {url!r} does not hold an RSA key")
        return key

    def _load(self, url: str) -> x509.Certificate:
        pem = self._read_pinned(url) if self._cert_dir is not None else self._fetch_remote(url)
        try:
            certificate = x509.load_pem_x509_certificate(pem)
        except ValueError as exc:
            raise SnsSignatureInvalid(
                f"certificate {url!r} is not a PEM certificate: {exc}"
            ) from exc
        self._check_common_name(url, certificate)
        return certificate

    def _read_pinned(self, url: str) -> bytes:
        assert self._cert_dir is not None
        path = self._cert_dir / certificate_file_name(url)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise SnsSignatureInvalid(
                f"certificate {path.name} for {url!r} is not in the pinned directory "
                f"{self._cert_dir} (RIPOSTE_SNS_CERT_DIR); download it from that URL and put it "
                "there, nothing is fetched while a directory is pinned"
            ) from exc
        except OSError as exc:
            raise SnsSignatureInvalid(f"cannot read pinned certificate {path}: {exc}") from exc

    def _fetch_remote(self, url: str) -> bytes:
        try:
            return self._fetch(url)
        except (httpx.HTTPError, OSError) as exc:
            raise SnsSignatureInvalid(f"could not fetch SigningCertURL {url!r}: {exc}") from exc

    def _check_common_name(self, url: str, certificate: x509.Certificate) -> None:
        if self._common_name is None:
            return
        names = [
            attribute.value
            for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        ]
        if not any(isinstance(n, str) and self._common_name.fullmatch(n) for n in names):
            raise SnsSignatureInvalid(
                f"certificate {url!r} is issued to {names or 'no common name'}, "
                "not to Amazon SNS (sns.amazonaws.com)"
            )

    def _check_validity(self, url: str, certificate: x509.Certificate) -> None:
        now = self._clock()
        if now < certificate.not_valid_before_utc:
            raise SnsSignatureInvalid(
                f"certificate {url!r} is not valid before {certificate.not_valid_before_utc}"
            )
        if now > certificate.not_valid_after_utc:
            raise SnsSignatureInvalid(
                f"certificate {url!r} expired on {certificate.not_valid_after_utc}"
            )
