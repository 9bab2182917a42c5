#!/bin/sh
# Creates and migrates Temporal's two PostgreSQL databases with
# temporal-sql-tool, the way Temporal's compose examples do (the
# auto-setup image is no longer recommended). Safe to run again: "create"
# of an existing database fails harmlessly and update-schema is idempotent.
set -eu
: "${POSTGRES_SEEDS:?POSTGRES_SEEDS is required}"
: "${POSTGRES_USER:?POSTGRES_USER is required}"
port=${DB_PORT:-5432}
schema=/etc/temporal/schema/postgresql/v12

nc -z -w 10 "$POSTGRES_SEEDS" "$port"
for db in temporal temporal_visibility; do
  dir=temporal
  [ "$db" = temporal_visibility ] && dir=visibility
  sql() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -u "$POSTGRES_USER" -p "$port" --db "$db" "$@"; }
  sql create || echo "database $db exists"
  sql setup-schema -v 0.0 || echo "schema of $db exists"
  sql update-schema -d "$schema/$dir/versioned"
done
echo "PostgreSQL schema setup complete"
