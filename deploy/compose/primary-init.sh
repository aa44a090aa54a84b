#!/bin/sh
# docker-compose: runs once when the primary's data directory is created. Adds the replication
# role and lets the standby connect, then seeds the Mimir schema and data (sandbox/seed.sql).
set -eu
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -v repl_pw="$MIMIR_REPLICATION_PASSWORD" <<'SQL'
CREATE ROLE replicator LOGIN REPLICATION PASSWORD :'repl_pw';
GRANT pg_signal_backend, pg_monitor TO mimir_user;
SQL
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -v articles=20000 -v users=2000 -v activity=50000 -f /mimir/seed.sql
