# Helpers for bench/* scripts (sourced, bash). Everything stays on 127.0.0.1.

bench_log() { printf '%s\n' "$*" >&2; }
bench_die() { printf 'error: %s\n' "$*" >&2; exit 2; }

# Median of the numbers given as arguments.
bench_median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) exit 1
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Nanoseconds since the epoch.
bench_now_ns() { date +%s%N; }

# A UDP port that was free a moment ago on 127.0.0.1 (for servers that cannot bind port 0).
bench_free_udp_port() {
    python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits up to $2 seconds for a UDP socket bound to 127.0.0.1:$1.
bench_wait_udp_bound() {
    local port=$1 deadline=$((SECONDS + $2))
    while ((SECONDS < deadline)); do
        if ss -Hnlu "src 127.0.0.1:$port" 2>/dev/null | grep -q .; then return 0; fi
        sleep 0.1
    done
    return 1
}

# Waits up to $3 seconds for a line starting with $2 in file $1 and prints the rest of it.
# Fails early if process $4 (optional) has exited.
bench_wait_for_line() {
    local file=$1 prefix=$2 deadline=$((SECONDS + $3)) pid=${4:-} line
    while ((SECONDS < deadline)); do
        line=$(grep -m1 "^$prefix" "$file" 2>/dev/null || true)
        if [[ -n $line ]]; then printf '%s\n' "${line#"$prefix"}"; return 0; fi
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
        sleep 0.1
    done
    return 1
}

# Stops a background process: SIGTERM, then SIGKILL after $2 seconds (default 5).
bench_stop() {
    local pid=$1 grace=${2:-5} i
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < grace * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# "Maximum resident set size (kbytes): N" from a `/usr/bin/time -v` report, in KiB.
bench_peak_rss_kib() { awk -F': *' '/Maximum resident set size/ { print $2 }' "$1"; }

# MiB/s for $1 bytes in $2 nanoseconds.
bench_mib_per_s() { awk -v b="$1" -v ns="$2" 'BEGIN { printf "%.1f\n", b / 1048576 / (ns / 1e9) }'; }

# A bench script's command line: nothing, or -h/--help (prints the script's header comment
# and exits); then each variable named after the argument must hold a positive integer.
#   bench_args "${1:-}" RUNS FILES ...
bench_args() {
    local arg=$1 var
    shift
    case "$arg" in
        "") ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) bench_die "unknown argument '$arg' (try --help)" ;;
    esac
    for var in "$@"; do
        [[ ${!var} =~ ^[0-9]+$ && ${!var} -gt 0 ]] || bench_die "$var='${!var}' is not a positive number"
    done
}
