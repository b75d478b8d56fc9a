#!/usr/bin/env bash
# bench/fence/run.sh — `ah agent followers sync-fence` against `rsync -a` over OpenSSH
# ControlMaster, on one workspace, in one run.
#
#   bench/fence/run.sh
#
# The workspace: FILES files (default 50,000) in 500 directories, MIB MiB of random content
# in all (default 400), made once. The fleet: FOLLOWERS followers (default 4), each a real
# sshd on its own 127.0.0.1 port behind its own `ah agent enroll`, all behind one `ah serve`;
# the leader service reaches them through the access point (connect = "access-point").
# rsync reaches the same sshds directly, 4 in parallel, each over a ControlMaster connection
# made beforehand. Every follower has one workspace for ah and another for rsync.
#
# Measured (wall time of the client process, leader service warm: sessions and helpers up):
#   (a) initial   ah: sync-fence of the whole workspace into empty follower workspaces
#                 (leader hashes everything and fills its content store, followers write it
#                 all); rsync: `rsync -a` of the tree into empty directories, all followers
#                 in parallel.                                          target ah ≤ 1.0× rsync
#   (b) one file  one file changed, then sync-fence; then rsync -a of the same tree (also one
#                 file to send). RUNS times, medians.                   target ah ≤ 0.1× rsync
#   (c) no change sync-fence with nothing changed, RUNS times, median.   target ≤ 30 ms
#   RSS           the leader service's VmHWM (peak) and VmRSS after the runs. target ≤ 128 MiB
# Exit: 0 all PASS, 1 some FAIL, 2 could not measure. A summary JSON goes to bench/out/.
# Must run as root (the sshds).
#
# Environment:
#   FOLLOWERS=4  FILES=50000  MIB=400  RUNS=5  RUN_TIMEOUT=600
#   AH_BINARY=PATH      the `ah` to measure (default .build/release/ah), copied into the work dir
#   AH_SERVE_LOG_LEVEL=info  LEADER_LOG_LEVEL=info
#   BENCH_TMPDIR=DIR    where the work dir goes (default /dev/shm if present, else /tmp)
#   KEEP_WORK=1         keep the work dir after the run
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../lib/bench.sh
source "$ROOT/bench/lib/bench.sh"
# shellcheck source=../lib/tls.sh
source "$ROOT/bench/lib/tls.sh"
# shellcheck source=../lib/sshd.sh
source "$ROOT/bench/lib/sshd.sh"
# shellcheck source=../lib/fleet.sh
source "$ROOT/bench/lib/fleet.sh"

FOLLOWERS=${FOLLOWERS:-4}
FILES=${FILES:-50000}
MIB=${MIB:-400}
RUNS=${RUNS:-5}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}
AH_SERVE_LOG_LEVEL=${AH_SERVE_LOG_LEVEL:-info}
LEADER_LOG_LEVEL=${LEADER_LOG_LEVEL:-info}

bench_args "${1:-}" FOLLOWERS FILES MIB RUNS RUN_TIMEOUT
((FOLLOWERS <= 99)) || bench_die "at most 99 followers (names f01..f99)"

# ---- tools, work dir, access point (bench/lib/fleet.sh) ---------------------------------
for tool in ss python3 awk timeout getconf rsync; do
    command -v "$tool" >/dev/null || bench_die "$tool is missing${tool:+ (apt-get install $tool)}"
done
fleet_init fence

# Writes the fleet config $1: the leader workspace and FOLLOWERS followers through the AP.
write_fleet() {
    local file=$1 i
    {
        printf '[fleet]\nname = "bench-fence"\nremote_server = "http://%s"\ntoken_file = "%s"\n' "$AH_HTTP_ADDR" "$WORK/jwt"
        printf 'identity_file = "%s"\nremote_ah = "%s"\n\n' "$KEYS/id_ed25519" "$AH"
        printf '[fleet.sync]\nignores = []\ntimeout = "%ss"\n\n' "$RUN_TIMEOUT"
        printf '[fleet.connectivity]\nssh_connect_timeout = "60s"\n\n'
        printf '[[fleet.members]]\nname = "leader"\nrole = "leader"\nworkspace = "%s"\n\n' "$SRC"
        for ((i = 0; i < FOLLOWERS; i++)); do
            printf '[[fleet.members]]\nname = "%s"\nrole = "follower"\nhost = "127.0.0.1"\nssh_user = "root"\n' "${NAMES[i]}"
            printf 'ssh_port = %s\nconnect = "access-point"\nos = "linux"\nworkspace = "%s"\n\n' "${PORTS[i]}" "$WORK/ws/${NAMES[i]}"
        done
    } >"$file"
    CONFIGS+=("$file")
}

