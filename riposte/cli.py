"""The ``riposte`` command: serve, work, validate and rehearse playbooks, administer the store."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from core.settings import Settings
from riposte.approvals_cli import approvals_app
from riposte.aws_cli import aws_app
from riposte.runs_cli import runs_app
from riposte.terminal import fail, valid_playbooks

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from engine.alerts import NormalizedAlert
    from engine.playbooks import LoadedPlaybook
    from engine.rehearsal import RehearsedStep

app = typer.Typer(
    name="riposte",
    help="Automated incident response for AWS: alerts in, playbooks run, everything audited.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.add_typer(audit_app, name="audit")
app.add_typer(approvals_app, name="approvals")
app.add_typer(runs_app, name="runs")
app.add_typer(aws_app, name="aws")


class UserError(Exception):
    """A failure the user can fix: printed as one line, no stack trace, exit status 1."""


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the failures a user can act on into one clear line and a non-zero exit."""
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

    from core.settings import SettingsInvalid
    from engine.store.errors import Conflict, Forbidden, NotFound

    try:
        yield
    except (UserError, Conflict, Forbidden, NotFound) as exc:
        fail(str(exc))
    except SettingsInvalid as exc:  # a setting read late (a worker's signing key, say)
        fail(f"invalid settings: {exc}")
    except (ArgumentError, NoSuchModuleError) as exc:
        fail(f"RIPOSTE_DATABASE_URL is not a usable database URL: {exc}")
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        fail(
            f"database error: {reason} (is the database reachable and migrated? "
            "run `riposte db upgrade`)"
        )


def load_settings() -> Settings:
    """Read the settings from the environment, reporting a bad value by its variable."""
    from core.settings import SettingsInvalid, get_settings

    try:
        return get_settings()
    except SettingsInvalid as exc:
        fail(str(exc))


def log_setting_warnings(settings: Settings, *, serving: bool = False) -> None:
    """Log, once at start-up, each setting that is valid but has no effect, and each RIPOSTE_*
    variable that names no setting."""
    for warning in settings.warnings(serving=serving):
        logging.getLogger("riposte.settings").warning(warning)


def session_factory(settings: Settings) -> sessionmaker[Session]:
    """Return sessions on the configured database."""
    from engine.store.db import make_engine, make_sessionmaker

    return make_sessionmaker(make_engine(settings.database_url))


