#!/usr/bin/env bash
# bench/events/run.sh — leader events through the uplink to SSE consumers, on loopback.
#
#   bench/events/run.sh
#
# One `ah serve` (fresh data dir), one executor enrolled with it (`ah agent enroll`, ssh
# disabled): the leader's identity. `ah debug emit-events` is the leader side: a real
# EventJournal (SQLite) and the real EventPusher (QUIC, ALPN ah-events/1, that executor's
# mTLS identity), appending `hostLog` events (80 bytes of text, `emitNs` = wall clock at
# emission) for DURATION as fast as the pipeline takes them: it pauses while more than
# WINDOW events are unacknowledged by the access point (running further ahead only grows the
# journal's backlog and every event's latency, not the rate delivered). CONSUMERS SSE consumers attach
# to /api/v1/sessions/ID/events before the timed emission starts (the emitter journals one
# event first so the session exists, then waits; the access point's ah_sse_consumers gauge
# says when all are attached): one Python consumer (bench/events/consume.py: de-chunks,
# checks ids are consecutive, measures emit → receive latency of every timed event; with
# LATENCY_DUMP=FILE it also writes each one's emit time and latency) and CONSUMERS-1
# `curl -N` consumers whose
# output is checked afterwards (every id once, in order).
#
# Reported: events emitted and acknowledged (ingested) per second, events delivered per
# second per consumer, p50/p99/max emit → SSE latency, the access point's CPU (user+sys
# seconds over the run, as % of one core) and RSS (peak VmHWM, and VmRSS at the end).
# Target (issue 13): ≥ 20,000 events/s ingested and delivered to each consumer, p99 < 50 ms.
# Exit: 0 PASS, 1 FAIL, 2 could not measure. A summary JSON goes to bench/out/.
#
# Environment:
#   DURATION=30        seconds of emission
#   CONSUMERS=10       SSE consumers
#   WINDOW=1000        unacknowledged events at most (ah debug emit-events --max-unacknowledged):
#                      the median latency is about WINDOW / rate, so 1000 at 20,000+ events/s
#   AH_BINARY=PATH     the `ah` to measure (default: .build/release/ah; copied to the work dir)
#   BENCH_TMPDIR=DIR   where the work dir goes (default: /dev/shm if present, else /tmp)
#   KEEP_WORK=1        keep the work dir (logs)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../lib/bench.sh
source "$ROOT/bench/lib/bench.sh"

DURATION=${DURATION:-30}
CONSUMERS=${CONSUMERS:-10}
WINDOW=${WINDOW:-1000}

bench_args "${1:-}"

TMPBASE=${BENCH_TMPDIR:-$([[ -d /dev/shm ]] && echo /dev/shm || echo /tmp)}
WORK=$(mktemp -d "$TMPBASE/ah-bench-events.XXXXXX")
AH_SRC=${AH_BINARY:-$ROOT/.build/release/ah}
[[ -x $AH_SRC ]] || bench_die "no ah binary at $AH_SRC (build first)"
cp "$AH_SRC" "$WORK/ah"
AH=$WORK/ah

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do bench_stop "$pid" 3; done
    if [[ -z ${KEEP_WORK:-} ]]; then rm -rf "$WORK"; else bench_log "work dir kept: $WORK"; fi
}
trap cleanup EXIT

