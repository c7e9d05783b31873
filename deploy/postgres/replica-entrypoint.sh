#!/bin/bash
# docker-compose.yml, postgres-replica: on an empty volume, clone the primary with pg_basebackup
# (-R: standby.signal and primary_conninfo, so it starts as a hot standby streaming from the primary);
# then the image's own entrypoint runs PostgreSQL as usual. Failover is manual: promote the replica
# (`docker compose exec postgres-replica psql -U postgres -c 'SELECT pg_promote()'`) and point the
# services' *_DATABASE_URL at it.
set -euo pipefail
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"
  chown postgres:postgres "$PGDATA"
  chmod 0700 "$PGDATA"
  until gosu postgres pg_isready --host "$PRIMARY_HOST" --port 5432 --quiet; do
    echo "waiting for the primary $PRIMARY_HOST"
    sleep 2
  done
  gosu postgres env PGPASSWORD="$REPLICATION_PASSWORD" pg_basebackup --host "$PRIMARY_HOST" --port 5432 \
    --username "$REPLICATION_USER" --pgdata "$PGDATA" --wal-method stream --checkpoint fast --write-recovery-conf \
    --no-password
fi
exec docker-entrypoint.sh "$@"