ah_fence() { # sets RUN_NS; dies unless every follower is consistent
    local t0 t1
    t0=$(bench_now_ns)
    AH_LOG_LEVEL=$LEADER_LOG_LEVEL timeout -k 5 "$RUN_TIMEOUT" "$AH" agent followers sync-fence --json --fleet-config "$CONFIG" \
        </dev/null >"$WORK/fence.json" 2>"$WORK/fence.err" || bench_die "sync-fence failed: $(tail -c 800 "$WORK/fence.err") $(tail -c 800 "$WORK/fence.json")"
    t1=$(bench_now_ns)
    RUN_NS=$((t1 - t0))
}

rsync_all() { # sets RUN_NS
    local t0 t1 i pids=() failed=0
    t0=$(bench_now_ns)
    for ((i = 0; i < FOLLOWERS; i++)); do
        timeout -k 5 "$RUN_TIMEOUT" rsync -a --delete \
            -e "ssh -F $SSH_CONFIG.full -o ControlMaster=no -o ControlPath=$WORK/cm-${NAMES[i]}" \
            "$SRC/" "${NAMES[i]}:$WORK/rs/${NAMES[i]}/" </dev/null 2>>"$WORK/rsync.err" &
        pids+=("$!")
    done
    for i in "${pids[@]}"; do wait "$i" || failed=$((failed + 1)); done
    t1=$(bench_now_ns)
    ((failed == 0)) || bench_die "$failed rsync runs failed: $(tail -c 800 "$WORK/rsync.err")"
    RUN_NS=$((t1 - t0))
}

