#!/bin/sh
# docker-compose: the DR standby. On first start it clones the primary with pg_basebackup (-R
# writes the standby configuration), then runs PostgreSQL as a hot standby.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA" && chown postgres:postgres "$PGDATA" && chmod 700 "$PGDATA"
  PGPASSWORD="$MIMIR_REPLICATION_PASSWORD" gosu postgres pg_basebackup -h postgres-primary -U replicator \
    -D "$PGDATA" -X stream -R -C -S mimir_dr -c fast
fi
exec gosu postgres postgres -c hot_standby=on
