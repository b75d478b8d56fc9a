#!/usr/bin/env bash
# Quick start on one machine: build ah, run an access point on 127.0.0.1, enroll one
# executor into it, list it through the REST API; as root (a demo sshd needs it) the
# executor fronts its own sshd and a leader runs `ah agent followers run` on it through the
# access point. Then everything keeps running until Ctrl-C.
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
# As root: a demo sshd on a free port (its own keys, key login only) for the executor to front.
SSH_DST=()
if [ "$(id -u)" -eq 0 ] && [ -x /usr/sbin/sshd ]; then
    # Its sessions get an empty HOME (SetEnv): bash reads ~/.bashrc and ~/.profile for every
    # command sshd runs, and the demo must not hang on, or change, the caller's dotfiles.
    mkdir -p "$WORK/sshd/home" /run/sshd
    ssh-keygen -q -t ed25519 -N '' -f "$WORK/sshd/host_key" </dev/null
    ssh-keygen -q -t ed25519 -N '' -f "$WORK/sshd/client_key" </dev/null
    cp "$WORK/sshd/client_key.pub" "$WORK/sshd/authorized_keys"
    SSHD_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    printf '%s\n' "Port $SSHD_PORT" "ListenAddress 127.0.0.1" "HostKey $WORK/sshd/host_key" \
        "AuthorizedKeysFile $WORK/sshd/authorized_keys" "PasswordAuthentication no" "KbdInteractiveAuthentication no" \
        "UsePAM no" "StrictModes no" "PermitRootLogin prohibit-password" "SetEnv HOME=$WORK/sshd/home" >"$WORK/sshd/sshd_config"
    /usr/sbin/sshd -D -e -f "$WORK/sshd/sshd_config" 2>"$WORK/sshd.log" &
    PIDS+=($!)
    SSH_DST=(--ssh-dst "127.0.0.1:$SSHD_PORT")
fi
# Two executors (followers of the leader below); as root each fronts the demo sshd. A third,
# "leader-1", is the leader's own identity: its events reach the access point under it.
for NAME in demo-1 demo-2 leader-1; do
    "$AH" token create --data-dir "$WORK/data" --ttl 15m --tag os=linux >"$WORK/join-token-$NAME"
    DST=("${SSH_DST[@]}")
    [ "$NAME" = leader-1 ] && DST=()
    "$AH" agent enroll --remote-server "quic://$QUIC" --state-dir "$WORK/executor-$NAME" --name "$NAME" \
        --token-file "$WORK/join-token-$NAME" --ca-pin "$PIN" "${DST[@]}" 2>"$WORK/agent-$NAME.log" &
    PIDS+=($!)
done
for NAME in demo-1 demo-2 leader-1; do
    for _ in $(seq 100); do grep -qs "connected to access point" "$WORK/agent-$NAME.log" && break; sleep 0.1; done
done

"$AH" user token --data-dir "$WORK/data" --sub demo --role viewer >"$WORK/user-token"
echo
"$AH" executors list --remote-server "http://$HTTP" --token-file "$WORK/user-token"

if [ ${#SSH_DST[@]} -gt 0 ]; then
    # A leader on this machine with demo-1 and demo-2 as its followers, reached through the
    # access point: its workspace is the directory holding .agents/config.toml.
    "$AH" user token --data-dir "$WORK/data" --sub leader >"$WORK/leader-token"
    mkdir -p "$WORK/repo/.agents" "$WORK/repo/tests"
    printf '%s\n' 'set -e' 'echo "tests on $AH_FOLLOWER: $(uname -sr), $(find . -type f | wc -l) files synced"' \
        'sha256sum tests/data.txt' >"$WORK/repo/tests/run.sh"
    echo "snapshot of the leader's workspace" >"$WORK/repo/tests/data.txt"
    cat >"$WORK/repo/.agents/config.toml" <<TOML
[fleet]
name = "quickstart"
remote_server = "http://$HTTP"
token_file = "$WORK/leader-token"
remote_ah = "$AH"
agent_state_dir = "$WORK/executor-leader-1"

[[fleet.members]]
name = "demo-1"
role = "follower"
ssh_user = "root"
connect = "access-point"
workspace = "$WORK/ws-demo-1"
identity_file = "$WORK/sshd/client_key"
tags = { os = "linux" }

[[fleet.members]]
name = "demo-2"
role = "follower"
ssh_user = "root"
connect = "access-point"
workspace = "$WORK/ws-demo-2"
identity_file = "$WORK/sshd/client_key"
tags = { os = "linux" }
TOML
    mkdir -p "$WORK/ws-demo-1" "$WORK/ws-demo-2"
    for NAME in demo-1 demo-2; do
        for _ in $(seq 100); do "$AH" executors list --remote-server "http://$HTTP" --token-file "$WORK/user-token" --json 2>/dev/null |
            python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if any(e['name']=='$NAME' and e.get('facts',{}).get('sshHostKeys') for e in d['items']) else 1)" && break
            sleep 0.1; done
    done
    leader() { (cd "$WORK/repo" && XDG_STATE_HOME="$WORK/leader-state" "$AH" agent followers "$@"); }
    echo
    echo "\$ ah agent followers sync-fence      # every follower gets the leader's workspace, proven by its root hash"
    leader sync-fence
    echo
    echo "\$ ah agent followers run -- sh tests/run.sh      # fences first, then runs everywhere"
    leader run -- sh tests/run.sh
    echo
    echo "\$ ah agent followers list"
    leader list
    SESSION=$(leader session --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    echo
    echo "events of session $SESSION at the access point (GET /api/v1/sessions/$SESSION/events):"
    for _ in $(seq 50); do
        EVENTS=$(curl -fsS -H "Accept: application/json" -H "Authorization: Bearer $(cat "$WORK/user-token")" \
            "http://$HTTP/api/v1/sessions/$SESSION/events" 2>/dev/null || true)
        echo "$EVENTS" | grep -q '"summary"' && break
        sleep 0.2
    done
    echo "$EVENTS" | python3 -c 'import json,sys
d = json.load(sys.stdin)
for e in d.get("items", d.get("events", [])): print("  seq", e.get("seq"), e.get("type"))' || echo "  (none yet)"
    leader stop
else
    echo "(run as root to see a leader run a command on the executor through its sshd)"
fi
echo
echo "logs: $WORK/serve.log $WORK/agent-*.log — Ctrl-C to stop"
wait
