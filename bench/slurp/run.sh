#!/usr/bin/env bash
# bench/slurp/run.sh — `ah agent followers slurp` against `scp -r` and `rsync -a` fetching
# the same files from the same followers over OpenSSH, in one run.
#
#   bench/slurp/run.sh
#
# The fleet: 4 followers, each a real sshd on its own 127.0.0.1 port (fresh ed25519 keys,
# sshd_config from bench/lib/sshd.sh, empty HOME), reached directly (connect = "direct",
# host keys from a known_hosts file). The data (issue 12): 200 MiB in 2,000 files spread
# evenly over the 4 followers (500 files of 4 KiB … 205 KiB each, 50 MiB per follower) plus
# one 256 MiB file on the first: 456 MiB in 2,001 files. Random bytes (incompressible), in
# the work dir (BENCH_TMPDIR, a tmpfs by default, so no disk is timed).
#
# Measured, each path fetching everything from all 4 followers at once into a fresh,
# empty destination:
#   ah      `ah agent followers slurp --fileset-data 'name=data&include=data' --dest D`:
#           the leader service warm (sessions and helpers up: one untimed slurp first);
#           per file a SHA-256 on both sides, staging beside D and the atomic move included.
#   scp     4 × `scp -r -q -F CFG root@127.0.0.1:data D/fN` in parallel, `wait` for all
#           (scp's SFTP protocol, OpenSSH 9's default) — a new ssh connection each, as scp is used.
#   rsync   4 × `rsync -a -e 'ssh -F CFG' root@127.0.0.1:data D/fN` in parallel.
# OpenSSH uses its default cipher (chacha20-poly1305); libssh2 1.10 has none of OpenSSH's AEAD
# ciphers, so ah's sessions negotiate aes128-ctr/aes256-ctr with hmac-sha2-256 (see
# docs/benchmarks.md for what that costs). Runs are interleaved (ah, scp, rsync, ah, ...);
# the figure is the median wall time of each path, as MiB/s of the 456 MiB. Every path's
# last run is checked byte for byte (diff -r against the followers' data).
#
# Target (issue 12): ah ≥ 1.0 × the faster of scp and rsync (MiB/s ratio of medians).
# Exit: 0 PASS, 1 FAIL, 2 could not measure. A summary JSON goes to bench/out/.
# Must run as root (the sshds).
#
# Environment:
#   RUNS=3             timed runs per path
#   SMALL_FILES=2000   files in the small part (spread over the followers)
#   SMALL_MIB=200      their total size
#   LARGE_MIB=256      the one large file (512 for the issue's test size)
#   AH_BINARY=PATH     the `ah` to measure (default: .build/release/ah, copied into the work dir)
#   BENCH_TMPDIR=DIR   where the work dir goes (default: /dev/shm if present, else /tmp)
#   KEEP_WORK=1        keep the work dir after the run
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../lib/bench.sh
source "$ROOT/bench/lib/bench.sh"
# shellcheck source=../lib/tls.sh
source "$ROOT/bench/lib/tls.sh"
# shellcheck source=../lib/sshd.sh
source "$ROOT/bench/lib/sshd.sh"

bench_args "${1:-}"

RUNS=${RUNS:-3}
SMALL_FILES=${SMALL_FILES:-2000}
SMALL_MIB=${SMALL_MIB:-200}
LARGE_MIB=${LARGE_MIB:-256}
FOLLOWERS=4

bench_sshd_require
command -v rsync >/dev/null || bench_die "rsync is missing: apt-get install rsync"
command -v scp >/dev/null || bench_die "scp is missing: apt-get install openssh-client"
SOURCE_AH=${AH_BINARY:-$ROOT/.build/release/ah}
[[ -x $SOURCE_AH ]] || bench_die "no ah binary at $SOURCE_AH (swift build -c release)"

BASE=${BENCH_TMPDIR:-$([[ -d /dev/shm ]] && echo /dev/shm || echo /tmp)}
WORK=$(mktemp -d "$BASE/ah-bench-slurp.XXXXXX")
PIDS=()
cleanup() {
    "$WORK/ah" agent followers stop --fleet-config "$WORK/fleet.toml" >/dev/null 2>&1 || true
    for pid in "${PIDS[@]}"; do bench_stop "$pid" 5; done
    if [[ -z ${KEEP_WORK:-} ]]; then rm -rf "$WORK"; else bench_log "work dir kept: $WORK"; fi
}
trap cleanup EXIT
cp "$SOURCE_AH" "$WORK/ah"
AH=$WORK/ah
KEYS=$WORK/keys
bench_ssh_keys "$KEYS" || bench_die "cannot make ssh keys"
bench_ssh_client_config "$WORK/ssh_config" "$KEYS/id_ed25519"
HOSTKEY=$(cut -d' ' -f1,2 "$KEYS/host_ed25519.pub")

