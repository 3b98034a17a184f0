"""docker-compose.yml runs Riposte in production, as README's "Deploy to AWS" sets it up.

Settings from .env (.env.example names every setting), secrets from files only, TLS at Caddy,
the API without in-process workers, workers that scale, every image pinned, and commands our
CLI parses. Each test validates the file with docker-compose itself, in a directory laid out as
the README's commands lay it out (they are run here).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from pydantic import SecretStr
from sqlalchemy import make_url
from typer.testing import CliRunner

from core.settings import OTHER_VARIABLES, Settings, env_file_lines, read_settings, variable
from engine.audit_signing import load_private_key, load_public_key
from riposte.cli import app
from tests.deploy_guide import shell_commands

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
RIPOSTE_SERVICES = ("migrate", "grant-app-role", "api", "worker")
DEPLOYMENT_VARIABLES = {"RIPOSTE_VERSION", "RIPOSTE_PUBLIC_HOST"}
# Settings that are secrets: never in .env nor in docker-compose.yml, only in secret files.
SECRET_SETTINGS = {
    name for name, field in Settings.model_fields.items()
    if SecretStr in (field.annotation, *get_args(field.annotation))
}
SECRETS_COMMANDS = "mkdir -m 700 secrets"  # what the README's block of secret files holds
VARIABLE_LINE = re.compile(r"^(# )?(RIPOSTE_[A-Z0-9_]+)=(.*)$")


def lay_out(directory: Path, *, make_secrets: bool = False) -> Path:
    """Lay out what `docker compose` reads, as README's step 1 does: the compose file, deploy/,
    playbooks/, .env from .env.example and, with ``make_secrets``, the secret files its commands
    make (run here as written, but `docker compose` and `curl`)."""
    shutil.copy(REPO_ROOT / "docker-compose.yml", directory)
    shutil.copytree(REPO_ROOT / "deploy", directory / "deploy")
    shutil.copytree(REPO_ROOT / "playbooks", directory / "playbooks")
    shutil.copy(REPO_ROOT / ".env.example", directory)
    commands = shell_commands(SECRETS_COMMANDS)
    skipped = [c for c in commands if c.startswith(("docker compose", "curl"))]
    assert [c.split()[:3] for c in skipped] == [["docker", "compose", "up"],
                                                 ["curl", "-fsS", "https://riposte.example.com/readyz"]]
    run = [c for c in commands if c not in skipped]
    assert not make_secrets or shutil.which("openssl"), "README's secret commands need openssl"
    if not make_secrets:
        run = [c for c in run if c.startswith("cp ")]
    done = subprocess.run(["bash", "-euc", "\n".join(run)], cwd=directory, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, f"README's commands failed:\n{done.stderr}"
    return directory


def compose_config(directory: Path | None = None) -> dict[str, Any]:
    """Return docker-compose's own resolved view of docker-compose.yml with the example .env
    (in ``directory`` laid out by :func:`lay_out`, else in a fresh one)."""
    exe = shutil.which("docker-compose")
    assert exe is not None, (
        "docker-compose is not installed, so docker-compose.yml cannot be validated: "
        "apt-get install -y docker-compose (Debian) or pip install docker-compose"
    )
    with tempfile.TemporaryDirectory() as fresh:
        where = directory or lay_out(Path(fresh))
        result = subprocess.run([exe, "config"], cwd=where, capture_output=True, text=True,
                                timeout=120, check=False)
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    config = yaml.safe_load(result.stdout)
    assert isinstance(config, dict)
    return config


def mounted_secrets(service: dict[str, Any]) -> dict[str, str]:
    """Return a service's secrets: file name in /run/secrets -> the secret it holds."""
    mounted = {}
    for entry in service.get("secrets", []):
        source = entry if isinstance(entry, str) else entry["source"]
        target = source if isinstance(entry, str) else entry.get("target", source)
        mounted[target] = source
    return mounted