def shown_url(url: str) -> str:
    """Return a database URL fit for printing: the password masked."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a malformed URL: show nothing of it rather than a secret
        return "<unparsable URL>"


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [RIPOSTE_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [RIPOSTE_PORT].")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=0, help="In-process worker threads; 0 when `riposte worker` processes run runs."
        ),
    ] = 1,
) -> None:
    """Serve the HTTP API (and, by default, one in-process worker)."""
    import uvicorn

    from api.app import create_app
    from core.logs import configure

    settings = load_settings()
    configure(settings.log_level)
    log_setting_warnings(settings, serving=True)
    with user_errors():
        application = create_app(settings, in_process_workers=workers)
    uvicorn.run(
        application,
        host=host or settings.host,
        port=port if port is not None else settings.port,
        log_config=None,
    )


@app.command()
def worker(
    worker_id: Annotated[
        str | None, typer.Option("--id", help="Worker name [RIPOSTE_WORKER_ID]; default host:pid.")
    ] = None,
) -> None:
    """Claim and drive runs until SIGTERM or Ctrl-C.

    Only settings it cannot use stop it, at start-up (exit 1). Any later error is logged and
    counted, and the worker goes on; a database that goes away is waited for.
    """
    from core.logs import configure
    from engine import wakeup
    from engine.worker import Worker
    from riposte.worker_probes import serve_probes

    settings = load_settings()
    configure(settings.log_level)
    log_setting_warnings(settings)
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()
        wakeup.signal()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with user_errors():
        working = Worker(
            sessions=session_factory(settings),
            worker_id=worker_id or settings.worker_id,
            lease_seconds=settings.lease_seconds,
            poll_seconds=settings.worker_poll_seconds,
            approval_expiry=settings.approval_expires_in,
            settings=settings,
        )
    port = settings.worker_metrics_port
    if port is not None:
        try:
            serve_probes(port=port, problem=working.problem)
        except OSError as exc:
            fail(f"RIPOSTE_WORKER_METRICS_PORT: cannot listen on port {port}: "
                 f"{exc.strerror or exc}")
    working.serve(stop)


@app.command()
def validate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Playbook files or directories [default: RIPOSTE_PLAYBOOK_DIR]."),
    ] = None,
) -> None:
    """Check playbooks; print every problem as file:line: step 'id': message."""
    from engine.playbooks import load_all, playbook_files

    targets = paths or [load_settings().playbook_dir]
    if not playbook_files(targets):
        fail(f"no *.yml or *.yaml playbook in {', '.join(str(p) for p in targets)}")
    loaded, problems = load_all(targets)
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        files = len({p.file for p in problems})
        typer.echo(f"{len(problems)} problem(s) in {files} file(s)")
        raise typer.Exit(1)
    typer.echo(f"ok: {len(loaded)} playbooks")


@app.command()
def policy(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Playbook files or directories [default: RIPOSTE_PLAYBOOK_DIR]."),
    ] = None,
    account: Annotated[
        str,
        typer.Option(help="Account id written into the ARNs; '*': any account Riposte acts in."),
    ] = "*",
    partition: Annotated[
        str, typer.Option(help="AWS partition written into the ARNs (aws, aws-cn, aws-us-gov).")
    ] = "aws",
    pass_role: Annotated[
        list[str] | None,
        typer.Option(
            "--pass-role",
            help="A role (name, with its path) whose instance profile relaunched or un-isolated "
            "instances may get back; repeatable [default: any role of the account, to EC2 only].",
        ),
    ] = None,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="Print each statement with its scope, the actions needing it and why, "
            "instead of the JSON.",
        ),
    ] = False,
) -> None:
    """Print the least-privilege IAM policy for the actions these playbooks use."""
    from actions.policy import explanation, policy_document, policy_statements

    settings = load_settings()
    loaded = valid_playbooks(paths or [settings.playbook_dir])
    used = {step.action for book in loaded for step in book.spec.steps}
    statements = policy_statements(
        used, responder_role=settings.responder_role, partition=partition, account=account,
        passed_roles=pass_role or (), trail_bucket=settings.cloudtrail_bucket,
    )
    if explain:
        typer.echo(explanation(statements))
    else:
        typer.echo(json.dumps(policy_document(statements), indent=2))


@app.command()
def plan(
    playbook: Annotated[str, typer.Argument(help="Playbook file, or a playbook's name.")],
    alert_file: Annotated[
        Path,
        typer.Argument(help="Alert JSON: a POST /v1/alerts body or a normalized alert; - = stdin."),
    ],
) -> None:
    """Dry-run a playbook against an alert file, without a database; exit 1 if it would fail."""
    from engine.alerts import trigger_matches
    from engine.rehearsal import rehearse

    settings = load_settings()  # before any step reads them, so a bad value is one clear line
    for warning in settings.warnings():
        typer.echo(f"warning: {warning}", err=True)
    loaded = _playbook_argument(playbook)
    alert = _alert_argument(alert_file)
    spec = loaded.spec
    typer.echo(f"dry run of playbook {spec.name!r} ({loaded.file}) against alert {alert.title!r}")
    typer.echo(
        f"  {alert.source}/{alert.kind} {alert.type or '-'}, severity {alert.severity} "
        f"({alert.severity_label})"
    )
    if spec.trigger is None:
        typer.echo("  note: the playbook has no trigger; only a responder can start it")
    elif not trigger_matches(spec.trigger, alert, is_production=settings.is_production):
        typer.echo("  note: the trigger does not match this alert; it would not start this run")
    # Each step's output is printed below; the actions' own log lines would only repeat it.
    actions_log = logging.getLogger("riposte.action")
    if not actions_log.handlers:  # nor Python's last resort, on stderr
        actions_log.addHandler(logging.NullHandler())
    actions_log.propagate = False
    try:
        steps = rehearse(loaded, alert)
    finally:  # as it was: in a process that goes on (a test's), the actions log again
        actions_log.propagate = True
    for number, step in enumerate(steps, 1):
        _print_rehearsed(number, step)
    reached = {s.id for s in steps}
    skipped_over = [s.id for s in spec.steps if s.id not in reached]
    if skipped_over:
        typer.echo(f"not reached: {', '.join(skipped_over)}")
    final = steps[-1].run_status if steps else "succeeded"
    ending = (steps[-1].run_outcome if steps else None) or final
    left_undone = sum(len(s.left_undone) for s in steps)
    typer.echo(f"result: the run would end {ending}"
               + (f" (succeeded, {left_undone} left undone)" if ending == "partial" else ""))
    if final != "succeeded":
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Option(help="Alembic revision to migrate to.")] = "head",
) -> None:
    """Migrate the database to the latest schema (or to --revision)."""
    from alembic.util.exc import CommandError

    from engine.store.migrate import current, upgrade

    settings = load_settings()
    with user_errors():
        try:
            upgrade(settings.database_url, revision)
        except (CommandError, FileNotFoundError) as exc:
            raise UserError(str(exc)) from exc
        at = current(settings.database_url)
    typer.echo(f"database {shown_url(settings.database_url)} is at revision {at}")


@db_app.command("grant-app-role")
def db_grant_app_role(
    role: Annotated[str, typer.Argument(help="The PostgreSQL role the API and workers use.")],
    print_only: Annotated[
        bool, typer.Option("--print", help="Print the SQL without running it.")
    ] = False,
) -> None:
    """Give the application's role what it needs and no more (run as the owner, PostgreSQL).

    On the audit tables: INSERT and SELECT on audit_events, UPDATE and SELECT on the tail row
    audit_chain (its triggers let it only move forward). Run it again after every upgrade.
    """
    from engine.store.app_role import AppRoleRefused, app_role_grants, grant_app_role
    from engine.store.db import make_engine

    settings = load_settings()
    with user_errors():
        engine = make_engine(settings.database_url)
        try:
            with engine.begin() as connection:
                statements = (app_role_grants(connection, role) if print_only
                              else grant_app_role(connection, role))
        except AppRoleRefused as exc:
            raise UserError(str(exc)) from exc
        finally:
            engine.dispose()
    if print_only:
        typer.echo(";\n".join(statements) + ";")
        return
    typer.echo(f"role {role!r} may now read and write Riposte's tables, and only append to "
               f"the audit log ({len(statements)} statements run)")


MAX_TOKEN_DAYS = 36_500  # a hundred years: any longer is "never", which is said by omission


@token_app.command("create")
def token_create(
    name: Annotated[
        str,
        typer.Option(help="Unique name; it appears in the audit log and in approvals as "
                     "token:<name>. Not a role's name nor one Riposte uses (system, …)."),
    ],
    role: Annotated[str, typer.Option(help="ingest, responder or admin.")],
    expires_in_days: Annotated[
        float | None,
        typer.Option(help="Days until the token stops working (more than 0, at most "
                     f"{MAX_TOKEN_DAYS}); leave it out for a token that never expires."),
    ] = None,
) -> None:
    """Create an API token and print it (only the token on stdout; it is shown once)."""
    from engine.identities import ROLES, token_name_problem
    from engine.store.tokens import create_token
    from engine.store.types import utcnow

    if role not in ROLES:
        fail(f"--role must be one of {', '.join(ROLES)}, not {role!r}")
    if (problem := token_name_problem(name)) is not None:
        fail(f"--name: {problem}")
    # 0 once meant "never expires": now it is refused, and only leaving the option out does.
    if expires_in_days is not None and not 0 < expires_in_days <= MAX_TOKEN_DAYS:
        fail(f"--expires-in-days must be more than 0 and at most {MAX_TOKEN_DAYS}, not "
             f"{expires_in_days:g}; leave it out for a token that never expires")
    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    settings = load_settings()
    with user_errors():
        with session_factory(settings).begin() as session:
            token = create_token(session=session, name=name, role=role, expires_at=expires_at)
    typer.echo(token)
    until = f", expires {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else ""
    typer.echo(f"created {role} token {name!r}{until}; it is not shown again", err=True)


@token_app.command("revoke")
def token_revoke(
    name: Annotated[str, typer.Option(help="Name of the token to revoke.")],
) -> None:
    """Revoke a token: every request with it is refused (401) from now on."""
    from engine.store.tokens import revoke_token

    settings = load_settings()
    with user_errors():
        with session_factory(settings).begin() as session:
            row = revoke_token(session=session, name=name)
            revoked_at = row.revoked_at
    typer.echo(f"token {name!r} revoked at {revoked_at:%Y-%m-%d %H:%M:%S} UTC")


@token_app.command("list")
def token_list() -> None:
    """List tokens: name, role, created, expiry and whether revoked (never the secret)."""
    from engine.store.tokens import list_tokens
    from engine.store.types import utcnow

    settings = load_settings()
    with user_errors():
        with session_factory(settings)() as session:
            rows = list_tokens(session)
            now = utcnow()
            for row in rows:
                if row.revoked_at is not None:
                    state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}"
                elif row.expires_at is not None and row.expires_at <= now:
                    state = f"expired {row.expires_at:%Y-%m-%d %H:%M}"
                elif row.expires_at is not None:
                    state = f"expires {row.expires_at:%Y-%m-%d %H:%M}"
                else:
                    state = "no expiry"
                typer.echo(f"{row.name}\t{row.role}\tcreated {row.created_at:%Y-%m-%d %H:%M}"
                           f"\t{state}")


PublicKeys = Annotated[
    list[Path] | None,
    typer.Option("--public-key", help="Ed25519 public key file (PEM) to check the checkpoints' "
                 "signatures with; repeat it for keys used before a rotation."),
]


@audit_app.command("verify")
def audit_verify(
    public_key: PublicKeys = None,
    export: Annotated[
        Path | None,
        typer.Option(help="Check this export of `riposte audit export` offline, not the "
                     "database (needs --public-key)."),
    ] = None,
) -> None:
    """Recompute the audit log's hash chain and check it; name the first broken row (exit 1).

    The rows must chain, match the tail row (how many events, the newest hash) and, with
    --public-key, every signed checkpoint. Exit 1 too when a key is given but no checkpoint
    signs any row.
    """
    from engine.audit import verify
    from engine.audit_export import verify_export
    from engine.audit_signing import SigningKeyInvalid, load_public_key

    with user_errors():
        try:
            keys = [load_public_key(path) for path in public_key or []]
            if export is not None:
                if not keys:
                    fail("--export needs --public-key: anyone could have written an export's "
                         "rows, only the signatures say they are Riposte's")
                report = verify_export(export, public_keys=keys)
            else:
                settings = load_settings()
                with session_factory(settings)() as session:
                    report = verify(session, public_keys=keys)
        except (SigningKeyInvalid, FileNotFoundError) as exc:
            raise UserError(str(exc)) from exc
    where = f" of export {export}" if export is not None else ""
    if not report.ok:
        if report.first_broken_id is None:
            typer.echo(f"broken{where}: {report.reason}")
        else:
            typer.echo(f"broken{where}: audit row {report.first_broken_id}: {report.reason} "
                       f"({report.checked} rows before it are intact)")
        raise typer.Exit(1)
    typer.echo(f"ok: {report.checked} audit rows{where} checked, the chain is intact")
    if not report.signatures_checked:
        if report.checkpoints:
            typer.echo(f"checkpoints: {report.checkpoints} found, their signatures not checked "
                       "(give --public-key)")
        return
    if report.checked and not report.checkpoints:
        typer.echo("unsigned: no checkpoint signs any row: set RIPOSTE_AUDIT_SIGNING_KEY for "
                   "the workers or run `riposte audit checkpoint`")
        raise typer.Exit(1)
    if report.checkpoints:
        typer.echo(f"signed: {report.checkpoints} checkpoints verified, the newest at row "
                   f"{report.last_checkpoint_id} ({report.last_checkpoint_at}); "
                   f"{report.unsigned} rows after it not signed yet")


@audit_app.command("keygen")
def audit_keygen(
    private_key: Annotated[Path, typer.Argument(help="File for the private key (mode 0600).")],
    public_key: Annotated[
        Path | None, typer.Option(help="File for the public key [default: PRIVATE_KEY.pub].")
    ] = None,
) -> None:
    """Make an Ed25519 key pair to sign audit checkpoints with (never overwrites a file)."""
    from engine.audit_signing import SigningKeyInvalid, generate_key_pair

    public_path = public_key or private_key.with_name(private_key.name + ".pub")
    try:
        key_id = generate_key_pair(private_key, public_path)
    except (SigningKeyInvalid, OSError) as exc:
        fail(str(exc))
    typer.echo(f"key {key_id}: private {private_key}, public {public_path}")
    typer.echo(f"give the workers RIPOSTE_AUDIT_SIGNING_KEY={private_key} (not the database "
               f"host); keep {public_path} where verifiers can trust it", err=True)


@audit_app.command("checkpoint")
def audit_checkpoint(
    key: Annotated[
        Path | None,
        typer.Option(help="Private key file [default: RIPOSTE_AUDIT_SIGNING_KEY]."),
    ] = None,
) -> None:
    """Sign a checkpoint of the audit chain now (nothing to do if nothing was appended)."""
    from engine.audit_checkpoints import write_checkpoint
    from engine.audit_signing import CheckpointMalformed, SigningKeyInvalid, load_private_key

    settings = load_settings()
    path = key or settings.audit_signing_key
    if path is None:
        fail("no key: give --key FILE or set RIPOSTE_AUDIT_SIGNING_KEY (make one with "
             "`riposte audit keygen`)")
    with user_errors():
        try:
            signing_key = load_private_key(path)
            with session_factory(settings).begin() as session:
                written = write_checkpoint(session, key=signing_key, actor="cli")
        except (SigningKeyInvalid, CheckpointMalformed) as exc:
            raise UserError(str(exc)) from exc
    if written is None:
        typer.echo("nothing appended since the newest checkpoint: none written")
        return
    checkpoint = written.checkpoint
    typer.echo(f"checkpoint at audit row {written.event_id}: signs {checkpoint.rows} events "
               f"ending in hash {checkpoint.tail} (key {checkpoint.key_id})")


@audit_app.command("export")
def audit_export(
    directory: Annotated[Path, typer.Argument(help="New or empty directory to write into.")],
) -> None:
    """Write every audit row and every signed checkpoint as files, to keep or check offline."""
    from engine.audit_export import EVENTS_FILE, ExportRefused, export_log

    settings = load_settings()
    with user_errors():
        try:
            with session_factory(settings)() as session:
                exported = export_log(session, directory)
        except (ExportRefused, OSError) as exc:
            raise UserError(str(exc)) from exc
    typer.echo(f"exported {exported.rows} audit rows to {directory / EVENTS_FILE} and "
               f"{exported.checkpoints} signed checkpoints to {directory / 'checkpoints'}")


@app.command()
def schema() -> None:
    """Print the playbook JSON Schema (make schema writes it to playbooks/schema.json)."""
    from engine.schema import render_schema

    sys.stdout.write(render_schema())


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port to serve on; a free one if it is busy.")] = 8000,
    keep_serving: Annotated[
        bool,
        typer.Option(
            help="Keep serving until Ctrl-C once the story is told; --no-keep-serving exits "
            "then (status 1 if the run did not succeed)."
        ),
    ] = True,
    auto_approve: Annotated[
        bool,
        typer.Option(
            help="Approve the containment as the demo's approver token; without it the demo "
            "prints the `riposte approvals approve` command and waits for you."
        ),
    ] = False,
    routine: Annotated[
        bool,
        typer.Option(
            help="Play a planned decommission instead of the attack: same terminations, by a "
            "principal acting as its week shows (office, working hours, MFA)."
        ),
    ] = False,
) -> None:
    """Play the seed's mass-termination case on a local AWS: detect, investigate, contain."""
    from riposte.demo import DemoFailed, run_demo

    settings = load_settings()
    # Only these: the demo sets the settings its story needs, whatever the others say.
    for warning in settings.unknown_variables():
        typer.echo(f"warning: {warning}", err=True)
    with user_errors():
        try:
            status = run_demo(settings=settings, port=port, keep_serving=keep_serving,
                              auto_approve=auto_approve, routine=routine)
        except DemoFailed as exc:
            raise UserError(f"demo: {exc}") from exc
    raise typer.Exit(status)


