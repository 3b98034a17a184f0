"""Verify that an SNS message was signed by Amazon SNS."""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from engine.sns.certificates import CertificateStore
from engine.sns.errors import SnsSignatureInvalid
from engine.sns.messages import SnsMessage

# SignatureVersion 1 is SHA1withRSA, 2 is SHA256withRSA, both PKCS#1 v1.5.
HASH_OF_VERSION: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}


def verify(message: SnsMessage, store: CertificateStore) -> None:
    """Raise SnsSignatureInvalid unless message carries a valid Amazon SNS signature."""
    algorithm = HASH_OF_VERSION.get(message.signature_version)
    if algorithm is None:
        raise SnsSignatureInvalid(
            f"SNS message {message.message_id}: SignatureVersion "
            f"{message.signature_version!r} is not supported (expected '1' or '2')"
        )
    try:
        signature = base64.b64decode(message.signature, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SnsSignatureInvalid(
            f"SNS message {message.message_id}: Signature is not base64 ({exc})"
        ) from exc
    key = store.public_key(message.signing_cert_url)
    try:
        key.verify(signature, message.string_to_sign(), padding.PKCS1v15(), algorithm())
    except InvalidSignature as exc:
        raise SnsSignatureInvalid(
            f"SNS message {message.message_id}: signature does not match its content "
            f"(certificate {message.signing_cert_url})"
        ) from exc
