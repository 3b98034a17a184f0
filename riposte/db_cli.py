"""``riposte db``: migrate the database and grant the application's role what it needs."""

from __future__ import annotations

from typing import Annotated

import typer

from riposte.database import shown_url
from riposte.user_errors import UserError, load_settings, user_errors

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


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
