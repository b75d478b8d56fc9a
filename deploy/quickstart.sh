#!/usr/bin/env bash
# Quick start on one machine: build ah, run an access point on 127.0.0.1, enroll one
# executor into it, list it through the REST API, then keep both running until Ctrl-C.
# Everything lives in a temporary directory that is removed on exit.
#
#   deploy/quickstart.sh            # AH=path/to/ah to skip the build
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ -z "${AH:-}" ]; then
    swift build -c release --product ah
    AH=$PWD/.build/release/ah
fi
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

wait_for_line() {  # FILE PREFIX: wait (up to 30 s) until FILE has a line starting with PREFIX
    for _ in $(seq 300); do
        grep -qs "^$2" "$1" && { sed -n "s/^$2//p" "$1" | head -1; return 0; }
        sleep 0.1
    done
    echo "timed out waiting for '$2' in $1" >&2; return 1
}

"$AH" serve --data-dir "$WORK/data" --quic-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
    >"$WORK/serve.out" 2>"$WORK/serve.log" &
PIDS+=($!)
QUIC=$(wait_for_line "$WORK/serve.out" "quic listening on ")
HTTP=$(wait_for_line "$WORK/serve.out" "http listening on ")
echo "access point: QUIC $QUIC, HTTP $HTTP, data dir $WORK/data"

PIN=$("$AH" ca pin --data-dir "$WORK/data")
# Secrets go through files (0600), never on a command line where ps shows them.
umask 077
"$AH" token create --data-dir "$WORK/data" --ttl 15m --tag os=linux >"$WORK/join-token"
"$AH" agent enroll --remote-server "quic://$QUIC" --state-dir "$WORK/executor" --name demo-1 \
    --token-file "$WORK/join-token" --ca-pin "$PIN" 2>"$WORK/agent.log" &
PIDS+=($!)
for _ in $(seq 100); do grep -qs "connected to access point" "$WORK/agent.log" && break; sleep 0.1; done

"$AH" user token --data-dir "$WORK/data" --sub demo --role viewer >"$WORK/user-token"
echo
"$AH" executors list --remote-server "http://$HTTP" --token-file "$WORK/user-token"
echo
echo "logs: $WORK/serve.log $WORK/agent.log — Ctrl-C to stop"
wait
