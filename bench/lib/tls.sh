# TLS-over-TCP helpers for bench/* scripts (sourced, bash, after lib/bench.sh).

# A TCP port that was free a moment ago on 127.0.0.1 (for servers that cannot bind port 0).
bench_free_tcp_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits up to $2 seconds for a TCP socket listening on port $1 (any address). Fails early
# if process $3 (optional) has exited.
bench_wait_tcp_listening() {
    local port=$1 deadline=$((SECONDS + $2)) pid=${3:-}
    while ((SECONDS < deadline)); do
        if ss -Hntl "sport = :$port" 2>/dev/null | grep -q .; then return 0; fi
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
        sleep 0.1
    done
    return 1
}

# User + system CPU seconds used so far by process $1 (Linux /proc/PID/stat, fields 14-15).
bench_cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.3f\n", ($12 + $13) / hz }' "/proc/$1/stat"
}

# "STEAL TOTAL" jiffies summed over all CPUs from /proc/stat (steal: time the hypervisor gave
# our virtual CPUs to someone else). Two readings give the share of CPU time stolen between.
bench_cpu_steal_total() {
    awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print $9, t; exit }' /proc/stat
}

# Makes a CA and a server and a client certificate with certtool in $1, shaped like ah's own:
# ECDSA P-256 keys, SHA-256 signatures, one URI SAN each (spiffe://example.org/ah/serve and
# .../ah/agent/load-0001), the server's chain file holding leaf + CA. The server also carries
# DNS name localhost, which the client checks. Files: ca.pem, server.pem (chain),
# server-key.pem, client.pem (chain), client-key.pem.
bench_certtool_certs() {
    local dir=$1
    mkdir -p "$dir"
    cat >"$dir/ca.tmpl" <<'EOF'
cn = "bench CA"
uri = "spiffe://example.org"
ca
cert_signing_key
crl_signing_key
expiration_days = 2
EOF
    cat >"$dir/server.tmpl" <<'EOF'
cn = "serve"
uri = "spiffe://example.org/ah/serve"
dns_name = "localhost"
tls_www_server
signing_key
expiration_days = 2
EOF
    cat >"$dir/client.tmpl" <<'EOF'
cn = "load-0001"
uri = "spiffe://example.org/ah/agent/load-0001"
tls_www_client
signing_key
expiration_days = 2
EOF
    local name
    for name in ca server client; do
        certtool --generate-privkey --key-type ecdsa --curve secp256r1 --outfile "$dir/$name-key.pem" 2>/dev/null ||
            return 1
    done
    certtool --generate-self-signed --hash SHA256 --load-privkey "$dir/ca-key.pem" --template "$dir/ca.tmpl" \
        --outfile "$dir/ca.pem" 2>/dev/null || return 1
    for name in server client; do
        certtool --generate-certificate --hash SHA256 --load-privkey "$dir/$name-key.pem" --load-ca-certificate "$dir/ca.pem" \
            --load-ca-privkey "$dir/ca-key.pem" --template "$dir/$name.tmpl" --outfile "$dir/$name-leaf.pem" 2>/dev/null ||
            return 1
        cat "$dir/$name-leaf.pem" "$dir/ca.pem" >"$dir/$name.pem"
    done
}
