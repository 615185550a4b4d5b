#!/usr/bin/env bash
# Start or stop a scratch PostgreSQL whose processes may run only on some of
# the machine's CPUs (default: the last one), for benchmarks that separate
# the database's CPU from the client's, as a database on its own host is:
#
#   scripts/confined-postgres.sh start        # PostgreSQL on the last CPU, 127.0.0.1:55434
#   scripts/confined-postgres.sh start 0,1    # or on the CPUs listed (taskset syntax)
#   scripts/confined-postgres.sh stop         # stop it and delete its data
#
# `start` prints `export COALESCE_CONFINED_PG_URL=…` on stdout (progress goes
# to stderr). Every server process inherits the postmaster's CPU list. The
# data directory lives under $COALESCE_CONFINED_PG_DIR (default
# /tmp/coalesce-confined-pg); the servers on 5432/3306 are never touched.
# Not used by the tests: docs/BENCHMARKS.md, "The database on a core of its
# own", shows what it measures.
set -euo pipefail

ROOT=${COALESCE_CONFINED_PG_DIR:-/tmp/coalesce-confined-pg}
PORT=${COALESCE_CONFINED_PG_PORT:-55434}
PG_BIN=${COALESCE_PG_BIN:-/usr/lib/postgresql/15/bin}
DATA=$ROOT/data

log() { echo "confined-postgres: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=lib/ports.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/ports.sh"

# PostgreSQL refuses to run as root: as root, run it as its system user.
if [[ $(id -u) == 0 ]]; then PG_USER=postgres; else PG_USER=$(id -un); fi
as_pg() {
    if [[ $(id -u) == 0 ]]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi
}

stop() {
    if [[ -f $DATA/postmaster.pid ]]; then
        as_pg "$PG_BIN/pg_ctl" -D "$DATA" stop -m fast -w >/dev/null 2>&1 || true
    fi
    reclaim_port "$PORT" "$ROOT" || true
    rm -rf "$ROOT"
}

start() { # cpus
    local cpus=$1
    stop
    reclaim_port "$PORT" "$ROOT" || die "something else listens on 127.0.0.1:$PORT: set COALESCE_CONFINED_PG_PORT"
    mkdir -p "$ROOT"
    chown "$PG_USER" "$ROOT" 2>/dev/null || true
    as_pg "$PG_BIN/initdb" -D "$DATA" -A trust -U postgres >/dev/null ||
        die "initdb failed"
    log "starting on :$PORT, confined to CPUs $cpus"
    as_pg taskset -c "$cpus" "$PG_BIN/pg_ctl" -D "$DATA" -l "$ROOT/log" -w \
        -o "-p $PORT -k $ROOT -c listen_addresses=127.0.0.1" start >/dev/null ||
        die "failed to start; see $ROOT/log"
}

case ${1:-} in
    start)
        start "${2:-$(($(nproc) - 1))}"
        echo "export COALESCE_CONFINED_PG_URL=postgres://postgres@127.0.0.1:$PORT/postgres"
        ;;
    stop) stop ;;
    *)
        echo "usage: $0 start [CPUS]|stop" >&2
        exit 2
        ;;
esac
