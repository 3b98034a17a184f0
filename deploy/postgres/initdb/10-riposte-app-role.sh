#!/bin/sh
# Run once by the postgres image when it initialises an empty data directory (as the owner,
# POSTGRES_USER): the login role the API and the workers connect as. It owns nothing and is
# granted nothing here; `riposte db grant-app-role` (the grant-app-role service) gives it, as
# the owner and after every upgrade, what the application needs: on the audit log, only to
# append (README, "Audit log").
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v role="$RIPOSTE_APP_ROLE" -v password="$RIPOSTE_APP_PASSWORD" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
SQL
