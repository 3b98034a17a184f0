"""Where an address is and who routes it: country, city, ASN, from offline databases only.

- **MaxMind-format files** (``RIPOSTE_GEOIP_DATABASES``: GeoIP2 / GeoLite2 City, Country or
  ASN, DB-IP's, or IPinfo's flat layout), read with ``maxminddb``. Several files combine: each
  answers the fields it knows (a City file the place, an ASN file the network's owner).
- Otherwise **geoip2fast**'s data shipped inside its package (MIT; country and ASN, IPv4 and
  IPv6, built from MaxMind GeoLite2 as of its release): no city, and the ASN's organisation but
  not its number. It is loaded once per process (about half a second and 100 MiB), and only
  from the package's own folder, never from the working directory as its default would.
"""

from __future__ import annotations

import importlib
import ipaddress
import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import maxminddb

from actions.base import ActionError

GEOIP2FAST_DATA = "geoip2fast-asn-ipv6.dat.gz"


def empty_answer() -> dict[str, Any]:
    return {"country": None, "city": None, "asn": None, "network": None}


# --- MaxMind-format files ---------------------------------------------------------------------

_readers: dict[tuple[str, float], Any] = {}
_lock = threading.Lock()


def _reader(path: Path) -> Any:
    try:
        key = (str(path), path.stat().st_mtime)
    except OSError as exc:
        raise _unavailable(path, exc) from exc
    with _lock:
        if key not in _readers:
            try:
                _readers[key] = maxminddb.open_database(str(path))
            # maxminddb's InvalidDatabaseError is a RuntimeError.
            except (OSError, ValueError, RuntimeError) as exc:
                raise _unavailable(path, exc) from exc
        return _readers[key]


def _unavailable(path: Path, exc: BaseException) -> ActionError:
    return ActionError(
        "GeoDatabaseUnavailable",
        f"RIPOSTE_GEOIP_DATABASES names {str(path)!r}, which is not a readable MaxMind-format "
        f"database: {exc}",
        retryable=False,
    )


def mmdb_lookup(paths: Sequence[Path], address: str) -> tuple[dict[str, Any], str]:
    """Look ``address`` up in every file; return the merged answer and the files' names."""
    answer = empty_answer()
    sources = []
    for path in paths:
        reader = _reader(path)
        metadata = reader.metadata()
        sources.append(f"{metadata.database_type} ({path.name}, built {metadata.build_epoch})")
        record, prefix_length = reader.get_with_prefix_len(address)
        if not isinstance(record, dict):
            continue
        found = _read_record(record)
        for key, value in found.items():
            if answer[key] is None and value is not None:
                answer[key] = value
        if found["country"] or found["city"] or found["asn"]:
            answer["network"] = answer["network"] or _network(address, prefix_length)
    return answer, "; ".join(sources)


def _network(address: str, prefix_length: int) -> str:
    return str(ipaddress.ip_network(f"{address}/{prefix_length}", strict=False))


def _read_record(record: dict[str, Any]) -> dict[str, Any]:
    """Read a GeoIP2-layout record (also DB-IP's) or an IPinfo flat one."""
    found = empty_answer()
    country = record.get("country")
    if isinstance(country, dict):  # GeoIP2 / DB-IP
        found["country"] = _country(country.get("iso_code"), _english(country))
    elif isinstance(country, str) or isinstance(record.get("country_code"), str):  # IPinfo
        found["country"] = _country(record.get("country_code"), country)
    if found["country"] is None and isinstance(record.get("registered_country"), dict):
        registered = record["registered_country"]
        found["country"] = _country(registered.get("iso_code"), _english(registered))
    city = record.get("city")
    if isinstance(city, dict):
        found["city"] = _english(city)
    elif isinstance(city, str) and city:
        found["city"] = city
    number = record.get("autonomous_system_number")
    organisation = record.get("autonomous_system_organization")
    if number is None and isinstance(record.get("asn"), str):  # IPinfo: "AS13335"
        digits = record["asn"].upper().removeprefix("AS")
        number = int(digits) if digits.isdigit() else None
        organisation = record.get("as_name")
    if number is not None or organisation:
        found["asn"] = {
            "number": number if isinstance(number, int) else None,
            "organization": organisation if isinstance(organisation, str) else None,
        }
    return found


def _english(place: dict[str, Any]) -> str | None:
    names = place.get("names")
    name = names.get("en") if isinstance(names, dict) else None
    return name if isinstance(name, str) and name else None


def _country(code: object, name: object) -> dict[str, str | None] | None:
    code = code.upper() if isinstance(code, str) and len(code) == 2 and code.isalpha() else None
    name = name if isinstance(name, str) and name else None
    return {"iso_code": code, "name": name} if code or name else None


# --- geoip2fast ------------------------------------------------------------------------------

_geoip2fast: Any = None
_geoip2fast_source = ""


def _load_geoip2fast() -> tuple[Any, str]:
    global _geoip2fast, _geoip2fast_source
    with _lock:
        if _geoip2fast is None:
            # Importing geoip2fast sets PYTHONWARNINGS and PYTHONIOENCODING for the whole
            # process (and its children): put them back. Its source has invalid escape
            # sequences, a warning when compiled, which this must not turn into an error.
            kept = {name: os.environ.get(name) for name in ("PYTHONWARNINGS", "PYTHONIOENCODING")}
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    module = importlib.import_module("geoip2fast")
            finally:
                for name, value in kept.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value
            data = Path(str(module.__file__)).parent / GEOIP2FAST_DATA
            if not data.is_file():
                raise ActionError(
                    "GeoDatabaseUnavailable",
                    f"geoip2fast {module.__version__} has no {GEOIP2FAST_DATA}; set "
                    "RIPOSTE_GEOIP_DATABASES",
                    retryable=False,
                )
            reader = module.GeoIP2Fast(verbose=False, geoip2fast_data_file=str(data))
            info = reader.get_database_info()
            _geoip2fast_source = (
                f"geoip2fast {module.__version__} ({info.get('source_info', GEOIP2FAST_DATA)})"
            )
            _geoip2fast = reader
        return _geoip2fast, _geoip2fast_source


def geoip2fast_lookup(address: str) -> tuple[dict[str, Any], str]:
    """Look ``address`` up in geoip2fast's shipped country and ASN data."""
    reader, source = _load_geoip2fast()
    found = reader.lookup(address)
    answer = empty_answer()
    # "--" stands for a reserved network, or one it does not know.
    code = found.country_code if str(found.country_code).isalpha() else None
    answer["country"] = _country(code, found.country_name) if code else None
    if found.asn_name:
        answer["asn"] = {"number": None, "organization": found.asn_name}
    if code or found.asn_name:
        answer["network"] = found.cidr or found.asn_cidr or None
    return answer, source
