#!/usr/bin/env bash
# Side-by-side load comparison of portcullis and nginx on loopback. See BENCHMARKS.md.
#
# Both proxies run with one worker pinned to one core (PROXY_CPU); the upstream stub, the
# whoami stub and wrk share the other core (LOAD_CPU). Every scenario runs for DURATION
# seconds after a WARMUP-second run that is not measured. For each run the script records
# requests/s, p50 and p99 latency, and the proxy's CPU time per request (utime + stime from
# /proc/PID/stat over the run, divided by the requests wrk completed). It then counts system
# calls per request with strace, measures resident memory with IDLE_CONNECTIONS idle
# keep-alive clients, and writes benches/load/results-<date>.txt plus a Markdown table on
# stdout.
#
# The script installs nothing, sends traffic only to 127.0.0.1, and kills every process it
# started, by PID, when it exits.
#
# Settings (environment variables, defaults in brackets):
#   DURATION [10]          seconds per measured run
#   WARMUP [2]             seconds of unmeasured load before each run
#   CONNECTIONS [64]       wrk connections (-c) of the main runs
#   SESSIONS [1024]        distinct session cookies the session runs rotate through
#   IDLE_CONNECTIONS [10000]  idle client connections in the memory test
#   STRACE_SECONDS [5]     length of each strace run
#   PROXY_CPU [1]          core of the proxy under test
#   LOAD_CPU [0]           core of the stubs and wrk
#   PORT_BASE [18000]      first of five consecutive loopback ports used
#   SKIP_BUILD [0]         1: use the binaries in target/release as they are
#   QUICK [0]              1: only the plain and session-check rows (for trying changes)
#   QUIET_WAIT [0]         seconds each row may wait for the rest of the machine to go
#                          quiet (below 5% of both cores busy over 2 s) before it starts
#   RETRIES [0]            with QUIET_WAIT set: times a row is measured again when other
#                          processes used more than 5% of both cores during it

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOAD_DIR="$ROOT/benches/load"

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-64}
SESSIONS=${SESSIONS:-1024}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-10000}
STRACE_SECONDS=${STRACE_SECONDS:-5}
PROXY_CPU=${PROXY_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
PORT_BASE=${PORT_BASE:-18000}
SKIP_BUILD=${SKIP_BUILD:-0}
QUICK=${QUICK:-0}
QUIET_WAIT=${QUIET_WAIT:-0}
RETRIES=${RETRIES:-0}

UPSTREAM_PORT=$((PORT_BASE + 1))
WHOAMI_PORT=$((PORT_BASE + 2))
PORTCULLIS_PORT=$((PORT_BASE + 3))
NGINX_PORT=$((PORT_BASE + 4))
UPSTREAM="127.0.0.1:$UPSTREAM_PORT"
WHOAMI="127.0.0.1:$WHOAMI_PORT"

# Identity id of session number N (0-based): the whoami stub is started with it, and the
# upstream must receive it in X-User.
identity_of() {
    printf '00000000-0000-4000-8000-%012d' "$1"
}

# ---------------------------------------------------------------------------------------
# Tools

NGINX=""
for candidate in /usr/sbin/nginx /usr/bin/nginx; do
    if [ -x "$candidate" ]; then NGINX=$candidate; break; fi
done

missing=()
if [ -z "$NGINX" ]; then
    missing+=(nginx-light)
elif ! "$NGINX" -V 2>&1 | grep -q -- '--with-http_auth_request_module'; then
    echo "error: $NGINX is built without the auth_request module; install Debian's nginx-light" >&2
    exit 1
fi
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v strace >/dev/null 2>&1 || missing+=(strace)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v pgrep >/dev/null 2>&1 || missing+=(procps)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "error: missing tools. Install them with:" >&2
    echo "    apt-get install ${missing[*]}" >&2
    exit 1
fi
if [ "$(nproc)" -lt 2 ]; then
    echo "error: the comparison needs 2 cores (proxy on one, stubs and wrk on the other); nproc is $(nproc)" >&2
    exit 1
fi

# ---------------------------------------------------------------------------------------
# Processes started here, killed by PID on exit

PIDS=()
WORK=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-compare.XXXXXX")

stop_pid() {
    local pid=$1
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        stop_pid "$pid"
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "error: command failed at line $LINENO of $0" >&2' ERR
trap 'exit 130' INT TERM

# Starts a command in the background and records its PID in PIDS and in STARTED_PID.
start_bg() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

# Stops a process started with start_bg and removes it from PIDS.
stop_bg() {
    local pid=$1 kept=() other
    stop_pid "$pid"
    for other in "${PIDS[@]}"; do
        [ "$other" = "$pid" ] || kept+=("$other")
    done
    PIDS=("${kept[@]}")
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_port() {
    local port=$1 what=$2 log=$3
    for _ in $(seq 100); do
        if port_open "$port"; then return 0; fi
        sleep 0.1
    done
    echo "error: $what did not start listening on port $port; its log:" >&2
    cat "$log" >&2
    exit 1
}

for port in "$UPSTREAM_PORT" "$WHOAMI_PORT" "$PORTCULLIS_PORT" "$NGINX_PORT"; do
    if port_open "$port"; then
        echo "error: port $port is already in use; set PORT_BASE to a free range" >&2
        exit 1
    fi
done

# Client connections: 10,000 idle ones in the proxy and in the client script, 1,024 in wrk.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((IDLE_CONNECTIONS + 1000)) ]; then
    echo "error: open-file limit $(ulimit -n) is too low for $IDLE_CONNECTIONS connections; raise the hard limit (ulimit -Hn)" >&2
    exit 1
fi

# ---------------------------------------------------------------------------------------
# Build

if [ "$SKIP_BUILD" != 1 ]; then
    (cd "$ROOT" && cargo build --release --bin portcullis --bin portcullis-stub)
fi
PORTCULLIS="$ROOT/target/release/portcullis"
STUB="$ROOT/target/release/portcullis-stub"
for binary in "$PORTCULLIS" "$STUB"; do
    if [ ! -x "$binary" ]; then
        echo "error: $binary not found; run cargo build --release" >&2
        exit 1
    fi
done

# ---------------------------------------------------------------------------------------
# Measurement helpers

CLK_TCK=$(getconf CLK_TCK)

# Sum of utime + stime, in clock ticks, of the given PIDs (threads included).
cpu_ticks() {
    local total=0 pid fields
    for pid in "$@"; do
        # Fields after the command name, which is in parentheses and may contain spaces.
        fields=$(sed 's/^.*) //' "/proc/$pid/stat")
        total=$((total + $(echo "$fields" | awk '{ print $12 + $13 }')))
    done
    echo "$total"
}

# Sum of VmRSS, in KiB, of the given PIDs.
rss_kib() {
    local total=0 pid
    for pid in "$@"; do
        total=$((total + $(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")))
    done
    echo "$total"
}

# Machine-wide CPU time as "BUSY TOTAL" in clock ticks, summed over all cores, from the
# first line of /proc/stat (busy: user, nice, system, irq, softirq, steal).
machine_ticks() {
    awk '/^cpu / { busy = $2 + $3 + $4 + $7 + $8 + $9; print busy, busy + $5 + $6; exit }' /proc/stat
}

# Waits up to QUIET_WAIT seconds until the machine is below 5% busy over 2 seconds. The
# proxies and stubs are idle between runs, so what is busy then is the rest of the machine.
wait_for_quiet() {
    local waited=0 busy_before total_before busy_after total_after busy_pct
    while true; do
        read -r busy_before total_before < <(machine_ticks)
        sleep 2
        read -r busy_after total_after < <(machine_ticks)
        busy_pct=$(( (busy_after - busy_before) * 100 / (total_after - total_before + 1) ))
        [ "$busy_pct" -lt 5 ] && return 0
        if [ "$waited" -ge "$QUIET_WAIT" ]; then
            [ "$QUIET_WAIT" -gt 0 ] && echo "   machine still ${busy_pct}% busy after ${waited} s; measuring anyway" >&2
            return 0
        fi
        sleep 3
        waited=$((waited + 5))
    done
}

# Reads the output of bash's `times` and prints the CPU time, in clock ticks, of the children
# that the shell has waited for. `times` must run in the measuring shell itself, because a
# subshell has its own, empty, count.
children_ticks() {
    awk -v hz="$CLK_TCK" 'NR == 2 {
        total = 0
        for (i = 1; i <= 2; i++) { split($i, part, "m"); total += part[1] * 60 + part[2] }
        printf "%.0f", total * hz
    }'
}

# PIDs whose CPU time counts for a proxy: portcullis is one process; nginx is the master and
# its workers.
proxy_pids() {
    local contender=$1
    case $contender in
        portcullis*) echo "$PORTCULLIS_PID" ;;
        nginx*) echo "$NGINX_PID" $(pgrep -P "$NGINX_PID" || true) ;;
        direct) echo "$UPSTREAM_PID" ;;
    esac
}

# PIDs that handle requests (the nginx master only accepts signals).
worker_pids() {
    local contender=$1
    case $contender in
        portcullis*) echo "$PORTCULLIS_PID" ;;
        nginx*) pgrep -P "$NGINX_PID" ;;
    esac
}