@pytest.fixture(scope="module")
def project() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as directory:
        yield lay_out(Path(directory), make_secrets=True)


@pytest.fixture(scope="module")
def services(project: Path) -> dict[str, Any]:
    found: dict[str, Any] = compose_config(project)["services"]
    return found


# ---------------------------------------------------------------------------------------------
# The services


def test_compose_file_runs_postgres_migrations_api_and_scalable_workers(
    services: dict[str, Any],
) -> None:
    assert {"postgres", "migrate", "api", "worker", "caddy"} <= set(services)
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert "pg_isready" in str(services["postgres"]["healthcheck"]["test"])
    # Health that tells the truth: the API's readiness (its database), and each worker's own
    # probe on its metrics port (503 once it stops recording its heartbeat).
    assert "/readyz" in str(services["api"]["healthcheck"]["test"])
    worker_port = services["worker"]["environment"]["RIPOSTE_WORKER_METRICS_PORT"]
    assert f"127.0.0.1:{worker_port}/healthz" in str(services["worker"]["healthcheck"]["test"])
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"}, name
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    # `docker compose up --scale worker=3` needs workers without a fixed name or host port.
    assert "container_name" not in services["worker"]
    assert "ports" not in services["worker"]
    for name in RIPOSTE_SERVICES:
        assert services[name]["environment"]["RIPOSTE_DATABASE_URL"].startswith(
            "postgresql+psycopg://"), name
        assert services[name]["restart"] == ("no" if name in ("migrate", "grant-app-role")
                                             else "unless-stopped"), name
    # The local AWS endpoint only starts for rehearsals.
    assert services["aws"]["profiles"] == ["rehearsal"]


def test_the_api_runs_no_worker_of_its_own_and_only_caddy_reaches_it(
    services: dict[str, Any],
) -> None:
    api = services["api"]

    assert api["command"] == ["serve", "--host", "0.0.0.0", "--workers", "0"]
    assert "ports" not in api  # no host port: the proxy is the way in
    assert api["environment"]["FORWARDED_ALLOW_IPS"] == "*"  # the client address Caddy saw
    assert services["worker"]["command"] == ["worker"]


def test_every_service_command_parses_with_riposte_s_cli() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert 'ENTRYPOINT ["riposte"]' in dockerfile  # a command is riposte's arguments
    services = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]

    for name in RIPOSTE_SERVICES:
        command = services[name]["command"]
        result = CliRunner().invoke(app, [*command, "--help"])
        assert result.exit_code == 0, f"{name}: riposte {' '.join(command)}: {result.output}"


def test_caddy_terminates_tls_for_the_public_host_and_proxies_to_the_api(
    services: dict[str, Any],
) -> None:
    caddy = services["caddy"]
    caddyfile = (REPO_ROOT / "deploy" / "Caddyfile").read_text(encoding="utf-8")

    assert {(port["published"], port["target"]) for port in caddy["ports"]} >= {(80, 80),
                                                                                  (443, 443)}
    assert caddy["environment"]["RIPOSTE_PUBLIC_HOST"] == "riposte.example.com"  # from .env
    assert any(v.endswith("/deploy/Caddyfile:/etc/caddy/Caddyfile:ro") for v in caddy["volumes"])
    assert any(v.startswith("caddy_data:/data") for v in caddy["volumes"])  # certificates kept
    site = re.search(r"^\{\$RIPOSTE_PUBLIC_HOST\} \{\n(.*?)^\}", caddyfile, re.M | re.S)
    assert site is not None, caddyfile
    assert site.group(1).split() == ["reverse_proxy", "api:8000"]
    assert "Application Load Balancer" in caddyfile  # the alternative on AWS, documented
    assert caddy["depends_on"]["api"] == {"condition": "service_healthy"}


def test_the_playbooks_are_a_read_only_volume_the_services_load(
    services: dict[str, Any],
) -> None:
    for name in ("api", "worker"):
        assert any(volume.endswith("/playbooks:/app/playbooks:ro")
                   for volume in services[name]["volumes"]), name
        assert services[name]["environment"]["RIPOSTE_PLAYBOOK_DIR"] == "/app/playbooks"


