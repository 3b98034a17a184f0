"""``riposte audit``: verify the audit log's chain, sign checkpoints, export it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from riposte.database import session_factory
from riposte.terminal import fail
from riposte.user_errors import UserError, load_settings, user_errors

audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)

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