# The followers: sshd + workspace with its share of the data.
PORTS=()
: >"$WORK/known_hosts"
per_follower=$((SMALL_FILES / FOLLOWERS))
per_file_avg=$((SMALL_MIB * 1048576 / SMALL_FILES))
for i in $(seq 1 $FOLLOWERS); do
    port=$(bench_free_tcp_port)
    bench_sshd_start "f$i" "$port" "$KEYS" || bench_die "sshd f$i did not start (log: $KEYS/f$i.log)"
    PIDS+=("$BENCH_SSHD_PID")
    PORTS+=("$port")
    printf '[127.0.0.1]:%s %s\n' "$port" "$HOSTKEY" >>"$WORK/known_hosts"
    ws=$WORK/ws$i
    mkdir -p "$ws/data/small"
    # Sizes from 1/50 to ~2× the average, so the total is close to SMALL_MIB.
    for f in $(seq 1 $per_follower); do
        size=$(( per_file_avg / 50 + (f * 7919 % per_follower) * (per_file_avg * 2 - per_file_avg / 50) / per_follower ))
        head -c "$size" /dev/urandom >"$ws/data/small/$f.bin"
    done
    if [[ $i -eq 1 ]]; then head -c $((LARGE_MIB * 1048576)) /dev/urandom >"$ws/data/large.bin"; fi
done
TOTAL_BYTES=$(du -sb --apparent-size "$WORK"/ws*/data | awk '{ s += $1 } END { print s }')
TOTAL_FILES=$(find "$WORK"/ws*/data -type f | wc -l)
bench_log "data: $TOTAL_FILES files, $((TOTAL_BYTES / 1048576)) MiB on $FOLLOWERS followers"

{
    printf '[fleet]\nname = "bench-slurp"\nremote_ah = "%s"\nknown_hosts = "%s"\nidentity_file = "%s"\n\n' \
        "$AH" "$WORK/known_hosts" "$KEYS/id_ed25519"
    for i in $(seq 1 $FOLLOWERS); do
        printf '[[fleet.members]]\nname = "f%s"\nrole = "follower"\nhost = "127.0.0.1"\nssh_user = "root"\nssh_port = %s\n' \
            "$i" "${PORTS[$((i - 1))]}"
        printf 'connect = "direct"\nworkspace = "%s"\nos = "linux"\n\n' "$WORK/ws$i"
    done
} >"$WORK/fleet.toml"
export XDG_STATE_HOME=$WORK/state

run_ah() { # $1 dest
    "$AH" agent followers slurp --fleet-config "$WORK/fleet.toml" --fileset-data 'name=data&include=data' --dest "$1" \
        >"$WORK/ah.out" 2>"$WORK/ah.err"
}
run_scp() {
    local i pids=()
    mkdir -p "$1"
    for i in $(seq 1 $FOLLOWERS); do
        mkdir -p "$1/f$i"
        scp -r -q -F "$WORK/ssh_config" -P "${PORTS[$((i - 1))]}" "root@127.0.0.1:$WORK/ws$i/data" "$1/f$i/" & pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || return 1; done
}
run_rsync() {
    local i pids=()
    mkdir -p "$1"
    for i in $(seq 1 $FOLLOWERS); do
        mkdir -p "$1/f$i"
        rsync -a -e "ssh -F $WORK/ssh_config -p ${PORTS[$((i - 1))]}" "root@127.0.0.1:$WORK/ws$i/data" "$1/f$i/" & pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || return 1; done
}
# Each path's destination layout: ah puts several answering followers under data/fN/ (the
# set's NAME/FOLLOWER), the others under fN/.
check() { # $1 path $2 dest
    local i sub
    for i in $(seq 1 $FOLLOWERS); do
        if [[ $1 == ah ]]; then sub=$2/data/f$i/data; else sub=$2/f$i/data; fi
        diff -r -q "$WORK/ws$i/data" "$sub" >/dev/null || bench_die "$1: the files from f$i differ (diff -r $WORK/ws$i/data $sub)"
    done
}

bench_log "warming up the leader service (sessions and helpers)"
run_ah "$WORK/warm" || bench_die "the warm-up slurp failed: $(tail -3 "$WORK/ah.err")"
check ah "$WORK/warm"
rm -rf "$WORK/warm"