# ---- the workspace ---------------------------------------------------------------------
SRC=$WORK/src
bench_log "making the workspace: $FILES files, $MIB MiB ..."
python3 - "$SRC" "$FILES" "$MIB" <<'PY'
import os, random, sys
root, files, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(7)
total = mib << 20
average = total // files
blob = os.urandom(total + 4 * average)
offset = 0
for i in range(files):
    directory = os.path.join(root, "d%03d" % (i % 500))
    os.makedirs(directory, exist_ok=True)
    size = random.randint(average // 2, average * 3 // 2) if i < files - 1 else max(0, total - offset)
    with open(os.path.join(directory, "f%05d" % i), "wb") as f:
        f.write(blob[offset:offset + size])
    offset += size
PY
mkdir -p "$WORK/ws" "$WORK/rs"

bench_log "starting $FOLLOWERS followers behind ah serve (pid $AH_SERVER_PID) ..."
add_followers 1 "$FOLLOWERS"
CONFIG=$WORK/fleet.toml
write_fleet "$CONFIG"
for ((i = 0; i < FOLLOWERS; i++)); do
    ssh -F "$SSH_CONFIG.full" -o ControlMaster=yes -o ControlPersist=yes -o ControlPath="$WORK/cm-${NAMES[i]}" \
        -fN "${NAMES[i]}" </dev/null 2>"$WORK/cm-start.err" || bench_die "ControlMaster to ${NAMES[i]} failed: $(cat "$WORK/cm-start.err")"
done
# Warm the leader service (it starts here, so it takes LEADER_LOG_LEVEL): sessions and helpers
# up, nothing synced yet.
AH_LOG_LEVEL=$LEADER_LOG_LEVEL "$AH" agent followers list --fleet-config "$CONFIG" >/dev/null 2>"$WORK/list.err" || bench_die "followers list failed: $(cat "$WORK/list.err")"
LEADER_PID=$(service_pid "$CONFIG")

bench_log "(a) initial: ah sync-fence, then rsync -a ..."
ah_fence; A_AH=$RUN_NS
rsync_all; A_RS=$RUN_NS
for ((i = 0; i < FOLLOWERS; i++)); do
    diff -r "$SRC" "$WORK/ws/${NAMES[i]}" >/dev/null || bench_die "${NAMES[i]}'s workspace differs from the leader's after the fence"
done

bench_log "(b) one file changed, $RUNS times ..."
B_AH=() B_RS=()
for ((r = 0; r < RUNS; r++)); do
    printf 'change %s\n' "$r" >>"$SRC/d123/f00123"
    ah_fence; B_AH+=("$RUN_NS")
    rsync_all; B_RS+=("$RUN_NS")
done

bench_log "(c) nothing changed, $RUNS times ..."
C_AH=()
for ((r = 0; r < RUNS; r++)); do ah_fence; C_AH+=("$RUN_NS"); done

HWM_KIB=$(awk '/^VmHWM/ { print $2 }' "/proc/$LEADER_PID/status")
RSS_KIB=$(awk '/^VmRSS/ { print $2 }' "/proc/$LEADER_PID/status")

A_RATIO=$(ratio "$A_AH" "$A_RS")
B_AH_MED=$(bench_median "${B_AH[@]}"); B_RS_MED=$(bench_median "${B_RS[@]}")
B_RATIO=$(ratio "$B_AH_MED" "$B_RS_MED")
C_MED=$(bench_median "${C_AH[@]}")
A_V=$(verdict "$A_RATIO" 1.0); B_V=$(verdict "$B_RATIO" 0.1)
C_V=$(verdict "$(ms "$C_MED")" 30); RSS_V=$(verdict "$((HWM_KIB / 1024))" 128)

printf '\n%s\n' "bench/fence: $FILES files, $MIB MiB, $FOLLOWERS followers through the access point"
printf '%-34s %12s %12s %8s %s\n' case "ah (ms)" "rsync (ms)" ratio verdict
printf '%-34s %12s %12s %8s %s\n' "(a) initial" "$(ms "$A_AH")" "$(ms "$A_RS")" "$A_RATIO" "$A_V (≤ 1.0)"
printf '%-34s %12s %12s %8s %s\n' "(b) one file changed (median)" "$(ms "$B_AH_MED")" "$(ms "$B_RS_MED")" "$B_RATIO" "$B_V (≤ 0.1)"
printf '%-34s %12s %12s %8s %s\n' "(c) nothing changed (median)" "$(ms "$C_MED")" "-" "-" "$C_V (≤ 30 ms)"
printf '%-34s %12s\n' "leader service peak RSS (MiB)" "$((HWM_KIB / 1024)) ($RSS_V, ≤ 128; now $((RSS_KIB / 1024)))"
printf 'runs (ms): b ah: %s; b rsync: %s; c: %s\n' "$(for v in "${B_AH[@]}"; do ms "$v"; done | tr '\n' ' ')" \
    "$(for v in "${B_RS[@]}"; do ms "$v"; done | tr '\n' ' ')" "$(for v in "${C_AH[@]}"; do ms "$v"; done | tr '\n' ' ')"

mkdir -p "$ROOT/bench/out"
OUT=$ROOT/bench/out/fence-$(date -u +%Y%m%dT%H%M%SZ).json
printf '{"files":%s,"mib":%s,"followers":%s,"a":{"ahMs":%s,"rsyncMs":%s,"ratio":%s},"b":{"ahMs":%s,"rsyncMs":%s,"ratio":%s},"c":{"ahMs":%s},"leaderPeakRssMiB":%s}\n' \
    "$FILES" "$MIB" "$FOLLOWERS" "$(ms "$A_AH")" "$(ms "$A_RS")" "$A_RATIO" "$(ms "$B_AH_MED")" "$(ms "$B_RS_MED")" "$B_RATIO" \
    "$(ms "$C_MED")" "$((HWM_KIB / 1024))" >"$OUT"
bench_log "summary: $OUT"
[[ $A_V == PASS && $B_V == PASS && $C_V == PASS && $RSS_V == PASS ]]
