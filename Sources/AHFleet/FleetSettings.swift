/// The fleet-wide part of `[fleet]` and its sub-tables, with defaults for what the file omits.
public struct FleetSettings: Sendable, Hashable {
    public static let defaultName = "default"
    public static let defaultRemoteAH = "ah"

    /// `[fleet] name` (default "default").
    public var name: String
    /// `remote_server`: the access point for CONNECT and events (http:// or https://).
    public var remoteServer: String?
    /// `token_file`: the user JWT for CONNECT and REST (`~` expanded). The caller falls back to
    /// env `AH_TOKEN_FILE` when this is nil.
    public var tokenFile: String?
    /// `ca_file`: CA of the access point's HTTPS certificate (`~` expanded).
    public var caFile: String?
    /// `identity_file`: the default SSH key (`~` expanded).
    public var identityFile: String?
    /// `known_hosts`: default host key file for every member (`~` expanded).
    public var knownHosts: String?
    /// `agent_state_dir`: the leader's own `ah agent enroll --state-dir` (`~` expanded).
    public var agentStateDir: String?
    /// `remote_ah`: how followers' shells find `ah` (default "ah").
    public var remoteAH: String
    public var sync: Sync
    public var connectivity: Connectivity
    public var execution: Execution

    public init(name: String = defaultName, remoteServer: String? = nil, tokenFile: String? = nil, caFile: String? = nil,
                identityFile: String? = nil, knownHosts: String? = nil, agentStateDir: String? = nil,
                remoteAH: String = defaultRemoteAH, sync: Sync = Sync(), connectivity: Connectivity = Connectivity(),
                execution: Execution = Execution()) {
        self.name = name
        self.remoteServer = remoteServer
        self.tokenFile = tokenFile
        self.caFile = caFile
        self.identityFile = identityFile
        self.knownHosts = knownHosts
        self.agentStateDir = agentStateDir
        self.remoteAH = remoteAH
        self.sync = sync
        self.connectivity = connectivity
        self.execution = execution
    }

    /// `[fleet.sync]`.
    public struct Sync: Sendable, Hashable {
        public static let defaultIgnores = ["node_modules", ".venv", "target", "build"]
        /// gitignore-syntax patterns not synced (`.git` is always ignored on top of these).
        public var ignores: [String]
        /// How long a sync fence may take (default 60s).
        public var timeout: Duration
        /// How many snapshots the leader's content store keeps (default 50, 1-10000): the
        /// moments `seek` can go back to.
        public var retention: Int

        public init(ignores: [String] = defaultIgnores, timeout: Duration = .seconds(60), retention: Int = 50) {
            self.ignores = ignores
            self.timeout = timeout
            self.retention = retention
        }
    }

    /// `[fleet.connectivity]`.
    public struct Connectivity: Sendable, Hashable {
        /// TCP connect + SSH handshake bound (default 5s).
        public var sshConnectTimeout: Duration
        /// SSH keepalive interval (default 30s).
        public var sshKeepalive: Duration
        /// Interval of the health probe (default 30s).
        public var healthProbeInterval: Duration
        /// Consecutive failed probes before a path counts as degraded (default 3, 1-1000).
        public var failureThreshold: Int

        public init(sshConnectTimeout: Duration = .seconds(5), sshKeepalive: Duration = .seconds(30),
                    healthProbeInterval: Duration = .seconds(30), failureThreshold: Int = 3) {
            self.sshConnectTimeout = sshConnectTimeout
            self.sshKeepalive = sshKeepalive
            self.healthProbeInterval = healthProbeInterval
            self.failureThreshold = failureThreshold
        }
    }

    /// `[fleet.execution]`.
    public struct Execution: Sendable, Hashable {
        /// Commands at once per host (default 1, 1-1000).
        public var concurrency: Int
        /// Per-command timeout unless `--timeout` says otherwise (default 10m).
        public var timeout: Duration
        /// Retry once on transient SSH errors (default true).
        public var sshRetry: Bool
        /// `slurp`: file-set transfers (set × follower) at once across the fleet (default 16, 1-1000).
        public var transfers: Int

        public init(concurrency: Int = 1, timeout: Duration = .seconds(600), sshRetry: Bool = true, transfers: Int = 16) {
            self.concurrency = concurrency
            self.timeout = timeout
            self.sshRetry = sshRetry
            self.transfers = transfers
        }
    }
}