def test_every_image_is_pinned_to_a_version(services: dict[str, Any]) -> None:
    raw = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())

    for name, service in services.items():
        image = service["image"]
        assert re.fullmatch(r"[\w./-]+:\d+(\.\d+)+", image), f"{name}: {image} is not pinned"
    assert services["postgres"]["image"].startswith("postgres:16.")
    assert services["caddy"]["image"].startswith("caddy:2.")
    assert services["aws"]["image"].startswith("motoserver/moto:5.")
    for name in RIPOSTE_SERVICES:
        assert services[name]["image"] == f"riposte:{VERSION}", name
    # Without .env, our image is still the version of pyproject.toml.
    assert raw["x-riposte"]["image"] == f"riposte:${{RIPOSTE_VERSION:-{VERSION}}}"


# ---------------------------------------------------------------------------------------------
# Secrets


def test_nothing_secret_is_in_the_compose_file_nor_in_the_image(
    project: Path, services: dict[str, Any]
) -> None:
    rendered = yaml.safe_dump(services)
    for path in (project / "secrets").iterdir():
        value = path.read_text(encoding="utf-8").strip()
        if value:
            assert value not in rendered, path.name
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            assert not re.search("PASSWORD|SECRET|TOKEN|KEY$", key) or key.endswith("_FILE") \
                or key in ("RIPOSTE_SECRETS_DIR", "RIPOSTE_AUDIT_SIGNING_KEY"), (name, key)
            assert key not in {variable(setting) for setting in SECRET_SETTINGS}, (name, key)
            if key == "RIPOSTE_DATABASE_URL":
                assert make_url(value).password is None, name
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == (
        "/run/secrets/postgres_password")
    config = compose_config(project)
    assert all(secret["file"] == str(project / "secrets" / Path(secret["file"]).name)
               for secret in config["secrets"].values())
    # The image is built from the work tree (COPY . .): neither .env nor the secrets go in it,
    # and neither is committed.
    for ignore in (".dockerignore", ".gitignore"):
        lines = (REPO_ROOT / ignore).read_text().splitlines()
        assert ".env" in lines and {"secrets", "/secrets/"} & set(lines), ignore


def test_the_readme_makes_every_secret_file_the_compose_file_mounts(
    project: Path, services: dict[str, Any]
) -> None:
    config = compose_config(project)
    secrets = project / "secrets"

    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    for name, secret in config["secrets"].items():
        path = Path(secret["file"])
        assert path.is_file(), f"secret {name}: README makes no {path.name}"
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, name  # the containers' users read it
    for name in ("postgres_password", "riposte_app_password", "riposte_responder_external_id",
                 "riposte_console_secret_key"):
        assert len((secrets / name).read_text().strip()) == 64, name  # 32 random bytes, hex
    load_private_key(secrets / "audit_signing_key.pem")
    load_public_key(project / "audit_signing_key.pub")


def read_as(service: dict[str, Any], project: Path, monkeypatch: pytest.MonkeyPatch,
            container: Path) -> Settings:
    """Read the settings as ``service``'s container would: its environment, and its secrets
    mounted under their names in ``container`` (standing for /run/secrets)."""
    container.mkdir()
    config = compose_config(project)
    for target, source in mounted_secrets(service).items():
        shutil.copy(config["secrets"][source]["file"], container / target)
    for name in list(os.environ):
        if name.upper().startswith("RIPOSTE_"):
            monkeypatch.delenv(name)
    for key, value in service["environment"].items():
        monkeypatch.setenv(key, str(value).replace("/run/secrets", str(container)))
    return read_settings()


