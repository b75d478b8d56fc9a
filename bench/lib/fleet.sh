# bench/lib/fleet.sh — the fleet the leader benches share (sourced after bench.sh, tls.sh and
# sshd.sh): one `ah serve` with a fresh data dir, one client key, and followers that are each
# a real sshd (own port, own host key, empty HOME) behind their own `ah agent enroll`.
#
#   fleet_init NAME        checks sshd, copies $AH_BINARY (default .build/release/ah) into a
#                          fresh work dir ($BENCH_TMPDIR/ah-NAME-bench.XXXXXX), installs the
#                          cleanup trap, makes the client key and starts `ah serve`. Sets WORK,
#                          AH, KEYS, SSH_CONFIG, AH_QUIC_ADDR, AH_HTTP_ADDR, PIN ($WORK/jwt holds
#                          an operator token); XDG_STATE_HOME is the work dir's (the leader's
#                          state is private to the run).
#   add_followers FROM TO  followers fFROM..fTO (NAMES, PORTS; ssh aliases in $SSH_CONFIG.full),
#                          waiting until each is connected and has reported its host keys.
#   service_pid CONFIG     the leader service's pid for that fleet config (empty when none).
#   p90 / ms / ratio / verdict   the statistics both benches print.
# The caller appends its fleet configs to CONFIGS (each one's service is stopped at exit).

SSHD_PIDS=() AGENT_PIDS=() AH_SERVER_PID="" CONFIGS=() PORTS=() NAMES=()

