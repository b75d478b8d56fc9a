#!/usr/bin/env bash
# bench/fanout/run.sh — `ah agent followers run -- true` on a fleet of followers on
# loopback, against pdsh and against parallel ssh over OpenSSH ControlMaster, in one run.
#
#   bench/fanout/run.sh
#
# The fleet: N followers (8, then 64), each a real `sshd` on its own 127.0.0.1 port with its
# own host key, each fronted by its own `ah agent enroll` executor (a distinct executor name
# f01..fNN), all enrolled with one `ah serve` (fresh data dir). One client key logs in
# everywhere as root. sshd sessions get an empty HOME (bench/lib/sshd.sh: root's ~/.bashrc is
# not part of any figure). The leader's state (XDG_STATE_HOME) is private to the run.
#
# Measured, every path running `true` on all N followers and waiting for all of them:
#   ah via AP   `ah agent followers run --fleet-config AP.toml -- true` (connect =
#               "access-point": libssh2 sessions through HTTP CONNECT → ah serve → QUIC →
#               the executor → sshd), leader service warm: started, sessions and follower
#               helpers up (a warm-up run first). Wall time of the `ah` client process.
#   ah direct   the same with connect = "direct" (TCP to each sshd; host keys still the ones
#               the executors reported). A second leader service (another fleet config).
#   pdsh        `pdsh -R ssh -f N -w f01,...,fNN true` (Debian pdsh; its ssh module runs
#               OpenSSH with PDSH_SSH_ARGS, -F pointing at a config whose Host aliases give
#               each follower's port): a new ssh connection and sshd session per host.
#   ssh CM      N `ssh fXX true` started at once over ControlMaster connections established
#               beforehand (ControlPersist), `wait` for all: no handshake, but a new sshd
#               session (fork, exec of the shell) per command.
#   cold        `ah agent followers run` (via the access point) with no leader service
#               running: starts the service, dials every follower through the tunnels,
#               verifies host keys, authenticates, starts the helpers, runs `true` — against
#               pdsh, interleaved. The service is stopped (`ah agent followers stop`) before
#               each cold run, untimed.
# Warm runs are interleaved (ah AP, ah direct, pdsh, CM, ah AP, ...), so background load hits
# all alike; medians and p90 of the wall times are reported, ratios are of medians.
# At 64 followers: ah via AP, pdsh, CM; and the leader service's peak RSS (VmHWM from
# /proc/PID/status) after the runs.
#
# Targets (issue 10): warm ah ≤ 0.5× ControlMaster and ≤ 0.3× pdsh (8 followers, each path);
# cold ≤ 1.0× pdsh; at 64: ah ≤ 0.25× pdsh and service RSS ≤ 64 MiB.
# Exit: 0 all PASS, 1 some FAIL, 2 could not measure. A summary JSON goes to bench/out/.
# Must run as root (the sshds).
#
# Environment:
#   FOLLOWERS=8        the small fleet
#   BIG=64             the large fleet (0: skip that stage)
#   RUNS=30            warm runs per path, small fleet
#   COLD_RUNS=10       cold runs (and as many pdsh runs), small fleet
#   BIG_RUNS=15        warm runs per path, large fleet
#   RUN_TIMEOUT=120    seconds before one run is killed (counts as a failure: exit 2)
#   AH_BINARY=PATH     the `ah` to measure (default: .build/release/ah). It is copied into
#                      the work dir first, so a rebuild during the run does not swap it; the
#                      followers' helper (remote_ah) is that copy too.
#   AH_SERVE_LOG_LEVEL=info
#   LEADER_LOG_LEVEL=info   --log-level of the leader service (debug: timestamps per step)
#   BENCH_TMPDIR=DIR   where the work dir goes (default: /dev/shm if present, else /tmp)
#   KEEP_WORK=1        keep the work dir (logs) after the run
#   HOLD=1             for profiling: set up the small fleet, warm it up, print where
#                      everything is and wait (SIGTERM tears it down); HOLD_INFO=FILE gets
#                      the work dir
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

