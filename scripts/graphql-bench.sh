#!/usr/bin/env bash
# The GraphQL example service (examples/graphql) under HTTP load, in its
# three modes, on PostgreSQL: prints one Markdown table.
#
#   scripts/graphql-bench.sh [POSTGRES_URL]
#
# POSTGRES_URL defaults to postgres://postgres@127.0.0.1:5432/test. Knobs:
# DURATION (seconds measured per row, default 20), WARMUP (seconds of
# unmeasured load before each row, default 3), CONNECTIONS (default
# "1 16 64"), MODES (default "naive async-graphql coalesce"), POOL_SIZE
# (database connections of the service, default 10).
#
# It builds the service in release, starts each mode on a free loopback
# port (the service creates and seeds its own tables, named with a prefix
# unique to this run), and for each connection count drives each mode in
# turn (so a machine whose background load drifts treats the modes alike)
# with wrk (installed from Debian's packages if missing), POSTing the fixed
# query set in turn (`coalesce-graphql queries`: a list page with nested
# fan-out, a detail page, a shallow list). It stops what it started,
# dropping its tables, on any exit.
#
# Columns: requests/s, p50 and p99 latency as wrk measures them over the
# mix; statements and CPU per GraphQL request as the service counts them
# (`GET /stats`); service CPU from /proc/<pid>/stat; db CPU is that of the
# PostgreSQL backends serving the service's own pool (found by
# application_name in pg_stat_activity), not the whole cluster's, so other
# users of a shared server do not count.
set -euo pipefail
cd "$(dirname "$0")/.."

url=${1:-postgres://postgres@127.0.0.1:5432/test}
duration=${DURATION:-20}
warmup=${WARMUP:-3}
connections=${CONNECTIONS:-1 16 64}
modes=${MODES:-naive async-graphql coalesce}
pool_size=${POOL_SIZE:-10}

case $url in
    postgres://* | postgresql://*) ;;
    *) echo "usage: $0 [postgres://...] (the benchmark measures PostgreSQL)" >&2; exit 2 ;;
esac
for tool in psql curl getconf; do
    command -v "$tool" >/dev/null || { echo "$0: needs $tool" >&2; exit 2; }
done
if ! command -v wrk >/dev/null; then
    echo "installing wrk" >&2
    apt-get install -y wrk >/dev/null
fi

cargo build --release -p coalesce-graphql >&2
bin=target/release/coalesce-graphql

