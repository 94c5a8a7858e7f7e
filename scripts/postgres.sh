#!/usr/bin/env bash
# Make a PostgreSQL server available for the tests and print its admin URL on stdout.
#   1. one already listening on 127.0.0.1:5432 (trust auth, user postgres) is used;
#   2. else an installed but stopped Debian cluster is started (pg_ctlcluster);
#   3. else a throwaway instance is initialised in $VAULT_PG_STATE_DIR on port 55432.
# PostgreSQL is installed from Debian's packages first when it is missing and we are root.
set -euo pipefail
log() { echo "postgres.sh: $*" >&2; }
ready() { pg_isready -q -h 127.0.0.1 -p "$1" 2>/dev/null; }

if ready 5432 && psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
  echo "postgresql://postgres@127.0.0.1:5432/postgres"; exit 0
fi
if ! command -v pg_ctlcluster >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { log "PostgreSQL is not installed"; exit 1; }
  log "installing PostgreSQL from Debian's packages"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends postgresql postgresql-client >&2
fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ] && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
  ver=$(ls /etc/postgresql | sort -V | tail -1)
  log "starting the Debian cluster $ver/main"
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start >&2 2>&1 || true
  for _ in $(seq 1 30); do ready 5432 && break; sleep 0.5; done
  if ready 5432 && psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
    echo "postgresql://postgres@127.0.0.1:5432/postgres"; exit 0
  fi
fi
# Throwaway instance (initdb refuses to run as root: use the postgres user).
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
state=${VAULT_PG_STATE_DIR:-/tmp/ofpra-vault-pg}
port=${VAULT_PG_PORT:-55432}
if ! ready "$port"; then
  log "starting a throwaway PostgreSQL in $state on port $port"
  run_as=()
  if [ "$(id -u)" = 0 ]; then run_as=(setpriv --reuid=postgres --regid=postgres --init-groups); fi
  if [ ! -f "$state/PG_VERSION" ]; then
    mkdir -p "$state"; [ "$(id -u)" = 0 ] && chown postgres:postgres "$state"
    "${run_as[@]}" "$bin/initdb" -D "$state" -U postgres -A trust >/dev/null
  fi
  "${run_as[@]}" "$bin/pg_ctl" -D "$state" -l "$state/server.log" -w \
    -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=on" start >&2
fi
echo "postgresql://postgres@127.0.0.1:$port/postgres"
