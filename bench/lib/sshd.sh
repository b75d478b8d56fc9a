# OpenSSH helpers for bench/* scripts (sourced, bash, after lib/bench.sh and lib/tls.sh).
# Everything stays on 127.0.0.1. sshd must run as root (privilege separation, /run/sshd).

# Checks that sshd, ssh and ssh-keygen are here and that we can run sshd; dies (exit 2) if not.
bench_sshd_require() {
    local tool
    for tool in /usr/sbin/sshd ssh ssh-keygen; do
        command -v "$tool" >/dev/null || bench_die "$tool is missing: apt-get install openssh-server openssh-client"
    done
    [[ $(id -u) -eq 0 ]] || bench_die "a test sshd needs root (privilege separation); run as root"
    mkdir -p /run/sshd || bench_die "cannot create /run/sshd"
    chmod 0755 /run/sshd
}

# Makes in $1: an ed25519 host key (host_ed25519), a client key (id_ed25519) and
# authorized_keys holding the client key.
bench_ssh_keys() {
    local dir=$1
    mkdir -p "$dir" && chmod 0700 "$dir" || return 1
    ssh-keygen -q -t ed25519 -N '' -C bench-host -f "$dir/host_ed25519" </dev/null >/dev/null || return 1
    ssh-keygen -q -t ed25519 -N '' -C bench-client -f "$dir/id_ed25519" </dev/null >/dev/null || return 1
    cp "$dir/id_ed25519.pub" "$dir/authorized_keys" && chmod 0600 "$dir/authorized_keys"
}

# Starts `sshd -D -e` named $1 on 127.0.0.1:$2 with the keys in $3 (from bench_ssh_keys);
# any further arguments are extra sshd_config lines ("AllowTcpForwarding yes"). Config,
# log (stderr, -e) and pid file go to $3/$1.*. Sets BENCH_SSHD_PID; fails if it does not listen.
# Sessions get HOME=$3/home (SetEnv): bash reads ~/.bashrc for every command sshd runs, and
# root's on a developer machine can take longer than the whole connection (pyenv init: about
# 300 ms on the 2-core dev box); an empty HOME keeps that out of every path's figure alike.
bench_sshd_start() {
    local name=$1 port=$2 dir=$3 line
    shift 3
    mkdir -p "$dir/home" || return 1
    {
        printf '%s\n' "Port $port" "ListenAddress 127.0.0.1" "HostKey $dir/host_ed25519" \
            "AuthorizedKeysFile $dir/authorized_keys" "PasswordAuthentication no" "KbdInteractiveAuthentication no" \
            "UsePAM no" "StrictModes no" "PidFile $dir/$name.pid" "PermitRootLogin yes" "UseDNS no" \
            "PrintMotd no" "PrintLastLog no" "Subsystem sftp /usr/lib/openssh/sftp-server" \
            "SetEnv HOME=$dir/home"
        for line in "$@"; do printf '%s\n' "$line"; done
    } >"$dir/$name.sshd_config"
    /usr/sbin/sshd -t -f "$dir/$name.sshd_config" 2>"$dir/$name.log" || return 1
    /usr/sbin/sshd -D -e -f "$dir/$name.sshd_config" 2>>"$dir/$name.log" &
    BENCH_SSHD_PID=$!
    bench_wait_tcp_listening "$port" 10 "$BENCH_SSHD_PID"
}

# Writes an ssh client config to $1 for the client key in $2: batch mode, no host key
# checks (fresh keys every run), no multiplexing, quiet; cipher $3 and key exchange $4 if
# not empty (else OpenSSH's defaults). Give it with -F so ProxyJump's inner ssh reads the
# same settings (ssh passes -F, but not -i or -o, on to the jump ssh).
bench_ssh_client_config() {
    local file=$1 key=$2 cipher=${3:-} kex=${4:-}
    {
        printf '%s\n' "Host *" "  User root" "  IdentityFile $key" "  IdentitiesOnly yes" "  BatchMode yes" \
            "  StrictHostKeyChecking no" "  UserKnownHostsFile /dev/null" "  GlobalKnownHostsFile /dev/null" \
            "  LogLevel ERROR" "  ControlMaster no" "  ControlPath none" "  ForwardAgent no" "  ForwardX11 no" \
            "  ConnectTimeout 30" "  ServerAliveInterval 0"
        if [[ -n $cipher ]]; then printf '  Ciphers %s\n' "$cipher"; fi
        if [[ -n $kex ]]; then printf '  KexAlgorithms %s\n' "$kex"; fi
    } >"$file"
}