FOLLOWERS=${FOLLOWERS:-8}
BIG=${BIG:-64}
RUNS=${RUNS:-30}
COLD_RUNS=${COLD_RUNS:-10}
BIG_RUNS=${BIG_RUNS:-15}
RUN_TIMEOUT=${RUN_TIMEOUT:-120}
AH_SERVE_LOG_LEVEL=${AH_SERVE_LOG_LEVEL:-info}
LEADER_LOG_LEVEL=${LEADER_LOG_LEVEL:-info}

bench_args "${1:-}" FOLLOWERS RUNS COLD_RUNS BIG_RUNS RUN_TIMEOUT
[[ $BIG =~ ^[0-9]+$ ]] || bench_die "BIG='$BIG' is not a number"
((FOLLOWERS <= 99 && BIG <= 99)) || bench_die "at most 99 followers (names f01..f99)"
((BIG == 0 || BIG > FOLLOWERS)) || bench_die "BIG=$BIG must be 0 or more than FOLLOWERS=$FOLLOWERS"

# ---- tools, work dir, access point (bench/lib/fleet.sh) ---------------------------------
for tool in ss python3 awk timeout getconf pdsh; do
    command -v "$tool" >/dev/null || bench_die "$tool is missing${tool:+ (apt-get install $tool)}"
done
fleet_init fanout

# Writes the fleet config $1 for the first $2 followers, connect = $3.
write_fleet() {
    local file=$1 count=$2 connect=$3 i
    {
        printf '[fleet]\nname = "bench-%s-%s"\nremote_server = "http://%s"\ntoken_file = "%s"\n' "$connect" "$count" "$AH_HTTP_ADDR" "$WORK/jwt"
        printf 'identity_file = "%s"\nremote_ah = "%s"\n\n' "$KEYS/id_ed25519" "$AH"
        printf '[fleet.connectivity]\nssh_connect_timeout = "60s"\n\n'
        for ((i = 0; i < count; i++)); do
            printf '[[fleet.members]]\nname = "%s"\nrole = "follower"\nhost = "127.0.0.1"\nssh_user = "root"\n' "${NAMES[i]}"
            printf 'ssh_port = %s\nconnect = "%s"\nos = "linux"\n\n' "${PORTS[i]}" "$connect"
        done
    } >"$file"
    CONFIGS+=("$file")
}

