#!/bin/sh
# Run once by the postgres image when it initialises an empty data directory (as the owner,
# POSTGRES_USER): the login role the API and the workers connect as. It owns nothing and is
# granted nothing here; `riposte db grant-app-role` (the grant-app-role service) gives it, as
# the owner and after every upgrade, what the application needs: on the audit log, only to
# append (README, "Audit log").
#
# Its password comes from the file RIPOSTE_APP_PASSWORD_FILE names (a compose secret, as the
# image reads POSTGRES_PASSWORD_FILE), or else from RIPOSTE_APP_PASSWORD; never both.
set -eu
if [ -n "${RIPOSTE_APP_PASSWORD_FILE:-}" ]; then
    if [ -n "${RIPOSTE_APP_PASSWORD:-}" ]; then
        echo "error: both RIPOSTE_APP_PASSWORD and RIPOSTE_APP_PASSWORD_FILE are set: give one" >&2
        exit 1
    fi
    # $(...) drops the file's trailing newlines, as the image does with POSTGRES_PASSWORD_FILE.
    RIPOSTE_APP_PASSWORD="$(cat "$RIPOSTE_APP_PASSWORD_FILE")"
fi
if [ -z "${RIPOSTE_APP_PASSWORD:-}" ]; then
    echo "error: the app role's password is empty: write it in the file RIPOSTE_APP_PASSWORD_FILE names" >&2
    exit 1
fi
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v role="$RIPOSTE_APP_ROLE" -v password="$RIPOSTE_APP_PASSWORD" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
SQL
