"""Where the triggering addresses are, compared with where the principal usually comes from.

The usual countries are the playbook's ``usual_countries`` when given, else the countries of
the addresses the principal used in the history window before the event (not those first seen
in the last day before it: an intruder's own earlier sign-ins are no baseline).
"""

from __future__ import annotations

from typing import Any

from actions.investigation.activity import NEW_WITHIN
from actions.investigation.catalogue import Assessment, clean, mapping, parse_time, plural, rows
from actions.investigation.sources import Sources, days_text

LOOKED_UP = 20  # history addresses looked up for the usual countries, most used first


# Country names said with "the" ("in the United States").
WITH_THE = {"United States", "United Kingdom", "Netherlands", "Philippines", "Czech Republic",
            "United Arab Emirates", "Bahamas", "Dominican Republic", "Central African Republic",
            "Gambia", "Maldives", "Marshall Islands", "Solomon Islands", "Comoros", "Seychelles"}


def country_name(name: str) -> str:
    """A country's name as a sentence says it: ``the United States``, ``China``."""
    return f"the {name}" if name in WITH_THE else name


def addresses_to_look_up(src: Sources) -> list[str]:
    """The addresses whose place the assessment needs: the event's, then the usual ones."""
    return list(dict.fromkeys([*src.artifacts.source_ips, *baseline_addresses(src)]))


def baseline_addresses(src: Sources) -> list[str]:
    """The principal's addresses from before the event (first seen over a day before it).

    The event's own address is one of them when the principal used it long before: a user at
    their usual office is at home, not abroad.
    """
    moment = src.event_time
    kept = []
    for row in rows(mapping(src.history).get("source_ips")):
        first = parse_time(row.get("first_seen"))
        value = row.get("value")
        if not isinstance(value, str):
            continue
        if first is not None and (moment is None or first <= moment - NEW_WITHIN):
            kept.append(value)
    return kept[:LOOKED_UP]


def country_of(answer: dict[str, Any] | None) -> dict[str, str | None] | None:
    country = mapping(mapping(answer).get("country"))
    code, name = country.get("iso_code"), country.get("name")
    if not code and not name:
        return None
    return {"iso_code": clean(code) or None, "name": clean(name) or None}


def organisation_of(answer: dict[str, Any] | None) -> dict[str, Any] | None:
    asn = mapping(mapping(answer).get("asn"))
    number, organisation = asn.get("number"), asn.get("organization")
    if number is None and not organisation:
        return None
    return {"number": number if isinstance(number, int) else None,
            "name": clean(organisation) or None}


def location(found: Assessment, src: Sources) -> None:
    """Answer where the event's addresses are and whether that is outside the usual countries."""
    ips = list(src.artifacts.source_ips)
    if not ips:
        found.unanswered("source_ip.location", "the triggering events name no source IP")
        return
    missing = [ip for ip in ips if ip not in src.geo]
    if len(missing) == len(ips):
        why = src.geo_error or "no geolocation answer for the address"
        found.unanswered("source_ip.location", f"{', '.join(ips)}: {why}")
        return
    usual, basis, baseline = _usual_countries(src)
    places = []
    for ip in ips:
        if ip not in src.geo:
            continue
        answer = src.geo[ip]
        country = country_of(answer)
        code = (country or {}).get("iso_code")
        owner = clean(answer.get("owner")) or None
        outside = None
        if code and usual:
            outside = code not in usual
        places.append(
            {
                "ip": ip,
                "scope": clean(answer.get("scope")) or None,
                "owner": owner,
                "country": country,
                "organisation": organisation_of(answer),
                "aws_region": clean(mapping(answer.get("aws")).get("region")) or None,
                "outside_usual_countries": outside,
            }
        )
    outside_any = any(p["outside_usual_countries"] for p in places)
    compared = any(p["outside_usual_countries"] is not None for p in places)
    evidence: dict[str, Any] = {
        "addresses": places,
        "usual_countries": sorted(usual),
        "usual_country_names": sorted(_names(src, baseline)),
        "usual_basis": basis,
        "baseline_addresses": baseline,
        "outside": outside_any if compared else None,
        "not_looked_up": missing,
        "window_days": src.window_days,
    }
    found.found(
        "source_ip.location",
        _answer(src, places, usual, basis, baseline),
        evidence,
        "medium" if compared else "low",
        ("unusual" if outside_any else "normal") if compared else None,
    )


def _usual_countries(src: Sources) -> tuple[set[str], str, list[dict[str, Any]]]:
    if src.usual_countries:
        codes = {clean(c).upper() for c in src.usual_countries if clean(c)}
        return codes, "configured", []
    baseline = []
    for ip in baseline_addresses(src):
        country = country_of(src.geo.get(ip))
        if country and country.get("iso_code"):
            baseline.append({"ip": ip, "country": country})
    return {str(mapping(b["country"]).get("iso_code")) for b in baseline}, "history", baseline


def _names(src: Sources, baseline: list[dict[str, Any]]) -> set[str]:
    if src.usual_countries:
        return {clean(c).upper() for c in src.usual_countries if clean(c)}
    return {
        str(mapping(b["country"]).get("name") or mapping(b["country"]).get("iso_code"))
        for b in baseline
    }


def _answer(
    src: Sources,
    places: list[dict[str, Any]],
    usual: set[str],
    basis: str,
    baseline: list[dict[str, Any]],
) -> str:
    sentences = []
    for place in places:
        country = place["country"] or {}
        where = country.get("name") or country.get("iso_code")
        organisation = (place["organisation"] or {}).get("name")
        if place["owner"] == "private":
            sentences.append(f"{place['ip']} is a {place['scope'] or 'private'} address")
            continue
        text = f"{place['ip']} is {'in ' + country_name(where) if where else 'of no known country'}"
        if organisation:
            text += f", routed by {organisation}"
        if place["owner"] == "aws":
            text += " (an AWS address)"
        if place["outside_usual_countries"] is True:
            text += ", outside the countries the principal usually comes from"
        elif place["outside_usual_countries"] is False:
            text += ", inside the countries the principal usually comes from"
        sentences.append(text)
    if basis == "configured" and usual:
        sentences.append(f"the usual countries are configured as {', '.join(sorted(usual))}")
    elif baseline:
        names = ", ".join(country_name(n) for n in sorted(_names(src, baseline)))
        sentences.append(
            f"the principal's {plural(len(baseline), 'address', 'addresses')} of the "
            f"{days_text(src.window_days)} before {'are all' if len(baseline) > 1 else 'is'} "
            f"in {names}"
        )
    else:
        sentences.append("no earlier address of the principal with a known country to compare "
                         "with")
    return "; ".join(sentences) + "."