"$AH" serve --data-dir "$WORK/data" --quic-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 >"$WORK/serve.out" 2>"$WORK/serve.log" &
SERVE=$!
PIDS+=("$SERVE")
QUIC=$(bench_wait_for_line "$WORK/serve.out" "quic listening on " 30 "$SERVE") || bench_die "ah serve did not start: $(tail -5 "$WORK/serve.log")"
HTTP=$(bench_wait_for_line "$WORK/serve.out" "http listening on " 30 "$SERVE") || bench_die "no http listener"
PIN=$(bench_wait_for_line "$WORK/serve.out" "ca pin " 30 "$SERVE") || bench_die "no ca pin"
HTTP_PORT=${HTTP##*:}
TOKEN=$("$AH" token create --data-dir "$WORK/data")
"$AH" agent enroll --remote-server "quic://$QUIC" --state-dir "$WORK/agent" --name leader --token "$TOKEN" --ca-pin "$PIN" \
    --ssh disabled >"$WORK/agent.out" 2>"$WORK/agent.log" &
PIDS+=("$!")
for ((i = 0; i < 300; i++)); do grep -q "connections=1" "$WORK/agent.log" && break; sleep 0.1; done
grep -q "connections=1" "$WORK/agent.log" || bench_die "the executor did not connect: $(tail -5 "$WORK/agent.log")"
VIEWER=$("$AH" user token --data-dir "$WORK/data" --sub bench --role viewer --ttl 1h)
SESSION="bench-$(date +%s)"

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
CLK=$(getconf CLK_TCK)

# The emitter journals one event (the session then exists), says ready, and starts its timed
# emission on a line from the fifo: every consumer is attached and live before it starts, so
# none is catching up on history while latency is measured.
mkfifo "$WORK/go"
exec 3<>"$WORK/go"
/usr/bin/time -v -o "$WORK/emit.time" "$AH" debug emit-events --agent-state-dir "$WORK/agent" --journal "$WORK/journal.sqlite" --session "$SESSION" \
    --duration "${DURATION}s" --max-unacknowledged "$WINDOW" --wait-for-start --log-level warning <"$WORK/go" >"$WORK/emit.out" 2>"$WORK/emit.log" &
EMIT=$!
PIDS+=("$EMIT")
for ((i = 0; i < 600; i++)); do grep -q '"ready":true' "$WORK/emit.out" && break; kill -0 "$EMIT" 2>/dev/null || break; sleep 0.05; done
grep -q '"ready":true' "$WORK/emit.out" || bench_die "the emitter did not get its first event acknowledged: $(tail -5 "$WORK/emit.log")"

python3 "$HERE/consume.py" 127.0.0.1 "$HTTP_PORT" "$SESSION" "$VIEWER" 1 5 $((DURATION + 90)) >"$WORK/consumer-0.json" &
CONSUMER=$!
PIDS+=("$CONSUMER")
CURLS=()
for ((c = 1; c < CONSUMERS; c++)); do
    curl -sN --max-time $((DURATION + 90)) -H "Authorization: Bearer $VIEWER" "http://$HTTP/api/v1/sessions/$SESSION/events" \
        >"$WORK/consumer-$c.sse" &
    CURLS+=("$!")
    PIDS+=("$!")
done
# All attached: the access point's own gauge says so.
for ((i = 0; i < 200; i++)); do
    attached=$(curl -s -H "Authorization: Bearer $VIEWER" "http://$HTTP/metrics" | awk '$1 == "ah_sse_consumers" { print $2 }')
    [[ ${attached%.*} == "$CONSUMERS" ]] && break
    sleep 0.05
done
[[ ${attached%.*} == "$CONSUMERS" ]] || bench_die "only ${attached:-0} of $CONSUMERS SSE consumers attached"

bench_log "emitting hostLog events for ${DURATION}s to session $SESSION, $CONSUMERS SSE consumers attached"
CPU0=$(cpu_ticks "$SERVE")
T0=$(bench_now_ns)
echo go >&3

wait "$EMIT" || bench_die "the emitter failed: $(tail -5 "$WORK/emit.log")"
T1=$(bench_now_ns)
CPU1=$(cpu_ticks "$SERVE")
HWM=$(awk '/VmHWM/ { print $2 }' "/proc/$SERVE/status")
RSS=$(awk '/VmRSS/ { print $2 }' "/proc/$SERVE/status")
EMITTED=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["emitted"])' "$WORK/emit.out")
ACKED=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["acknowledged"])' "$WORK/emit.out")
EMIT_S=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["emitSeconds"])' "$WORK/emit.out")
TOTAL_S=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["totalSeconds"])' "$WORK/emit.out")
# What the access point holds: the count every consumer must have received.
STORED=$(curl -s -H "Authorization: Bearer $VIEWER" "http://$HTTP/api/v1/sessions/$SESSION/info" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["lastSeq"])')
wait "$CONSUMER" || true
for pid in "${CURLS[@]}"; do
    # The curl consumers have everything once the Python one went quiet; give them a moment.
    for ((i = 0; i < 50; i++)); do [[ $(grep -c '^id: ' "$WORK/consumer-1.sse" 2>/dev/null || echo 0) -ge $STORED ]] && break; sleep 0.1; done
    bench_stop "$pid" 1
done

CURL_OK=0
for ((c = 1; c < CONSUMERS; c++)); do
    if awk -v n="$STORED" '/^id: / { if ($2 != ++i) bad = 1 } END { exit !(i == n && !bad) }' "$WORK/consumer-$c.sse"; then
        CURL_OK=$((CURL_OK + 1))
    fi
done

python3 - "$WORK" "$EMITTED" "$STORED" "$EMIT_S" "$TOTAL_S" "$CPU0" "$CPU1" "$CLK" "$T0" "$T1" "$HWM" "$RSS" "$CURL_OK" "$CONSUMERS" "$ROOT" <<'PY'
import json, sys, time
work, emitted, acked, emit_s, total_s, cpu0, cpu1, clk, t0, t1, hwm, rss, curl_ok, consumers, root = sys.argv[1:]
emitted, acked, emit_s, total_s = int(emitted), int(acked), float(emit_s), float(total_s)
consumer = json.load(open(f"{work}/consumer-0.json"))
cpu = (int(cpu1) - int(cpu0)) / int(clk)
wall = (int(t1) - int(t0)) / 1e9
ingested = acked / total_s
summary = {
    "emitted": emitted, "acknowledged": acked, "emitSeconds": round(emit_s, 2), "totalSeconds": round(total_s, 2),
    "ingestedPerSecond": round(ingested), "emittedPerSecond": round(emitted / emit_s),
    "consumer": consumer, "curlConsumersComplete": f"{curl_ok}/{int(consumers) - 1}",
    "accessPointCpuSeconds": round(cpu, 2), "accessPointCpuPercentOfOneCore": round(100 * cpu / wall),
    "accessPointPeakRssMiB": round(int(hwm) / 1024, 1), "accessPointRssMiB": round(int(rss) / 1024, 1),
}
emitter = {k.strip(): v.strip() for k, v in (l.split(": ", 1) for l in open(f"{work}/emit.time") if ": " in l)}
summary["emitterCpuSeconds"] = round(float(emitter.get("User time (seconds)", 0)) + float(emitter.get("System time (seconds)", 0)), 2)
complete = consumer.get("received") == acked and consumer.get("gaps") == 0 and consumer.get("repeats") == 0 \
    and int(curl_ok) == int(consumers) - 1 and acked == emitted
passed = complete and ingested >= 20000 and (consumer.get("p99Ms") or 1e9) < 50
summary["result"] = "PASS" if passed else "FAIL"
print(json.dumps(summary, indent=2))
stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
json.dump(summary, open(f"{root}/bench/out/events-{stamp}.json", "w"), indent=2)
sys.exit(0 if passed else 1)
PY