work=$(mktemp -d)
prefix="graphql_bench_$$_"
declare -A pid address app
cleanup() {
    local mode
    for mode in "${!pid[@]}"; do
        kill "${pid[$mode]}" 2>/dev/null || true
        wait "${pid[$mode]}" 2>/dev/null || true
    done
    psql "$url" -qAtc "DROP TABLE IF EXISTS ${prefix}comments, ${prefix}posts, ${prefix}authors" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$bin" queries >"$work/queries"
cat >"$work/load.lua" <<EOF
-- POST the fixed query set, one body after the other, on every connection.
local bodies = {}
for line in io.lines("$work/queries") do bodies[#bodies + 1] = line end
local sent = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
    sent = sent + 1
    return wrk.format(nil, "/graphql", nil, bodies[(sent % #bodies) + 1])
end
done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("RESULT %d %d %d %d %d\n", summary.requests, summary.duration,
        latency:percentile(50), latency:percentile(99),
        e.connect + e.read + e.write + e.status + e.timeout))
end
EOF

ticks=$(getconf CLK_TCK)
# CPU ticks (user + system) of each pid given, summed; pids gone count 0.
cpu_ticks() {
    local total=0 pid fields
    for pid in "$@"; do
        # After the parenthesized command name, utime and stime are the
        # 12th and 13th fields (14 and 15 of proc(5)).
        read -ra fields < <(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
        total=$((total + fields[11] + fields[12]))
    done
    echo "$total"
}
# The PostgreSQL backends of a mode's pool.
backends() { # mode
    psql "$url" -qAtc "SELECT pid FROM pg_stat_activity WHERE application_name = '${app[$1]}'"
}
# `statements requests in_flight` so far, from a mode's /stats.
stats() { # mode
    local json
    json=$(curl -fsS "http://${address[$1]}/stats")
    sed -E 's/.*"statements":([0-9]+).*"requests":([0-9]+).*"in_flight":([0-9]+).*/\1 \2 \3/' <<<"$json"
}
# Wait (bounded) until the requests wrk left behind are answered, so every
# count and CPU figure covers the same requests.
settled_stats() { # mode
    local statements requests in_flight
    for _ in $(seq 1 100); do
        read -r statements requests in_flight < <(stats "$1")
        if [ "$in_flight" -eq 0 ]; then echo "$statements $requests"; return; fi
        sleep 0.1
    done
    echo "$1: requests still in flight after 10 s" >&2
    return 1
}
load() { # mode, connections, seconds
    # A generous timeout: a slow answer is a latency to report, not an error.
    wrk -t "$(( $2 < 2 ? $2 : 2 ))" -c "$2" -d "$3s" --timeout 30s --latency -s "$work/load.lua" "http://${address[$1]}" \
        | grep '^RESULT'
}
# Start a mode on a free loopback port; wait (bounded) until it answers.
start() { # mode
    local mode=$1 separator='?'
    app[$mode]="graphql_bench_${$}_${mode}"
    case $url in *\?*) separator='&' ;; esac
    # Created here: the service's shell opens it only after being forked.
    : >"$work/$mode.out"
    "$bin" serve --mode "$mode" --database-url "${url}${separator}application_name=${app[$mode]}" \
        --table-prefix "$prefix" --pool-size "$pool_size" --listen 127.0.0.1:0 \
        >"$work/$mode.out" 2>"$work/$mode.err" &
    pid[$mode]=$!
    for _ in $(seq 1 600); do
        address[$mode]=$(sed -n 's/^listening on //p' "$work/$mode.out")
        [ -n "${address[$mode]}" ] && return
        kill -0 "${pid[$mode]}" 2>/dev/null || { cat "$work/$mode.err" >&2; return 1; }
        sleep 0.1
    done
    echo "$mode service did not start within 60 s" >&2
    return 1
}
# Warm a mode up at `connections`, measure it, print its row.
measure() { # mode, connections
    local mode=$1 c=$2 statements_before requests_before statements_after requests_after
    local service_before service_after db_before db_after sent elapsed_us p50_us p99_us errors
    load "$mode" "$c" "$warmup" >/dev/null
    read -r statements_before requests_before < <(settled_stats "$mode")
    service_before=$(cpu_ticks "${pid[$mode]}")
    db_before=$(cpu_ticks $(backends "$mode"))
    read -r _ sent elapsed_us p50_us p99_us errors < <(load "$mode" "$c" "$duration")
    read -r statements_after requests_after < <(settled_stats "$mode")
    service_after=$(cpu_ticks "${pid[$mode]}")
    # Backends opened during the run started from zero ticks; the service
    # never drops a connection midway (see its /graphql handler).
    db_after=$(cpu_ticks $(backends "$mode"))
    [ "$errors" -eq 0 ] || echo "$mode at $c connections: $errors wrk errors" >&2
    awk -v mode="$mode" -v c="$c" -v sent="$sent" -v us="$elapsed_us" \
        -v p50="$p50_us" -v p99="$p99_us" -v answered=$((requests_after - requests_before)) \
        -v statements=$((statements_after - statements_before)) \
        -v service=$((service_after - service_before)) -v db=$((db_after - db_before)) \
        -v ticks="$ticks" 'BEGIN {
            per = answered > 0 ? answered : 1
            printf "| %s | %d | %.0f | %.2f ms | %.2f ms | %.2f | %.2f ms | %.2f ms |\n",
                mode, c, sent / (us / 1e6), p50 / 1000, p99 / 1000, statements / per,
                service / ticks * 1000 / per, db / ticks * 1000 / per
        }'
}

# One after the other: each seeds the same tables if missing.
for mode in $modes; do start "$mode"; done
echo "| mode | connections | requests/s | p50 | p99 | statements/request | service CPU/request | db CPU/request |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for c in $connections; do
    for mode in $modes; do measure "$mode" "$c"; done
done