# Stops the leader service of fleet config $1 and waits until its process is gone.
stop_service() {
    local pid i
    pid=$(service_pid "$1")
    "$AH" agent followers stop --fleet-config "$1" >/dev/null 2>&1 || true
    [[ -n $pid ]] || return 0
    for ((i = 0; i < 200; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
    bench_die "the leader service (pid $pid) for $1 did not stop"
}

# ---- the timed commands (each sets RUN_NS, dies on failure) -----------------------------
ah_run() { # $1 config, $2 expected count
    local t0 t1 out
    t0=$(bench_now_ns)
    out=$(AH_LOG_LEVEL=$LEADER_LOG_LEVEL timeout -k 5 "$RUN_TIMEOUT" "$AH" agent followers run --fleet-config "$1" -- true \
        </dev/null 2>"$WORK/ah-run.err") || bench_die "ah followers run ($1) failed: $(tail -c 800 "$WORK/ah-run.err") $(tail -n 3 <<<"$out")"
    t1=$(bench_now_ns)
    [[ $(tail -n 1 <<<"$out") == "$2 passed, 0 failed, 0 unreachable" ]] || bench_die "ah followers run ($1) printed: $(tail -n 3 <<<"$out")"
    RUN_NS=$((t1 - t0))
}

pdsh_run() { # $1 count
    local t0 t1 hosts
    hosts=$(IFS=,; echo "${NAMES[*]:0:$1}")
    t0=$(bench_now_ns)
    PDSH_SSH_ARGS="-F $SSH_CONFIG.full -a -x %h" timeout -k 5 "$RUN_TIMEOUT" pdsh -S -R ssh -f "$1" -w "$hosts" true \
        </dev/null >"$WORK/pdsh.out" 2>&1 || bench_die "pdsh over $1 hosts failed: $(tail -c 800 "$WORK/pdsh.out")"
    t1=$(bench_now_ns)
    [[ ! -s $WORK/pdsh.out ]] || bench_die "pdsh printed: $(tail -c 800 "$WORK/pdsh.out")"
    RUN_NS=$((t1 - t0))
}

cm_path() { echo "$WORK/cm-$1"; }

cm_start() { # $1 count
    local i
    for ((i = 0; i < $1; i++)); do
        [[ -S $(cm_path "${NAMES[i]}") ]] && continue
        ssh -F "$SSH_CONFIG.full" -o ControlMaster=yes -o ControlPersist=yes -o ControlPath="$(cm_path "${NAMES[i]}")" \
            -fN "${NAMES[i]}" </dev/null 2>"$WORK/cm-start.err" || bench_die "ControlMaster to ${NAMES[i]} failed: $(cat "$WORK/cm-start.err")"
    done
}

cm_run() { # $1 count
    local t0 t1 i pids=() failed=0
    t0=$(bench_now_ns)
    for ((i = 0; i < $1; i++)); do
        timeout -k 5 "$RUN_TIMEOUT" ssh -F "$SSH_CONFIG.full" -o ControlMaster=no -o ControlPath="$(cm_path "${NAMES[i]}")" \
            "${NAMES[i]}" true </dev/null 2>>"$WORK/cm-run.err" &
        pids+=("$!")
    done
    for i in "${pids[@]}"; do wait "$i" || failed=$((failed + 1)); done
    t1=$(bench_now_ns)
    ((failed == 0)) || bench_die "$failed of $1 ssh runs over ControlMaster failed: $(tail -c 800 "$WORK/cm-run.err")"
    RUN_NS=$((t1 - t0))
}

# ---- stage 1: FOLLOWERS followers ----------------------------------------------------------
N=$FOLLOWERS
bench_log "starting $N followers (sshd + ah agent enroll each) behind ah serve (pid $AH_SERVER_PID) ..."
add_followers 1 "$N"
write_fleet "$WORK/ap-$N.toml" "$N" access-point
write_fleet "$WORK/direct-$N.toml" "$N" direct
read -r STEAL0 TOTAL0 < <(bench_cpu_steal_total)

bench_log "warm-up: leader services, ControlMaster connections, one run of each"
ah_run "$WORK/ap-$N.toml" "$N"
COLD_FIRST_MS=$(ms "$RUN_NS")
ah_run "$WORK/direct-$N.toml" "$N"
cm_start "$N"
pdsh_run "$N"
cm_run "$N"
ah_run "$WORK/ap-$N.toml" "$N"
ah_run "$WORK/direct-$N.toml" "$N"

if [[ -n ${HOLD:-} ]]; then
    bench_log "HOLD: fleet up; AH=$AH XDG_STATE_HOME=$XDG_STATE_HOME"
    bench_log "  configs: $WORK/ap-$N.toml $WORK/direct-$N.toml; ssh -F $SSH_CONFIG.full f01; pdsh: PDSH_SSH_ARGS='-F $SSH_CONFIG.full -a -x %h'"
    bench_log "  leader services: $(service_pid "$WORK/ap-$N.toml") (AP), $(service_pid "$WORK/direct-$N.toml") (direct); logs in $XDG_STATE_HOME/ah/leader"
    bench_log "  stop this script (SIGTERM/SIGINT) to tear the fleet down"
    echo "$WORK" >"${HOLD_INFO:-/dev/null}"
    while true; do sleep 3600 & wait $!; done  # wait: a signal runs the trap at once
fi

AP=() DIRECT=() PDSH=() CM=()
for ((r = 1; r <= RUNS; r++)); do
    ah_run "$WORK/ap-$N.toml" "$N"; AP+=("$(ms "$RUN_NS")")
    ah_run "$WORK/direct-$N.toml" "$N"; DIRECT+=("$(ms "$RUN_NS")")
    pdsh_run "$N"; PDSH+=("$(ms "$RUN_NS")")
    cm_run "$N"; CM+=("$(ms "$RUN_NS")")
    bench_log "  warm $r/$RUNS: ah AP ${AP[-1]} ms, ah direct ${DIRECT[-1]} ms, pdsh ${PDSH[-1]} ms, ssh CM ${CM[-1]} ms"
done

COLD=() COLD_PDSH=()
for ((r = 1; r <= COLD_RUNS; r++)); do
    stop_service "$WORK/ap-$N.toml"
    ah_run "$WORK/ap-$N.toml" "$N"; COLD+=("$(ms "$RUN_NS")")
    pdsh_run "$N"; COLD_PDSH+=("$(ms "$RUN_NS")")
    bench_log "  cold $r/$COLD_RUNS: ah AP ${COLD[-1]} ms, pdsh ${COLD_PDSH[-1]} ms"
done
SMALL_RSS_KIB=$(awk '/^VmHWM/ { print $2 }' "/proc/$(service_pid "$WORK/ap-$N.toml")/status" 2>/dev/null || echo 0)
stop_service "$WORK/direct-$N.toml"

# ---- stage 2: BIG followers --------------------------------------------------------------
if ((BIG > 0)); then
    bench_log "adding followers $((N + 1))..$BIG ..."
    add_followers $((N + 1)) "$BIG"
    write_fleet "$WORK/ap-$BIG.toml" "$BIG" access-point
    bench_log "warm-up at $BIG"
    ah_run "$WORK/ap-$BIG.toml" "$BIG"
    BIG_COLD_FIRST_MS=$(ms "$RUN_NS")
    cm_start "$BIG"
    pdsh_run "$BIG"
    cm_run "$BIG"
    ah_run "$WORK/ap-$BIG.toml" "$BIG"
    BIG_AP=() BIG_PDSH=() BIG_CM=()
    for ((r = 1; r <= BIG_RUNS; r++)); do
        ah_run "$WORK/ap-$BIG.toml" "$BIG"; BIG_AP+=("$(ms "$RUN_NS")")
        pdsh_run "$BIG"; BIG_PDSH+=("$(ms "$RUN_NS")")
        cm_run "$BIG"; BIG_CM+=("$(ms "$RUN_NS")")
        bench_log "  warm $r/$BIG_RUNS at $BIG: ah AP ${BIG_AP[-1]} ms, pdsh ${BIG_PDSH[-1]} ms, ssh CM ${BIG_CM[-1]} ms"
    done
    BIG_PID=$(service_pid "$WORK/ap-$BIG.toml")
    BIG_RSS_KIB=$(awk '/^VmHWM/ { print $2 }' "/proc/$BIG_PID/status")
    BIG_RSS_NOW_KIB=$(awk '/^VmRSS/ { print $2 }' "/proc/$BIG_PID/status")
fi
read -r STEAL1 TOTAL1 < <(bench_cpu_steal_total)
STEAL_PCT=$(awk -v s=$((STEAL1 - STEAL0)) -v t=$((TOTAL1 - TOTAL0)) 'BEGIN { printf "%.1f", (t > 0) ? 100 * s / t : 0 }')
kill -0 "$AH_SERVER_PID" 2>/dev/null || bench_die "ah serve died: $(tail -c 1000 "$WORK/ah-serve.err")"

# ---- report ------------------------------------------------------------------------------
line() { # label, values...
    local label=$1
    shift
    printf '  %-34s median %8.1f ms   p90 %8.1f ms\n' "$label" "$(bench_median "$@")" "$(p90 "$@")"
}
check() { # label, value, target -> prints, records FAILS
    local v
    v=$(verdict "$2" "$3")
    printf '  %-44s %6.3f   target <= %-5s %s\n' "$1" "$2" "$3" "$v"
    [[ $v == PASS ]] || FAILS+=("$1")
}
FAILS=()
m() { bench_median "$@"; }
printf '\nfan-out of `true`, %s followers on 127.0.0.1 (each sshd behind its own ah agent enroll, one ah serve); %s warm runs per path, interleaved; CPU steal %s%%\n' \
    "$N" "$RUNS" "$STEAL_PCT"
line "ah followers run, via access point" "${AP[@]}"
line "ah followers run, direct" "${DIRECT[@]}"
line "pdsh -R ssh" "${PDSH[@]}"
line "$N x ssh over ControlMaster" "${CM[@]}"
line "cold: ah followers run (no service)" "${COLD[@]}"
line "cold: pdsh (same rounds)" "${COLD_PDSH[@]}"
printf '  first run of all (service start, %s sessions through the tunnels): %s ms\n' "$N" "$COLD_FIRST_MS"
R_AP_CM=$(ratio "$(m "${AP[@]}")" "$(m "${CM[@]}")")
R_AP_PDSH=$(ratio "$(m "${AP[@]}")" "$(m "${PDSH[@]}")")
R_DI_CM=$(ratio "$(m "${DIRECT[@]}")" "$(m "${CM[@]}")")
R_DI_PDSH=$(ratio "$(m "${DIRECT[@]}")" "$(m "${PDSH[@]}")")
R_COLD=$(ratio "$(m "${COLD[@]}")" "$(m "${COLD_PDSH[@]}")")
check "warm ah (AP) / ControlMaster" "$R_AP_CM" 0.5
check "warm ah (AP) / pdsh" "$R_AP_PDSH" 0.3
check "warm ah (direct) / ControlMaster" "$R_DI_CM" 0.5
check "warm ah (direct) / pdsh" "$R_DI_PDSH" 0.3
check "cold ah (AP) / pdsh" "$R_COLD" 1.0
printf '  leader service peak RSS (VmHWM) at %s followers: %s KiB\n' "$N" "$SMALL_RSS_KIB"
R_BIG=None R_BIG_CM=None BIG_RSS_MIB=None
if ((BIG > 0)); then
    printf '\n%s followers, %s warm runs per path, interleaved\n' "$BIG" "$BIG_RUNS"
    line "ah followers run, via access point" "${BIG_AP[@]}"
    line "pdsh -R ssh -f $BIG" "${BIG_PDSH[@]}"
    line "$BIG x ssh over ControlMaster" "${BIG_CM[@]}"
    printf '  first run of all at %s: %s ms\n' "$BIG" "$BIG_COLD_FIRST_MS"
    R_BIG=$(ratio "$(m "${BIG_AP[@]}")" "$(m "${BIG_PDSH[@]}")")
    R_BIG_CM=$(ratio "$(m "${BIG_AP[@]}")" "$(m "${BIG_CM[@]}")")
    BIG_RSS_MIB=$(awk -v k="$BIG_RSS_KIB" 'BEGIN { printf "%.1f", k / 1024 }')
    check "warm ah (AP) / pdsh at $BIG" "$R_BIG" 0.25
    printf '  %-44s %6.3f   (no target)\n' "warm ah (AP) / ControlMaster at $BIG" "$R_BIG_CM"
    check "leader service VmHWM at $BIG, MiB" "$BIG_RSS_MIB" 64
    printf '  (VmRSS now: %s KiB)\n' "$BIG_RSS_NOW_KIB"
fi
RESULT=PASS
((${#FAILS[@]} == 0)) || RESULT="FAIL (${FAILS[*]})"
printf 'RESULT: %s\n' "$RESULT"

mkdir -p "$ROOT/bench/out"
out="$ROOT/bench/out/fanout-$(date -u +%Y%m%dT%H%M%SZ).json"
list() { local IFS=,; echo "$*"; }
python3 - "$out" <<EOF || true
import json, sys
json.dump({
    "followers": $N, "runs": $RUNS, "coldRuns": $COLD_RUNS, "cpuStealPercent": $STEAL_PCT,
    "warm": {"ahAccessPoint": [$(list "${AP[@]}")], "ahDirect": [$(list "${DIRECT[@]}")],
             "pdsh": [$(list "${PDSH[@]}")], "controlMaster": [$(list "${CM[@]}")]},
    "cold": {"ahAccessPoint": [$(list "${COLD[@]}")], "pdsh": [$(list "${COLD_PDSH[@]}")]},
    "ratios": {"apOverCM": $R_AP_CM, "apOverPdsh": $R_AP_PDSH, "directOverCM": $R_DI_CM, "directOverPdsh": $R_DI_PDSH,
               "coldOverPdsh": $R_COLD, "bigOverPdsh": $R_BIG, "bigOverCM": $R_BIG_CM},
    "big": {"followers": $BIG, "runs": $BIG_RUNS,
            "ahAccessPoint": [$(list "${BIG_AP[@]:-}")], "pdsh": [$(list "${BIG_PDSH[@]:-}")], "controlMaster": [$(list "${BIG_CM[@]:-}")],
            "serviceVmHWMMiB": $BIG_RSS_MIB},
    "result": "$RESULT",
}, open(sys.argv[1], "w"), indent=2)
EOF
bench_log "summary: $out"
case $RESULT in FAIL*) exit 1 ;; *) exit 0 ;; esac