def test_the_api_and_the_workers_read_their_secrets_from_files(
    project: Path, services: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secrets = project / "secrets"
    app_password = (secrets / "riposte_app_password").read_text().strip()
    external_id = (secrets / "riposte_responder_external_id").read_text().strip()

    api = read_as(services["api"], project, monkeypatch, tmp_path / "api")
    worker = read_as(services["worker"], project, monkeypatch, tmp_path / "worker")

    for settings in (api, worker):
        url = make_url(settings.database_url)
        assert (url.username, url.password, url.host) == ("riposte_app", app_password, "postgres")
        assert settings.responder_external_id is not None
        assert settings.responder_external_id.get_secret_value() == external_id
        # Empty in README's step 1: no basic auth (the hub's subscription sends none), no webhook.
        assert settings.sns_basic_auth is None and settings.notify_webhook_url is None
    # The console's sessions are signed with a key of the deployment's, not one per process.
    assert api.console_secret_key is not None
    assert "riposte_console_secret_key" not in mounted_secrets(services["worker"])
    assert api.warnings(serving=True) == []
    assert worker.warnings() == []
    assert worker.audit_signing_key is not None
    load_private_key(worker.audit_signing_key)
    assert "audit_signing_key" not in mounted_secrets(services["api"])  # the workers' only


# ---------------------------------------------------------------------------------------------
# .env.example


def example_lines() -> list[str]:
    return (REPO_ROOT / ".env.example").read_text(encoding="utf-8").splitlines()


def example_variables() -> dict[str, tuple[bool, str]]:
    """Return each variable of .env.example: whether it is set (not commented out), its text."""
    found: dict[str, tuple[bool, str]] = {}
    for line in example_lines():
        match = VARIABLE_LINE.match(line)
        if match:
            commented, name, value = match.groups()
            assert name not in found, f".env.example: {name} twice"
            found[name] = (commented is None, value)
    return found


def test_the_env_example_names_every_setting_once_each_after_a_comment() -> None:
    lines = example_lines()

    named = example_variables()

    assert set(named) == {variable(name) for name in Settings.model_fields} | DEPLOYMENT_VARIABLES
    assert DEPLOYMENT_VARIABLES <= set(OTHER_VARIABLES)  # so no start-up warns of them
    for number, line in enumerate(lines):
        if VARIABLE_LINE.match(line):
            comment = lines[number - 1]
            assert comment.startswith("# ") and not VARIABLE_LINE.match(comment), (
                f".env.example line {number + 1}: {line.split('=')[0]} has no comment above it")
            assert len(comment) > 20, f".env.example line {number}: say what it is"
    assert all(len(line) <= 100 for line in lines)


def test_the_env_example_shows_the_default_of_each_setting_it_leaves_commented_out() -> None:
    for name, field in Settings.model_fields.items():
        is_set, text = example_variables()[variable(name)]
        if is_set:
            continue
        default = "" if field.default is None else env_file_lines({name: field.default})[0]
        assert f"{variable(name)}={text}" == (default or f"{variable(name)}="), (
            f".env.example: {variable(name)} should show its default {default!r}")


def test_the_env_example_sets_no_secret_and_reads_as_settings_without_warnings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.upper().startswith("RIPOSTE_"):
            monkeypatch.delenv(name)
    set_here = {name: text for name, (is_set, text) in example_variables().items() if is_set}
    for name, text in set_here.items():
        monkeypatch.setenv(name, text)

    settings = read_settings()

    assert not {variable(name) for name in SECRET_SETTINGS | {"database_password"}} & set(
        set_here)
    # But the console's key, which only a secret file gives (the api service's: tested above).
    assert [warning for warning in settings.warnings(serving=True)
            if not warning.startswith(variable("console_secret_key"))] == []
    assert set_here["RIPOSTE_VERSION"] == VERSION
    assert settings.public_url == f"https://{set_here['RIPOSTE_PUBLIC_HOST']}"
    # The hub stack names its alarm topic after the stack: riposte-hub-alarms.
    assert settings.sns_topics[0].endswith(":riposte-hub-alarms")
