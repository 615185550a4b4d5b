#!/usr/bin/env bash
# Start, stop or inspect the project's own PgBouncer in transaction mode, in
# front of the local PostgreSQL (127.0.0.1:5432, database `test`, user
# `postgres`, trust authentication), used by the pooler tests and `.ci/run`:
#
#   clients --> PgBouncer 127.0.0.1:6432 (pool_mode = transaction) --> PostgreSQL :5432
#
# Debian's `pgbouncer` package is installed if missing. The configuration,
# log and pid file live under $COALESCE_PGBOUNCER_DIR (default
# /tmp/coalesce-pgbouncer); the system's own /etc/pgbouncer is not used and
# the server on 5432 is never touched. The port can be moved with
# COALESCE_PGBOUNCER_PORT.
#
#   scripts/pgbouncer.sh start    # start (or reuse) it; print its URL
#   scripts/pgbouncer.sh status   # one line; exit 1 if it is not answering
#   scripts/pgbouncer.sh stop     # stop it
#
# `start` prints `export COALESCE_PGBOUNCER_URL=…` on stdout (progress goes
# to stderr), so `eval "$(scripts/pgbouncer.sh start)"` sets up a shell. The
# URL carries `pooler=transaction`, the option that makes coalesce send no
# named prepared statements (docs/scale-out.md, "Poolers").
set -euo pipefail

ROOT=${COALESCE_PGBOUNCER_DIR:-/tmp/coalesce-pgbouncer}
PORT=${COALESCE_PGBOUNCER_PORT:-6432}
UPSTREAM_HOST=127.0.0.1
UPSTREAM_PORT=5432
DATABASE=test
DB_USER=postgres
# Server connections per (database, user): the pooler tests open more
# sessions than this one after another to show that named statements collide
# (crates/sql/tests/pooler.rs), so keep it well under their 64.
POOL_SIZE=20
WAIT_SECONDS=30

CONFIG=$ROOT/pgbouncer.ini
PIDFILE=$ROOT/pgbouncer.pid
LOGFILE=$ROOT/pgbouncer.log

log() { echo "pgbouncer: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=lib/ports.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/ports.sh"

# PgBouncer refuses to run as root: as root, run it as the postgres system
# user (there with the local PostgreSQL); as anyone else, as that user.
if [[ $(id -u) == 0 ]]; then RUN_USER=postgres; else RUN_USER=$(id -un); fi

as_user() {
    if [[ $(id -u) == 0 ]]; then runuser -u "$RUN_USER" -- "$@"; else "$@"; fi
}

pgbouncer_bin() {
    command -v pgbouncer 2>/dev/null || { [[ -x /usr/sbin/pgbouncer ]] && echo /usr/sbin/pgbouncer; }
}

install() {
    [[ -n $(pgbouncer_bin) ]] && return 0
    [[ $(id -u) == 0 ]] || die "pgbouncer is not installed, and only root can install it (apt-get install pgbouncer)"
    log "installing Debian's pgbouncer package"
    # The package's own service (on /etc/pgbouncer) is not used; stopped
    # below if its installation started it, so it holds no port.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgbouncer >&2 ||
        { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgbouncer >&2; }
    if command -v service >/dev/null 2>&1; then service pgbouncer stop >/dev/null 2>&1 || true; fi
    [[ -n $(pgbouncer_bin) ]] || die "apt-get installed no pgbouncer binary"
}

# Whether our instance is running (its pid file names a live pgbouncer) and
# answers on its port.
running() {
    [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null &&
        pg_isready -q -h 127.0.0.1 -p "$PORT" -d "$DATABASE" -U "$DB_USER"
}

write_config() {
    mkdir -p "$ROOT"
    chown "$RUN_USER" "$ROOT" 2>/dev/null || true
    chmod 755 "$ROOT"
    # trust: PostgreSQL trusts 127.0.0.1 too; the user must still be listed.
    echo "\"$DB_USER\" \"\"" >"$ROOT/userlist.txt"
    cat >"$CONFIG" <<CONF
[databases]
$DATABASE = host=$UPSTREAM_HOST port=$UPSTREAM_PORT dbname=$DATABASE user=$DB_USER

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PORT
unix_socket_dir =
auth_type = trust
auth_file = $ROOT/userlist.txt
admin_users = $DB_USER
pool_mode = transaction
default_pool_size = $POOL_SIZE
max_client_conn = 2000
logfile = $LOGFILE
pidfile = $PIDFILE
CONF
    chown "$RUN_USER" "$CONFIG" "$ROOT/userlist.txt" 2>/dev/null || true
}

start() {
    install
    if running; then
        log "reusing the one running on :$PORT"
        return 0
    fi
    reclaim_port "$PORT" "$ROOT" || die "something else listens on 127.0.0.1:$PORT: set COALESCE_PGBOUNCER_PORT"
    if pg_isready -q -h 127.0.0.1 -p "$PORT" 2>/dev/null; then
        die "something else answers on 127.0.0.1:$PORT: set COALESCE_PGBOUNCER_PORT"
    fi
    pg_isready -q -h "$UPSTREAM_HOST" -p "$UPSTREAM_PORT" ||
        die "PostgreSQL is not answering on $UPSTREAM_HOST:$UPSTREAM_PORT"
    write_config
    rm -f "$PIDFILE"
    log "starting on :$PORT (transaction pooling of $UPSTREAM_HOST:$UPSTREAM_PORT/$DATABASE)"
    # -d: daemonize; 9>&-: the daemon must not inherit the lock.
    as_user "$(pgbouncer_bin)" -d "$CONFIG" 9>&- || die "failed to start; see $LOGFILE"
    for ((i = 0; i < WAIT_SECONDS * 5; i++)); do
        if running; then return 0; fi
        sleep 0.2
    done
    die "not answering after ${WAIT_SECONDS}s; see $LOGFILE"
}

stop() {
    if [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        local pid
        pid=$(cat "$PIDFILE")
        kill -INT "$pid"
        for ((i = 0; i < WAIT_SECONDS * 5; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        log "stopped"
    elif reclaim_port "$PORT" "$ROOT"; then
        log "not running"
    fi
}

mkdir -p "$ROOT"
# One invocation at a time: two concurrent starts would start it twice.
exec 9>"$ROOT/lock"
flock 9

case ${1:-} in
    start)
        start
        echo "export COALESCE_PGBOUNCER_URL=postgres://$DB_USER@127.0.0.1:$PORT/$DATABASE?pooler=transaction"
        ;;
    stop) stop ;;
    status)
        if running; then
            echo "pgbouncer :$PORT up (pool_mode = transaction, $UPSTREAM_HOST:$UPSTREAM_PORT/$DATABASE)"
        else
            echo "pgbouncer :$PORT down"
            exit 1
        fi
        ;;
    *)
        echo "usage: $0 start|stop|status" >&2
        exit 2
        ;;
esac
