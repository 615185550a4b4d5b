# Sourced by the project's server scripts. A server of ours whose state
# directory was removed while it ran (a cleaned /tmp, a full disk) still
# holds its port, and a new instance could not bind it: find the listener
# by port and stop it, but only if its command line names our directory.

# Stop the process listening on 127.0.0.1:PORT if its command line mentions
# DIR; return 1 if the port is held by anything else.
reclaim_port() { # port, dir
    local port=$1 dir=$2 pid cmdline
    pid=$(ss -Hltnp "sport = :$port" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n 1)
    [[ -n $pid ]] || return 0
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 0
    [[ $cmdline == *"$dir"* ]] || return 1
    echo "stopping a leftover server on :$port (pid $pid, $cmdline)" >&2
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
}