def _playbook_argument(argument: str) -> LoadedPlaybook:
    from engine.playbooks import PlaybookInvalid, load_all, load_file

    path = Path(argument)
    if path.exists():
        try:
            return load_file(path)
        except PlaybookInvalid as exc:
            for problem in exc.problems:
                typer.echo(str(problem), err=True)
            fail(f"{argument} is not a valid playbook (`riposte validate {argument}`)")
    directory = load_settings().playbook_dir
    loaded, _problems = load_all([directory]) if directory.is_dir() else ({}, [])
    if argument in loaded:
        return loaded[argument]
    known = f" (playbooks in {directory}: {', '.join(sorted(loaded))})" if loaded else ""
    fail(f"no playbook file or playbook named {argument!r}{known}")


def _alert_argument(path: Path) -> NormalizedAlert:
    from api.schemas import AlertIn
    from engine.alerts import NormalizedAlert

    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read the alert file: {exc}")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{path}:{exc.lineno}: not JSON: {exc.msg}")
    if not isinstance(document, dict):
        fail(f"{path}: an alert is a JSON object")
    try:
        # A stored, normalized alert carries its severity label; a POST /v1/alerts body does not.
        if "severity_label" in document:
            return NormalizedAlert.model_validate(document)
        return AlertIn.model_validate(document).normalized()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'alert'}: {e['msg']}" for e in exc.errors()
        )
        fail(f"{path}: not an alert (a POST /v1/alerts body or a normalized alert): {problems}")


