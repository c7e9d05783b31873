#!/bin/sh
# docker-compose.yml, the primary's first start (/docker-entrypoint-initdb.d): the role the streaming
# replica connects as, and the pg_hba.conf line letting it (and only it) open a replication connection.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" --set role="$REPLICATION_USER" \
  --set password="$REPLICATION_PASSWORD" <<'SQL'
CREATE ROLE :"role" WITH REPLICATION LOGIN PASSWORD :'password';
SQL
echo "host replication $REPLICATION_USER all scram-sha-256" >> "$PGDATA/pg_hba.conf"