# CPU seconds (user + system) of everything a path runs, which other load on the machine does
# not inflate the way it inflates wall time: the sshd listeners' process trees (sessions,
# follower helpers, sftp-server; reaped children via cutime/cstime), the leader service, and
# the clients (children of the subshell that runs the path, from `times`).
TICK=$(getconf CLK_TCK)
tree_cpu() { # CPU seconds of $1 and all its descendants (live ones) plus what they reaped
    local pid=$1 total=0 child
    total=$(awk -v t="$TICK" '{ printf "%.3f", ($14 + $15 + $16 + $17) / t }' "/proc/$pid/stat" 2>/dev/null || echo 0)
    for child in $(pgrep -P "$pid"); do total=$(awk -v a="$total" -v b="$(tree_cpu "$child")" 'BEGIN { printf "%.3f", a + b }'); done
    echo "$total"
}
server_cpu() {
    local total=0 pid daemon
    for pid in "${PIDS[@]}"; do total=$(awk -v a="$total" -v b="$(tree_cpu "$pid")" 'BEGIN { printf "%.3f", a + b }'); done
    daemon=$(pgrep -f "followers daemon --fleet-config $WORK/fleet.toml" | head -1 || true)
    if [[ -n $daemon ]]; then total=$(awk -v a="$total" -v b="$(tree_cpu "$daemon")" 'BEGIN { printf "%.3f", a + b }'); fi
    echo "$total"
}
declare -A TIMES CPUS
for run in $(seq 1 "$RUNS"); do
    for path in ah scp rsync; do
        dest=$WORK/dest-$path
        rm -rf "$dest"
        sync
        before=$(server_cpu)
        start=$(bench_now_ns)
        clients=$( ( "run_$path" "$dest" >/dev/null || exit 1; times ) | awk 'NR == 2 { gsub(/[ms]/, " "); print $1 * 60 + $2 + $3 * 60 + $4 }') ||
            bench_die "$path failed (run $run)"
        end=$(bench_now_ns)
        cpu=$(awk -v a="$(server_cpu)" -v b="$before" -v c="$clients" 'BEGIN { printf "%.2f", a - b + c }')
        TIMES[$path]+="$((end - start)) "
        CPUS[$path]+="$cpu "
        bench_log "run $run: $path $(bench_mib_per_s "$TOTAL_BYTES" $((end - start))) MiB/s, $cpu CPU s"
        if [[ $run -eq $RUNS ]]; then check "$path" "$dest"; fi
        rm -rf "$dest"
    done
done

median_ns() { printf "%.0f" "$(bench_median ${TIMES[$1]})"; }
AH_NS=$(median_ns ah)
SCP_NS=$(median_ns scp)
RSYNC_NS=$(median_ns rsync)
AH_MIBS=$(bench_mib_per_s "$TOTAL_BYTES" "$AH_NS")
SCP_MIBS=$(bench_mib_per_s "$TOTAL_BYTES" "$SCP_NS")
RSYNC_MIBS=$(bench_mib_per_s "$TOTAL_BYTES" "$RSYNC_NS")
BEST_NS=$((SCP_NS < RSYNC_NS ? SCP_NS : RSYNC_NS))
RATIO=$(awk -v a="$AH_NS" -v b="$BEST_NS" 'BEGIN { printf "%.2f\n", b / a }')
AH_CPU=$(bench_median ${CPUS[ah]})
SCP_CPU=$(bench_median ${CPUS[scp]})
RSYNC_CPU=$(bench_median ${CPUS[rsync]})
VERDICT=$(awk -v r="$RATIO" 'BEGIN { print (r >= 1.0 ? "PASS" : "FAIL") }')

printf 'slurp %s files, %s MiB from %s followers (median of %s runs)\n' "$TOTAL_FILES" "$((TOTAL_BYTES / 1048576))" "$FOLLOWERS" "$RUNS"
printf '  ah slurp   %8s MiB/s  (%s ms)\n' "$AH_MIBS" "$((AH_NS / 1000000))"
printf '  scp -r     %8s MiB/s  (%s ms)\n' "$SCP_MIBS" "$((SCP_NS / 1000000))"
printf '  rsync -a   %8s MiB/s  (%s ms)\n' "$RSYNC_MIBS" "$((RSYNC_NS / 1000000))"
printf '  CPU seconds (median): ah %s, scp %s, rsync %s\n' "$AH_CPU" "$SCP_CPU" "$RSYNC_CPU"
printf '  ah / faster of scp and rsync: %s× (target ≥ 1.0) %s\n' "$RATIO" "$VERDICT"

mkdir -p "$ROOT/bench/out"
OUT=$ROOT/bench/out/slurp-$(date -u +%Y%m%dT%H%M%SZ).json
printf '{"files":%s,"bytes":%s,"followers":%s,"runs":%s,"ahMiBs":%s,"scpMiBs":%s,"rsyncMiBs":%s,"ratio":%s,"ahCPU":%s,"scpCPU":%s,"rsyncCPU":%s,"verdict":"%s"}\n' \
    "$TOTAL_FILES" "$TOTAL_BYTES" "$FOLLOWERS" "$RUNS" "$AH_MIBS" "$SCP_MIBS" "$RSYNC_MIBS" "$RATIO" "$AH_CPU" "$SCP_CPU" "$RSYNC_CPU" "$VERDICT" >"$OUT"
bench_log "summary: $OUT"
[[ $VERDICT == PASS ]]