def _print_rehearsed(number: int, step: RehearsedStep) -> None:
    verdict = {"succeeded": "would run", "skipped": "skipped (when is false)"}.get(
        step.status, "would fail"
    )
    typer.echo(f"{number}. {step.id} [{step.action}]: {verdict}")
    if step.approval:
        typer.echo(f"   {step.approval}")
    if step.params is not None:
        typer.echo(f"   params: {_compact(step.params)}")
    planned = _planned_calls(step.output)
    if planned is not None:
        typer.echo("   planned calls:" if planned else "   planned calls: none")
        for call in planned:
            target = f" on {call['target']}" if call.get("target") else ""
            typer.echo(
                f"     {call['service']}.{call['operation']}({_compact(call.get('params', {}))})"
                f"{target}"
            )
    elif step.output is not None:
        typer.echo(f"   output: {_compact(step.output)}")
    for source, why in _unread_sources(step.output).items():
        typer.echo(f"   not read: {source} ({why}); answers drawn from this step may be incomplete")
    if step.error:
        typer.echo(f"   error: {step.error['code']}: {step.error['message']}")
    for item in step.left_undone:
        typer.echo(f"   would leave undone: {item['target']}: {item['reason']}")


def _planned_calls(output: Any) -> list[dict[str, Any]] | None:
    outputs = output if isinstance(output, list) else [output]
    if not outputs or not all(isinstance(o, dict) and "planned" in o for o in outputs):
        return None
    return [call for o in outputs for call in o["planned"]]


def _unread_sources(output: Any) -> dict[str, str]:
    """The sources a step could not read though it went on with the others (the CloudTrail
    actions' ``sources``: ``{"read": false, "error": …}``)."""
    sources = output.get("sources") if isinstance(output, dict) else None
    if not isinstance(sources, dict):
        return {}
    return {
        str(name): f"{report['error'].get('code')}: {report['error'].get('message')}"
        for name, report in sources.items()
        if isinstance(report, dict) and report.get("read") is False
        and isinstance(report.get("error"), dict)
    }


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


if __name__ == "__main__":
    app()