url_of() {
    local contender=$1 path=$2
    case $contender in
        portcullis*) echo "http://127.0.0.1:$PORTCULLIS_PORT$path" ;;
        nginx*) echo "http://127.0.0.1:$NGINX_PORT$path" ;;
        direct) echo "http://$UPSTREAM$path" ;;
    esac
}

# Reads KEY=NUMBER from wrk's RESULT line.
result_field() {
    sed -n "s/^RESULT.* $2=\([0-9]*\).*/\1/p" <<<"$1"
}

# Runs wrk against URL. With SESSION_PREFIX empty, wrk sends one fixed request without
# cookies. Otherwise requests rotate through SESSIONS cookies with that prefix. With STATUS
# set, wrk also counts the responses whose status differs from it.
run_wrk() {
    local connections=$1 seconds=$2 url=$3 session_prefix=$4 status=${5:-}
    local path=${url#http://*/}
    if [ -z "$session_prefix" ]; then
        taskset -c "$LOAD_CPU" wrk -t1 -c"$connections" -d"${seconds}s" --latency \
            -s "$LOAD_DIR/report.lua" "$url"
    else
        taskset -c "$LOAD_CPU" wrk -t1 -c"$connections" -d"${seconds}s" --latency \
            -s "$LOAD_DIR/sessions.lua" "$url" -- "/$path" "$session_prefix" "$SESSIONS" ${status:+"$status"}
    fi
}

RESULTS_ROWS=()

# Runs wrk once after a warm-up and sets RUN_OUTPUT (wrk's output), RUN_PROXY_TICKS (the
# proxy's CPU time over the run) and RUN_OTHER_LOAD (the share of both cores, in percent,
# that processes other than the proxy, the stubs and wrk used meanwhile).
run_measured() {
    local contender=$1 connections=$2 url=$3 session_prefix=$4 status=$5
    local ours before after ours_before ours_after wrk_before wrk_after
    local busy_before total_before busy_after total_after

    run_wrk "$connections" "$WARMUP" "$url" "$session_prefix" "$status" >/dev/null
    # shellcheck disable=SC2046
    ours=$(echo $(proxy_pids "$contender") "$UPSTREAM_PID" "$WHOAMI_PID" | tr ' ' '\n' | sort -u)
    read -r busy_before total_before < <(machine_ticks)
    times >"$WORK/times.txt"
    wrk_before=$(children_ticks <"$WORK/times.txt")
    # shellcheck disable=SC2086
    ours_before=$(cpu_ticks $ours)
    # shellcheck disable=SC2046
    before=$(cpu_ticks $(proxy_pids "$contender"))

    # In the foreground, so that `times` counts wrk's CPU time once it has been waited for.
    run_wrk "$connections" "$DURATION" "$url" "$session_prefix" "$status" >"$WORK/wrk-run.txt"

    # shellcheck disable=SC2046
    after=$(cpu_ticks $(proxy_pids "$contender"))
    # shellcheck disable=SC2086
    ours_after=$(cpu_ticks $ours)
    times >"$WORK/times.txt"
    wrk_after=$(children_ticks <"$WORK/times.txt")
    read -r busy_after total_after < <(machine_ticks)

    RUN_OUTPUT=$(cat "$WORK/wrk-run.txt")
    echo "$RUN_OUTPUT" >>"$WORK/wrk.log"
    RUN_PROXY_TICKS=$((after - before))
    RUN_OTHER_LOAD=$(awk -v busy=$((busy_after - busy_before)) -v total=$((total_after - total_before)) \
        -v ours=$((ours_after - ours_before + wrk_after - wrk_before)) \
        'BEGIN { share = total > 0 ? (busy - ours) * 100 / total : 0; printf "%.1f", share < 0 ? 0 : share }')
}

# Measures one row and appends it to RESULTS_ROWS. EXPECT is "ok" (no status >= 400) or
# "401" (every status 401). With QUIET_WAIT set, the row first waits for a quiet machine and
# is measured again, up to RETRIES times, while other processes used more than 5%.
measure() {
    local scenario=$1 contender=$2 workers=$3 connections=$4 path=$5 session_prefix=$6 expect=$7
    local url output requests duration status_errors socket_errors p50 p99 rps cpu other attempt
    local status=""
    [ "$expect" = ok ] || status=$expect
    url=$(url_of "$contender" "$path")
    echo "== $scenario / $contender: $connections connections, $workers worker(s), $url" >&2

    for ((attempt = 0; attempt <= RETRIES; attempt++)); do
        [ "$QUIET_WAIT" -gt 0 ] && wait_for_quiet
        run_measured "$contender" "$connections" "$url" "$session_prefix" "$status"
        if [ "$QUIET_WAIT" -eq 0 ] || awk -v other="$RUN_OTHER_LOAD" 'BEGIN { exit !(other <= 5) }'; then
            break
        fi
        if [ "$attempt" -lt "$RETRIES" ]; then
            echo "   other processes used $RUN_OTHER_LOAD% of both cores during the run; measuring again" >&2
        fi
    done
    output=$RUN_OUTPUT
    other=$RUN_OTHER_LOAD

    requests=$(result_field "$output" requests)
    duration=$(result_field "$output" duration_us)
    status_errors=$(result_field "$output" status_errors)
    socket_errors=$(result_field "$output" socket_errors)
    p50=$(result_field "$output" p50_us)
    p99=$(result_field "$output" p99_us)
    if [ -z "$requests" ] || [ "$requests" -eq 0 ]; then
        echo "error: wrk completed no request against $url:" >&2
        echo "$output" >&2
        exit 1
    fi
    if [ "$expect" = ok ] && [ "$status_errors" -ne 0 ]; then
        echo "error: $status_errors of $requests responses from $url had status >= 400" >&2
        exit 1
    fi
    if [ -n "$status" ] && [ "$(result_field "$output" unexpected_status)" != 0 ]; then
        echo "error: $(result_field "$output" unexpected_status) of $requests responses from $url did not have status $status" >&2
        exit 1
    fi
    rps=$(awk -v r="$requests" -v d="$duration" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
    cpu=$(awk -v t="$RUN_PROXY_TICKS" -v hz="$CLK_TCK" -v r="$requests" \
        'BEGIN { printf "%.2f", t * 1e6 / hz / r }')
    RESULTS_ROWS+=("kind=load scenario=$scenario contender=$contender workers=$workers connections=$connections requests=$requests duration_us=$duration rps=$rps p50_us=$p50 p99_us=$p99 cpu_us_per_request=$cpu status_errors=$status_errors socket_errors=$socket_errors other_load_pct=$other")
    echo "   $rps requests/s, p50 $p50 us, p99 $p99 us, $cpu us CPU per request, $socket_errors socket errors, other load $other%" >&2
}

# Counts the system calls of a proxy's request-handling processes over a short run.
count_syscalls() {
    local scenario=$1 contender=$2 path=$3 session_prefix=$4
    local url output requests calls strace_pid pid args=()
    url=$(url_of "$contender" "$path")
    echo "== system calls: $scenario / $contender" >&2
    for pid in $(worker_pids "$contender"); do
        args+=(-p "$pid")
    done
    strace -c -f -o "$WORK/strace-$scenario-$contender.txt" "${args[@]}" 2>"$WORK/strace.log" &
    strace_pid=$!
    PIDS+=("$strace_pid")
    sleep 1
    output=$(run_wrk "$CONNECTIONS" "$STRACE_SECONDS" "$url" "$session_prefix")
    kill -INT "$strace_pid" 2>/dev/null || true
    wait "$strace_pid" 2>/dev/null || true
    stop_bg "$strace_pid"
    requests=$(result_field "$output" requests)
    calls=$(awk '$NF == "total" { print $4 }' "$WORK/strace-$scenario-$contender.txt")
    if [ -z "$requests" ] || [ "$requests" -eq 0 ] || [ -z "$calls" ]; then
        echo "error: strace run against $url counted no system calls or requests; strace output:" >&2
        cat "$WORK/strace.log" "$WORK/strace-$scenario-$contender.txt" >&2
        exit 1
    fi
    RESULTS_ROWS+=("kind=syscalls scenario=$scenario contender=$contender requests=$requests syscalls=$calls syscalls_per_request=$(awk -v c="$calls" -v r="$requests" 'BEGIN { printf "%.2f", c / r }')")
}

# ---------------------------------------------------------------------------------------
# Starting the stubs and the proxies

start_stubs() {
    local sessions=() i
    for ((i = 0; i < SESSIONS; i++)); do
        sessions+=(--session "$(printf 's%04d' "$i")=$(identity_of "$i")")
    done
    RUST_LOG=warn start_bg "$WORK/upstream.log" taskset -c "$LOAD_CPU" \
        "$STUB" upstream --listen "$UPSTREAM" --name app --threads 1
    UPSTREAM_PID=$STARTED_PID
    RUST_LOG=warn start_bg "$WORK/whoami.log" taskset -c "$LOAD_CPU" \
        "$STUB" kratos --listen "$WHOAMI" --threads 1 "${sessions[@]}"
    WHOAMI_PID=$STARTED_PID
    wait_port "$UPSTREAM_PORT" "the upstream stub" "$WORK/upstream.log"
    wait_port "$WHOAMI_PORT" "the whoami stub" "$WORK/whoami.log"
}

start_portcullis() {
    local workers=$1 cpus=$2 config="$WORK/portcullis-$1.toml"
    sed -e "s/@WORKERS@/$workers/" -e "s/@LISTEN@/127.0.0.1:$PORTCULLIS_PORT/g" \
        -e "s/@UPSTREAM@/$UPSTREAM/" -e "s/@WHOAMI@/$WHOAMI/" \
        "$LOAD_DIR/portcullis.toml.in" >"$config"
    start_bg "$WORK/portcullis-$workers.log" taskset -c "$cpus" \
        "$PORTCULLIS" --config "$config" --log-level warn
    PORTCULLIS_PID=$STARTED_PID
    wait_port "$PORTCULLIS_PORT" portcullis "$WORK/portcullis-$workers.log"
}

start_nginx() {
    local workers=$1 cpus=$2 prefix="$WORK/nginx-$1"
    mkdir -p "$prefix"
    sed -e "s/@WORKERS@/$workers/" -e "s|@PREFIX@|$prefix|g" \
        -e "s/@LISTEN@/127.0.0.1:$NGINX_PORT/" -e "s/@UPSTREAM@/$UPSTREAM/" \
        -e "s/@WHOAMI@/$WHOAMI/g" "$LOAD_DIR/nginx.conf.in" >"$prefix/nginx.conf"
    start_bg "$prefix/stderr.log" taskset -c "$cpus" \
        "$NGINX" -p "$prefix" -c "$prefix/nginx.conf" -g 'daemon off;'
    NGINX_PID=$STARTED_PID
    wait_port "$NGINX_PORT" nginx "$prefix/error.log"
    for _ in $(seq 50); do
        [ "$(pgrep -c -P "$NGINX_PID")" -ge "$workers" ] && break
        sleep 0.1
    done
}

# Checks one response before measuring: its status and, for granted requests, that the
# upstream saw the expected X-User.
check_response() {
    local url=$1 cookie=$2 status=$3 user=$4 body code
    body="$WORK/check-body"
    if [ -n "$cookie" ]; then
        code=$(curl -s -o "$body" -w '%{http_code}' -H "Cookie: ory_kratos_session=$cookie" "$url")
    else
        code=$(curl -s -o "$body" -w '%{http_code}' "$url")
    fi
    if [ "$code" != "$status" ]; then
        echo "error: $url with cookie '${cookie}' returned $code, expected $status: $(head -c 300 "$body")" >&2
        exit 1
    fi
    if [ -n "$user" ] && ! grep -q "\"user\":$user" "$body"; then
        echo "error: $url with cookie '${cookie}': upstream saw no user $user: $(head -c 300 "$body")" >&2
        exit 1
    fi
}

check_proxies() {
    local id
    id="\"$(identity_of 7)\""
    check_response "$(url_of portcullis /plain)" "" 200 null
    check_response "$(url_of portcullis /auth)" s0007 200 "$id"
    check_response "$(url_of portcullis /auth)" x0007 401 ""
    check_response "$(url_of portcullis /cached)" s0007 200 "$id"
    check_response "$(url_of portcullis /pipelined/plain)" "" 200 null
    check_response "$(url_of portcullis /pipelined/auth)" s0007 200 "$id"
    check_response "$(url_of portcullis /pipelined/auth)" x0007 401 ""
    check_response "$(url_of portcullis /pipelined/cached)" s0007 200 "$id"
    check_response "$(url_of nginx /plain)" "" 200 null
    check_response "$(url_of nginx /auth-get)" s0007 200 "$id"
    check_response "$(url_of nginx /auth)" s0007 200 "$id"
    check_response "$(url_of nginx /auth)" x0007 401 ""
}

# ---------------------------------------------------------------------------------------
# The run

DATE=$(date -u +%Y-%m-%dT%H:%MZ)
COMMIT=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(cd "$ROOT" && git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    COMMIT="$COMMIT+changes"
fi
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
NGINX_VERSION=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
# wrk -v exits with status 1 after printing its version.
WRK_VERSION=$( (wrk -v 2>&1 || true) | awk 'NR == 1 { print $2 }')
RESULTS="$LOAD_DIR/results-$(date -u +%Y-%m-%d-%H%M).txt"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
echo "portcullis $COMMIT vs $NGINX_VERSION on $(nproc) x $CPU_MODEL; $DURATION s per run" >&2
start_stubs
start_portcullis 1 "$PROXY_CPU"
start_nginx 1 "$PROXY_CPU"
check_proxies

measure direct direct - "$CONNECTIONS" /plain "" ok
measure plain portcullis 1 "$CONNECTIONS" /plain "" ok
measure plain portcullis-pipelined 1 "$CONNECTIONS" /pipelined/plain "" ok
measure plain nginx 1 "$CONNECTIONS" /plain "" ok
measure auth portcullis 1 "$CONNECTIONS" /auth s ok
measure auth portcullis-pipelined 1 "$CONNECTIONS" /pipelined/auth s ok
measure auth nginx-get 1 "$CONNECTIONS" /auth-get s ok
measure auth nginx-best 1 "$CONNECTIONS" /auth s ok

if [ "$QUICK" != 1 ]; then
    measure denied portcullis 1 "$CONNECTIONS" /auth x 401
    measure denied nginx-best 1 "$CONNECTIONS" /auth x 401
    measure cached portcullis-cache 1 "$CONNECTIONS" /cached s ok
    measure cached portcullis-cache-pipelined 1 "$CONNECTIONS" /pipelined/cached s ok
    for connections in 1 1024; do
        measure "auth-c$connections" portcullis 1 "$connections" /auth s ok
        measure "auth-c$connections" portcullis-pipelined 1 "$connections" /pipelined/auth s ok
        measure "auth-c$connections" nginx-best 1 "$connections" /auth s ok
    done

    count_syscalls plain portcullis /plain ""
    count_syscalls plain portcullis-pipelined /pipelined/plain ""
    count_syscalls plain nginx /plain ""
    count_syscalls auth portcullis /auth s
    count_syscalls auth portcullis-pipelined /pipelined/auth s
    count_syscalls auth nginx-best /auth s
fi

stop_bg "$PORTCULLIS_PID"
stop_bg "$NGINX_PID"

if [ "$QUICK" != 1 ]; then
    # Idle keep-alive connections, each after one request, on a freshly started proxy.
    for contender in portcullis nginx; do
        echo "== memory: $contender with $IDLE_CONNECTIONS idle connections" >&2
        if [ "$contender" = portcullis ]; then
            start_portcullis 1 "$PROXY_CPU"
            port=$PORTCULLIS_PORT
        else
            start_nginx 1 "$PROXY_CPU"
            port=$NGINX_PORT
        fi
        # shellcheck disable=SC2046
        rss_before=$(rss_kib $(proxy_pids "$contender"))
        start_bg "$WORK/idle-$contender.log" taskset -c "$LOAD_CPU" \
            python3 "$LOAD_DIR/idle_clients.py" --port "$port" --path /plain \
            --count "$IDLE_CONNECTIONS" --hold 120
        idle_pid=$STARTED_PID
        for _ in $(seq 1200); do
            grep -q '^idle ' "$WORK/idle-$contender.log" && break
            kill -0 "$idle_pid" 2>/dev/null || break
            sleep 0.1
        done
        if ! grep -q '^idle ' "$WORK/idle-$contender.log"; then
            echo "error: the idle-connection client did not finish against $contender:" >&2
            cat "$WORK/idle-$contender.log" >&2
            exit 1
        fi
        sleep 1
        # shellcheck disable=SC2046
        rss_after=$(rss_kib $(proxy_pids "$contender"))
        RESULTS_ROWS+=("kind=memory contender=$contender idle_connections=$IDLE_CONNECTIONS rss_before_kib=$rss_before rss_after_kib=$rss_after bytes_per_connection=$(((rss_after - rss_before) * 1024 / IDLE_CONNECTIONS))")
        stop_bg "$idle_pid"
        if [ "$contender" = portcullis ]; then stop_bg "$PORTCULLIS_PID"; else stop_bg "$NGINX_PID"; fi
    done

    # Two workers may use both cores, which they share with the stubs and wrk.
    start_portcullis 2 "$LOAD_CPU,$PROXY_CPU"
    start_nginx 2 "$LOAD_CPU,$PROXY_CPU"
    measure auth-w2 portcullis 2 "$CONNECTIONS" /auth s ok
    measure auth-w2 portcullis-pipelined 2 "$CONNECTIONS" /pipelined/auth s ok
    measure auth-w2 nginx-best 2 "$CONNECTIONS" /auth s ok
    stop_bg "$PORTCULLIS_PID"
    stop_bg "$NGINX_PID"
fi

# ---------------------------------------------------------------------------------------
# Results

{
    echo "# portcullis vs nginx load comparison, written by benches/compare.sh"
    echo "kind=meta date=$DATE load_average_start=\"$LOAD_START\" load_average_end=\"$(cut -d' ' -f1-3 /proc/loadavg)\" commit=$COMMIT nproc=$(nproc) cpu_model=\"$CPU_MODEL\" nginx=\"$NGINX_VERSION\" wrk=$WRK_VERSION duration_s=$DURATION warmup_s=$WARMUP connections=$CONNECTIONS sessions=$SESSIONS proxy_cpu=$PROXY_CPU load_cpu=$LOAD_CPU"
    printf '%s\n' "${RESULTS_ROWS[@]}"
} >"$RESULTS"

python3 "$LOAD_DIR/report.py" "$RESULTS"
echo "results written to $RESULTS" >&2