cleanup() {
    local cfg pid
    set +e
    for cfg in "${CONFIGS[@]}"; do "$AH" agent followers stop --fleet-config "$cfg" >/dev/null 2>&1; done
    for cfg in "$WORK"/cm-*; do [[ -S $cfg ]] && ssh -F "$SSH_CONFIG" -o ControlPath="$cfg" -O exit x >/dev/null 2>&1; done
    for pid in "${AGENT_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${SSHD_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    bench_stop "$AH_SERVER_PID" 5
    for pid in "${AGENT_PIDS[@]}" "${SSHD_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    if [[ -n ${KEEP_WORK:-} ]]; then bench_log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}

fleet_init() {
    bench_sshd_require
    SRC_AH=${AH_BINARY:-$ROOT/.build/release/ah}
    [[ -x $SRC_AH ]] || bench_die "no ah executable at $SRC_AH (build it, or set AH_BINARY)"

    # The work dir.
    if [[ -z ${BENCH_TMPDIR:-} ]]; then
        if [[ -d /dev/shm && -w /dev/shm ]]; then BENCH_TMPDIR=/dev/shm; else BENCH_TMPDIR=${TMPDIR:-/tmp}; fi
    fi
    WORK=$(mktemp -d "$BENCH_TMPDIR/ah-$1-bench.XXXXXX")
    chmod 0755 "$WORK"
    mkdir -p "$WORK/bin" "$WORK/state"
    cp "$SRC_AH" "$WORK/bin/ah"
    AH=$WORK/bin/ah
    export XDG_STATE_HOME=$WORK/state AH_TOKEN_FILE=""

    trap cleanup EXIT
    trap 'exit 130' INT TERM

    # The client key and the access point.
    KEYS=$WORK/keys
    mkdir -p "$KEYS" && chmod 0700 "$KEYS"
    ssh-keygen -q -t ed25519 -N '' -C bench-client -f "$KEYS/id_ed25519" </dev/null >/dev/null || bench_die "ssh-keygen failed"
    SSH_CONFIG=$WORK/ssh_config
    bench_ssh_client_config "$SSH_CONFIG.base" "$KEYS/id_ed25519"
    : >"$SSH_CONFIG"

    "$AH" serve --data-dir "$WORK/ap" --quic-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --log-level "$AH_SERVE_LOG_LEVEL" \
        >"$WORK/ah-serve.out" 2>"$WORK/ah-serve.err" &
    AH_SERVER_PID=$!
    AH_QUIC_ADDR=$(bench_wait_for_line "$WORK/ah-serve.out" "quic listening on " 30 "$AH_SERVER_PID") ||
        bench_die "ah serve did not announce its QUIC address: $(tail -c 1000 "$WORK/ah-serve.err")"
    AH_HTTP_ADDR=$(bench_wait_for_line "$WORK/ah-serve.out" "http listening on " 30 "$AH_SERVER_PID") ||
        bench_die "ah serve did not announce its HTTP address: $(tail -c 1000 "$WORK/ah-serve.err")"
    AH_HTTP_ADDR=${AH_HTTP_ADDR%% *}
    PIN=$("$AH" ca pin --data-dir "$WORK/ap" 2>"$WORK/pin.err") || bench_die "ah ca pin failed: $(cat "$WORK/pin.err")"
    (umask 077 && "$AH" user token --data-dir "$WORK/ap" --sub bench --ttl 1d >"$WORK/jwt" 2>"$WORK/jwt.err") ||
        bench_die "ah user token failed: $(cat "$WORK/jwt.err")"
}

# p90 (nearest rank) of the numbers given as arguments.
p90() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { i = int(NR * 0.9 + 0.999999); if (i < 1) i = 1; print v[i] }'; }
ms() { awk -v ns="$1" 'BEGIN { printf "%.1f\n", ns / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", a / b }'; }
verdict() { awk -v r="$1" -v m="$2" 'BEGIN { print (r <= m) ? "PASS" : "FAIL" }'; }

# Followers $1..$2: an sshd each (own host key) and an executor each; waits until every one
# of them is connected and has reported its sshd host keys (the leader verifies against them).
add_followers() {
    local from=$1 to=$2 i name dir port token
    token=$("$AH" token create --data-dir "$WORK/ap" --uses $((to - from + 1)) 2>"$WORK/token.err") ||
        bench_die "ah token create failed: $(cat "$WORK/token.err")"
    for ((i = from; i <= to; i++)); do
        name=$(printf 'f%02d' "$i")
        dir=$WORK/f/$name
        mkdir -p "$dir" && chmod 0700 "$dir"
        ssh-keygen -q -t ed25519 -N '' -C "bench-$name" -f "$dir/host_ed25519" </dev/null >/dev/null || bench_die "ssh-keygen failed"
        cp "$KEYS/id_ed25519.pub" "$dir/authorized_keys" && chmod 0600 "$dir/authorized_keys"
        port=$(bench_free_tcp_port)
        bench_sshd_start sshd "$port" "$dir" "AllowTcpForwarding no" ||
            bench_die "sshd $name did not start on 127.0.0.1:$port: $(tail -c 1000 "$dir/sshd.log")"
        SSHD_PIDS+=("$BENCH_SSHD_PID")
        "$AH" agent enroll --remote-server "quic://$AH_QUIC_ADDR" --state-dir "$WORK/exec/$name" --name "$name" \
            --token "$token" --ca-pin "$PIN" --ssh-dst "127.0.0.1:$port" \
            >"$WORK/exec-$name.out" 2>"$WORK/exec-$name.err" &
        AGENT_PIDS+=("$!")
        NAMES+=("$name")
        PORTS+=("$port")
        printf 'Host %s\n  HostName 127.0.0.1\n  Port %s\n' "$name" "$port" >>"$SSH_CONFIG"
    done
    local deadline=$((SECONDS + 120))
    while ! "$AH" executors list --remote-server "http://$AH_HTTP_ADDR" --token "$(cat "$WORK/jwt")" --json 2>/dev/null |
        python3 -c 'import json, sys
want = set(sys.argv[1:])
items = {i["name"]: i for i in json.load(sys.stdin)["items"]}
ok = all(n in items and items[n]["state"] == "connected" and ((items[n].get("facts") or {}).get("sshHostKeys") or []) for n in want)
sys.exit(0 if ok else 1)' "${NAMES[@]:from-1:to-from+1}"; do
        ((SECONDS < deadline)) || bench_die "followers f$(printf %02d "$from")..f$(printf %02d "$to") did not all connect within 120 s"
        sleep 0.5
    done
    # The per-host aliases first, then the shared settings (ssh takes the first value seen).
    { cat "$SSH_CONFIG" ; cat "$SSH_CONFIG.base"; } >"$SSH_CONFIG.full.tmp"
    mv "$SSH_CONFIG.full.tmp" "$SSH_CONFIG.full"
}

# The pid of the leader service for fleet config $1 (empty when none runs).
service_pid() {
    local cmdline pid
    for cmdline in /proc/[0-9]*/cmdline; do
        pid=${cmdline#/proc/}
        pid=${pid%/cmdline}
        if { tr '\0' ' ' <"$cmdline"; } 2>/dev/null | grep -qF "followers daemon --fleet-config $1 "; then
            echo "$pid"
            return 0
        fi
    done
}
