#!/usr/bin/env bash
# Start, stop or inspect the project's own replicated database pairs, used by
# the read-replica tests and by `.ci/run`:
#
#   PostgreSQL 15 primary (55432) --streaming replication--> hot standby (55433)
#   MariaDB primary       (33306) --GTID replication-------> replica     (33307)
#
# They are separate server processes with their own data directories under
# $COALESCE_REPLICAS_DIR (default /tmp/coalesce-replicas); the servers on
# 5432/3306 are never touched. Ports can be moved with the variables below.
#
#   scripts/replicas.sh start    # start (or reuse, or rebuild) all four; print URLs
#   scripts/replicas.sh status   # one line per server; exit 1 if any is not ready
#   scripts/replicas.sh stop     # stop all four cleanly, keeping their data
#
# `start` prints `export COALESCE_…_URL=…` lines on stdout (progress goes to
# stderr), so `eval "$(scripts/replicas.sh start)"` sets up a shell.
set -euo pipefail

ROOT=${COALESCE_REPLICAS_DIR:-/tmp/coalesce-replicas}
PG_PRIMARY_PORT=${COALESCE_PG_PRIMARY_PORT:-55432}
PG_REPLICA_PORT=${COALESCE_PG_REPLICA_PORT:-55433}
MY_PRIMARY_PORT=${COALESCE_MYSQL_PRIMARY_PORT:-33306}
MY_REPLICA_PORT=${COALESCE_MYSQL_REPLICA_PORT:-33307}
PG_BIN=${COALESCE_PG_BIN:-/usr/lib/postgresql/15/bin}
WAIT_SECONDS=30

PG_PRIMARY=$ROOT/pg/primary
PG_REPLICA=$ROOT/pg/replica
MY_PRIMARY=$ROOT/mariadb/primary
MY_REPLICA=$ROOT/mariadb/replica
MY_TEMPLATE=$ROOT/mariadb/template

log() { echo "replicas: $*" >&2; }
# shellcheck source=lib/ports.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/ports.sh"
die() { log "$*"; exit 1; }

# PostgreSQL refuses to run as root and MariaDB should not: as root, run the
# servers as their system users; as anyone else, as that user.
if [[ $(id -u) == 0 ]]; then
    PG_USER=postgres
    MY_USER=mysql
else
    PG_USER=$(id -un)
    MY_USER=$(id -un)
fi

as_pg() {
    if [[ $(id -u) == 0 ]]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi
}

