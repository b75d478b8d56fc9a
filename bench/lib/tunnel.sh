# The three ssh paths of bench/tunnel-throughput and bench/tunnel-connect (sourced, bash,
# after lib/bench.sh, lib/tls.sh and lib/sshd.sh). Everything on 127.0.0.1:
#
#   target sshd   the executor's sshd, where every path ends
#   jump sshd     a second sshd (AllowTcpForwarding yes) for OpenSSH's ProxyJump
#   ah serve      fresh data dir; `ah agent enroll` (node1, --ssh-dst = target sshd)
#
# bench_tunnel_setup needs AH, WORK, CIPHER and KEX (may be empty), AH_SERVE_LOG_LEVEL and sets:
#   SSH_CONFIG        ssh client config (key, batch mode, no host key checks, cipher)
#   SSH_AH=(...)      ssh through ah: ProxyCommand `ah connect %h` → ah serve → QUIC → agent
#   SSH_JUMP=(...)    ssh -J root@127.0.0.1:JUMP_PORT -p TARGET_PORT 127.0.0.1
#   SSH_DIRECT=(...)  ssh -p TARGET_PORT 127.0.0.1
#   TARGET_SSHD_PID JUMP_SSHD_PID AH_SERVER_PID AH_AGENT_PID AH_HTTP_ADDR AH_QUIC_ADDR
# Append the remote command to the arrays. bench_tunnel_cleanup stops all of it.

TARGET_SSHD_PID="" JUMP_SSHD_PID="" AH_SERVER_PID="" AH_AGENT_PID=""

bench_tunnel_setup() {
    local keys=$WORK/keys token pin
    bench_ssh_keys "$keys" || bench_die "ssh-keygen failed"
    TARGET_PORT=$(bench_free_tcp_port)
    bench_sshd_start target "$TARGET_PORT" "$keys" "AllowTcpForwarding no" ||
        bench_die "target sshd did not start on 127.0.0.1:$TARGET_PORT: $(tail -c 1000 "$keys/target.log")"
    TARGET_SSHD_PID=$BENCH_SSHD_PID
    JUMP_PORT=$(bench_free_tcp_port)
    bench_sshd_start jump "$JUMP_PORT" "$keys" "AllowTcpForwarding yes" ||
        bench_die "jump sshd did not start on 127.0.0.1:$JUMP_PORT: $(tail -c 1000 "$keys/jump.log")"
    JUMP_SSHD_PID=$BENCH_SSHD_PID
    SSH_CONFIG=$WORK/ssh_config
    bench_ssh_client_config "$SSH_CONFIG" "$keys/id_ed25519" "$CIPHER" "${KEX:-}"

    "$AH" serve --data-dir "$WORK/ap" --quic-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --log-level "$AH_SERVE_LOG_LEVEL" \
        >"$WORK/ah-serve.out" 2>"$WORK/ah-serve.err" &
    AH_SERVER_PID=$!
    AH_QUIC_ADDR=$(bench_wait_for_line "$WORK/ah-serve.out" "quic listening on " 30 "$AH_SERVER_PID") ||
        bench_die "ah serve did not announce its QUIC address: $(tail -c 1000 "$WORK/ah-serve.err")"
    AH_HTTP_ADDR=$(bench_wait_for_line "$WORK/ah-serve.out" "http listening on " 30 "$AH_SERVER_PID") ||
        bench_die "ah serve did not announce its HTTP address: $(tail -c 1000 "$WORK/ah-serve.err")"
    AH_HTTP_ADDR=${AH_HTTP_ADDR%% *}
    token=$("$AH" token create --data-dir "$WORK/ap" --uses 1 2>"$WORK/token.err") ||
        bench_die "ah token create failed: $(cat "$WORK/token.err")"
    pin=$("$AH" ca pin --data-dir "$WORK/ap" 2>"$WORK/pin.err") || bench_die "ah ca pin failed: $(cat "$WORK/pin.err")"
    (umask 077 && "$AH" user token --data-dir "$WORK/ap" --sub bench --ttl 1d >"$WORK/jwt" 2>"$WORK/jwt.err") ||
        bench_die "ah user token failed: $(cat "$WORK/jwt.err")"
    "$AH" agent enroll --remote-server "quic://$AH_QUIC_ADDR" --state-dir "$WORK/executor" --name node1 \
        --token "$token" --ca-pin "$pin" --ssh-dst "127.0.0.1:$TARGET_PORT" \
        >"$WORK/ah-agent.out" 2>"$WORK/ah-agent.err" &
    AH_AGENT_PID=$!
    bench_tunnel_wait_connected node1 30 || bench_die "node1 did not show up as connected: $(tail -c 1000 "$WORK/ah-agent.err")"

    SSH_AH=(ssh -F "$SSH_CONFIG" -o "ProxyCommand=$AH connect %h --remote-server http://$AH_HTTP_ADDR --token-file $WORK/jwt"
        node1)
    SSH_JUMP=(ssh -F "$SSH_CONFIG" -J "root@127.0.0.1:$JUMP_PORT" -p "$TARGET_PORT" 127.0.0.1)
    SSH_DIRECT=(ssh -F "$SSH_CONFIG" -p "$TARGET_PORT" 127.0.0.1)
    bench_log "target sshd (pid $TARGET_SSHD_PID) on 127.0.0.1:$TARGET_PORT, jump sshd (pid $JUMP_SSHD_PID) on 127.0.0.1:$JUMP_PORT"
    bench_log "ah serve (pid $AH_SERVER_PID) on quic://$AH_QUIC_ADDR, http://$AH_HTTP_ADDR; ah agent enroll node1 (pid $AH_AGENT_PID)"
}

# Waits up to $2 seconds until `ah executors list` shows executor $1 as connected.
bench_tunnel_wait_connected() {
    local name=$1 deadline=$((SECONDS + $2))
    while ((SECONDS < deadline)); do
        if "$AH" executors list --remote-server "http://$AH_HTTP_ADDR" --token "$(cat "$WORK/jwt")" --json 2>/dev/null |
            python3 -c 'import json, sys
items = json.load(sys.stdin)["items"]
sys.exit(0 if any(i["name"] == sys.argv[1] and i["state"] == "connected" for i in items) else 1)' "$name"; then
            return 0
        fi
        kill -0 "$AH_AGENT_PID" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}

# Up to $1 (default 5) warning/error lines from the ah serve and agent logs so far, for the
# report (not the "no ACL configured" notice every bench access point has).
bench_tunnel_log_warnings() {
    grep -hE '^[^ ]+ (warning|error|critical) ' "$WORK/ah-serve.err" "$WORK/ah-agent.err" 2>/dev/null |
        grep -v 'no ACL configured' | head -n "${1:-5}" || true
}

bench_tunnel_cleanup() {
    bench_stop "$AH_AGENT_PID" 5
    bench_stop "$AH_SERVER_PID" 5
    bench_stop "$JUMP_SSHD_PID" 3
    bench_stop "$TARGET_SSHD_PID" 3
    AH_AGENT_PID="" AH_SERVER_PID="" JUMP_SSHD_PID="" TARGET_SSHD_PID=""
}

# CPU seconds (user + system) of the reaped children of process $1 (/proc/PID/stat fields
# 16-17): for an sshd -D listener, the sessions it has forked and that have ended.
bench_children_cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.3f\n", ($14 + $15) / hz }' "/proc/$1/stat"
}