# Poll a probe command once per 0.2 s until it succeeds or WAIT_SECONDS pass.
wait_until() { # description, probe command...
    local what=$1; shift
    local tries=$((WAIT_SECONDS * 5))
    for ((i = 0; i < tries; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    log "$what: not ready after ${WAIT_SECONDS}s"
    return 1
}

# An instance directory owned by the server's user (the server writes its
# socket, pid and log files next to its data).
make_instance_dir() { # dir, owner
    rm -rf "$1"
    mkdir -p "$1"
    chown "$2" "$1" 2>/dev/null || true
    chmod 700 "$1"
}

# ---------------------------------------------------------------- PostgreSQL

pg_sql() { # instance dir, port, sql  -> unaligned, tuples only
    as_pg "$PG_BIN/psql" -h "$1" -p "$2" -U postgres -d postgres -Atqc "$3"
}

pg_running() { # instance dir, port
    [[ -f $1/data/PG_VERSION ]] &&
        as_pg "$PG_BIN/pg_ctl" -D "$1/data" status >/dev/null 2>&1 &&
        as_pg "$PG_BIN/pg_isready" -q -h "$1" -p "$2"
}

pg_start() { # instance dir, port
    # 9>&-: the server must not inherit the lock (it would hold it for as
    # long as it runs, and the next invocation would wait forever).
    as_pg "$PG_BIN/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t "$WAIT_SECONDS" \
        -o "-p $2 -k $1" start >/dev/null 9>&-
}

pg_stop() { # instance dir
    if [[ -f $1/data/postmaster.pid ]]; then
        as_pg "$PG_BIN/pg_ctl" -D "$1/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
}

pg_system_id() { # instance dir
    as_pg "$PG_BIN/pg_controldata" "$1/data" 2>/dev/null |
        sed -n 's/^Database system identifier: *//p'
}

pg_create_primary() {
    log "PostgreSQL primary: initdb in $PG_PRIMARY"
    reclaim_port "$PG_PRIMARY_PORT" "$ROOT" || die "something else listens on :$PG_PRIMARY_PORT"
    make_instance_dir "$PG_PRIMARY" "$PG_USER"
    as_pg "$PG_BIN/initdb" -D "$PG_PRIMARY/data" -U postgres --auth=trust \
        --no-sync --no-instructions >/dev/null
    # Loopback only; the default wal_level (replica) and max_wal_senders (10)
    # already allow streaming. fsync=off: a throw-away test cluster.
    cat >>"$PG_PRIMARY/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_PRIMARY'
fsync = off
shared_buffers = 32MB
wal_keep_size = 256MB
CONF
    pg_start "$PG_PRIMARY" "$PG_PRIMARY_PORT"
    pg_sql "$PG_PRIMARY" "$PG_PRIMARY_PORT" "CREATE DATABASE test" >/dev/null
}

pg_create_replica() {
    log "PostgreSQL replica: pg_basebackup -R into $PG_REPLICA"
    reclaim_port "$PG_REPLICA_PORT" "$ROOT" || die "something else listens on :$PG_REPLICA_PORT"
    make_instance_dir "$PG_REPLICA" "$PG_USER"
    as_pg "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PG_PRIMARY_PORT" -U postgres \
        -D "$PG_REPLICA/data" -R -X stream -c fast --no-sync
    # Later settings win: the copied configuration names the primary's socket.
    cat >>"$PG_REPLICA/data/postgresql.conf" <<CONF
unix_socket_directories = '$PG_REPLICA'
hot_standby = on
CONF
    pg_start "$PG_REPLICA" "$PG_REPLICA_PORT"
}

pg_streaming() {
    [[ $(pg_sql "$PG_PRIMARY" "$PG_PRIMARY_PORT" \
        "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") -ge 1 ]] &&
        [[ $(pg_sql "$PG_REPLICA" "$PG_REPLICA_PORT" "SELECT pg_is_in_recovery()") == t ]]
}

pg_ensure() {
    local recreated_primary=false
    if ! pg_running "$PG_PRIMARY" "$PG_PRIMARY_PORT"; then
        if [[ -f $PG_PRIMARY/data/PG_VERSION ]] && pg_start "$PG_PRIMARY" "$PG_PRIMARY_PORT" 2>/dev/null; then
            log "PostgreSQL primary: restarted"
        else
            pg_stop "$PG_REPLICA"
            pg_create_primary
            recreated_primary=true
        fi
    fi
    # A replica copied from an earlier primary can never follow this one.
    if $recreated_primary || [[ $(pg_system_id "$PG_REPLICA") != "$(pg_system_id "$PG_PRIMARY")" ]]; then
        pg_stop "$PG_REPLICA"
        pg_create_replica
    elif ! pg_running "$PG_REPLICA" "$PG_REPLICA_PORT"; then
        pg_start "$PG_REPLICA" "$PG_REPLICA_PORT" 2>/dev/null || {
            pg_stop "$PG_REPLICA"
            pg_create_replica
        }
    fi
    # A test that paused replay and then died must not leave it paused.
    pg_sql "$PG_REPLICA" "$PG_REPLICA_PORT" \
        "SELECT pg_wal_replay_resume() WHERE pg_get_wal_replay_pause_state() <> 'not paused'" >/dev/null
    if ! wait_until "PostgreSQL replication" pg_streaming; then
        log "PostgreSQL replica: not streaming, rebuilding it"
        pg_stop "$PG_REPLICA"
        pg_create_replica
        wait_until "PostgreSQL replication" pg_streaming || die "see $PG_REPLICA/server.log"
    fi
    log "PostgreSQL: primary :$PG_PRIMARY_PORT streaming to replica :$PG_REPLICA_PORT"
}

pg_status() {
    local ok=0
    for instance in "primary $PG_PRIMARY $PG_PRIMARY_PORT" "replica $PG_REPLICA $PG_REPLICA_PORT"; do
        read -r role dir port <<<"$instance"
        if pg_running "$dir" "$port"; then echo "postgres $role :$port up"; else echo "postgres $role :$port down"; ok=1; fi
    done
    if [[ $ok == 0 ]] && pg_streaming; then
        echo "postgres replication streaming, replay $(pg_sql "$PG_REPLICA" "$PG_REPLICA_PORT" "SELECT pg_get_wal_replay_pause_state()")"
    else
        echo "postgres replication not streaming"; ok=1
    fi
    return $ok
}

# ------------------------------------------------------------------- MariaDB

my_sql() { # instance dir, sql
    mariadb --no-defaults --socket="$1/mysqld.sock" -u root -N -B -e "$2"
}

my_running() { # instance dir
    [[ -S $1/mysqld.sock ]] &&
        mariadb-admin --no-defaults --socket="$1/mysqld.sock" -u root ping >/dev/null 2>&1
}

my_start() { # instance dir, port, server id
    local owner=()
    [[ $(id -u) == 0 ]] && owner=(--user="$MY_USER")
    setsid mariadbd --no-defaults "${owner[@]}" \
        --datadir="$1/data" --socket="$1/mysqld.sock" --pid-file="$1/mysqld.pid" \
        --log-error="$1/server.log" --port="$2" --bind-address=127.0.0.1 \
        --skip-name-resolve --server-id="$3" --log-bin="$1/data/binlog" \
        --relay-log="$1/data/relay" --binlog-format=ROW --gtid-strict-mode=1 \
        --innodb-buffer-pool-size=64M --innodb-flush-log-at-trx-commit=2 \
        </dev/null >/dev/null 2>&1 9>&- &
    disown
    wait_until "MariaDB on :$2" my_running "$1"
}

my_stop() { # instance dir
    if my_running "$1"; then
        mariadb-admin --no-defaults --socket="$1/mysqld.sock" -u root shutdown >/dev/null 2>&1 || true
    elif [[ -f $1/mysqld.pid ]]; then
        kill "$(cat "$1/mysqld.pid")" 2>/dev/null || true
    fi
    # Shutdown returns before the process has gone; wait for the pid file.
    wait_until "MariaDB in $1 to stop" test ! -e "$1/mysqld.pid" || true
}

# System tables made once; each instance starts from a copy (a copy takes
# milliseconds, mariadb-install-db seconds).
my_template() {
    [[ -f $MY_TEMPLATE/data/mysql/user.frm || -f $MY_TEMPLATE/data/mysql/global_priv.frm ]] && return 0
    log "MariaDB: mariadb-install-db into $MY_TEMPLATE"
    make_instance_dir "$MY_TEMPLATE" "$MY_USER"
    local owner=()
    [[ $(id -u) == 0 ]] && owner=(--user="$MY_USER")
    mariadb-install-db --no-defaults "${owner[@]}" --datadir="$MY_TEMPLATE/data" \
        --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve >/dev/null
}

my_create() { # instance dir, port
    reclaim_port "$2" "$ROOT" || die "something else listens on :$2"
    my_template
    make_instance_dir "$1" "$MY_USER"
    cp -a "$MY_TEMPLATE/data" "$1/data"
}

my_create_primary() {
    log "MariaDB primary: new instance in $MY_PRIMARY"
    my_create "$MY_PRIMARY" "$MY_PRIMARY_PORT"
    date +%s%N >"$MY_PRIMARY/identity"
    my_start "$MY_PRIMARY" "$MY_PRIMARY_PORT" 1
    # Loopback TCP logins for the tests and the replica, without a password.
    my_sql "$MY_PRIMARY" "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
        GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
        CREATE DATABASE IF NOT EXISTS test"
}

my_create_replica() {
    log "MariaDB replica: new instance in $MY_REPLICA"
    my_create "$MY_REPLICA" "$MY_REPLICA_PORT"
    cp "$MY_PRIMARY/identity" "$MY_REPLICA/identity"
    my_start "$MY_REPLICA" "$MY_REPLICA_PORT" 2
    # Both started from the same system tables, so replaying the primary's
    # whole binary log (empty slave_pos) reproduces everything made since.
    my_sql "$MY_REPLICA" "SET GLOBAL gtid_slave_pos = '';
        CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = $MY_PRIMARY_PORT,
            MASTER_USER = 'root', MASTER_PASSWORD = '', MASTER_CONNECT_RETRY = 1,
            MASTER_USE_GTID = slave_pos;
        START SLAVE"
}

my_slave_field() { # field name
    mariadb --no-defaults --socket="$MY_REPLICA/mysqld.sock" -u root -E -e "SHOW SLAVE STATUS" |
        sed -n "s/^ *$1: //p"
}

my_replicating() {
    [[ $(my_slave_field Slave_IO_Running) == Yes && $(my_slave_field Slave_SQL_Running) == Yes ]]
}

my_ensure() {
    local recreated_primary=false
    if ! my_running "$MY_PRIMARY"; then
        if [[ -d $MY_PRIMARY/data/mysql ]] && my_start "$MY_PRIMARY" "$MY_PRIMARY_PORT" 1 2>/dev/null; then
            log "MariaDB primary: restarted"
        else
            my_stop "$MY_PRIMARY"
            my_stop "$MY_REPLICA"
            my_create_primary
            recreated_primary=true
        fi
    fi
    if $recreated_primary || ! cmp -s "$MY_PRIMARY/identity" "$MY_REPLICA/identity"; then
        my_stop "$MY_REPLICA"
        my_create_replica
    elif ! my_running "$MY_REPLICA"; then
        my_start "$MY_REPLICA" "$MY_REPLICA_PORT" 2 2>/dev/null || {
            my_stop "$MY_REPLICA"
            my_create_replica
        }
    fi
    # A test that stopped the SQL thread and then died must not leave it stopped.
    my_sql "$MY_REPLICA" "START SLAVE" 2>/dev/null || true
    if ! wait_until "MariaDB replication" my_replicating; then
        log "MariaDB replica: not replicating ($(my_slave_field Last_Error)), rebuilding it"
        my_stop "$MY_REPLICA"
        my_create_replica
        wait_until "MariaDB replication" my_replicating || die "see $MY_REPLICA/server.log"
    fi
    log "MariaDB: primary :$MY_PRIMARY_PORT replicating to replica :$MY_REPLICA_PORT"
}

my_status() {
    local ok=0
    for instance in "primary $MY_PRIMARY $MY_PRIMARY_PORT" "replica $MY_REPLICA $MY_REPLICA_PORT"; do
        read -r role dir port <<<"$instance"
        if my_running "$dir"; then echo "mariadb $role :$port up"; else echo "mariadb $role :$port down"; ok=1; fi
    done
    if [[ $ok == 0 ]] && my_replicating; then
        echo "mariadb replication running, replica at $(my_sql "$MY_REPLICA" "SELECT @@gtid_slave_pos")"
    else
        echo "mariadb replication not running"; ok=1
    fi
    return $ok
}

# ---------------------------------------------------------------------------

print_urls() {
    echo "export COALESCE_PG_PRIMARY_URL=postgres://postgres@127.0.0.1:$PG_PRIMARY_PORT/test"
    echo "export COALESCE_PG_REPLICA_URL=postgres://postgres@127.0.0.1:$PG_REPLICA_PORT/test"
    echo "export COALESCE_MYSQL_PRIMARY_URL=mysql://root@127.0.0.1:$MY_PRIMARY_PORT/test"
    echo "export COALESCE_MYSQL_REPLICA_URL=mysql://root@127.0.0.1:$MY_REPLICA_PORT/test"
}

mkdir -p "$ROOT/pg" "$ROOT/mariadb"
chmod 755 "$ROOT" "$ROOT/pg" "$ROOT/mariadb"
# One invocation at a time: two concurrent starts would build the same
# instance twice.
exec 9>"$ROOT/lock"
flock 9

case ${1:-} in
    start)
        pg_ensure
        my_ensure
        print_urls
        ;;
    stop)
        pg_stop "$PG_REPLICA"
        pg_stop "$PG_PRIMARY"
        my_stop "$MY_REPLICA"
        my_stop "$MY_PRIMARY"
        # Servers whose directories were removed while they ran.
        for port in "$PG_PRIMARY_PORT" "$PG_REPLICA_PORT" "$MY_PRIMARY_PORT" "$MY_REPLICA_PORT"; do
            reclaim_port "$port" "$ROOT" || true
        done
        log "stopped (data kept in $ROOT)"
        ;;
    status)
        status=0
        pg_status || status=1
        my_status || status=1
        exit $status
        ;;
    *)
        echo "usage: $0 start|stop|status" >&2
        exit 2
        ;;
esac
