/// What an executor reported in its Hello, as listed by `GET /api/v1/executors`.
/// `sshHostKeys` is what `ah ssh-config` writes into its known-hosts file.
public struct ExecutorFactsView: Sendable, Equatable, Codable {
    public struct HostKey: Sendable, Equatable, Codable {
        public var algorithm: String
        public var publicKey: String
        public var fingerprint: String

        public init(algorithm: String, publicKey: String, fingerprint: String) {
            self.algorithm = algorithm
            self.publicKey = publicKey
            self.fingerprint = fingerprint
        }
    }

    public var agentVersion: String
    public var os: String
    public var osVersion: String
    public var arch: String
    public var cpuCount: Int
    public var memoryBytes: UInt64
    public var sshEnabled: Bool
    public var sshHostKeys: [HostKey]
    public var allowedPorts: [Int]
    public var heartbeatIntervalMillis: Int
    /// ISO 8601: when the executor said this.
    public var reportedAt: String

    public init(agentVersion: String, os: String, osVersion: String, arch: String, cpuCount: Int, memoryBytes: UInt64,
                sshEnabled: Bool, sshHostKeys: [HostKey], allowedPorts: [Int], heartbeatIntervalMillis: Int, reportedAt: String) {
        self.agentVersion = agentVersion
        self.os = os
        self.osVersion = osVersion
        self.arch = arch
        self.cpuCount = cpuCount
        self.memoryBytes = memoryBytes
        self.sshEnabled = sshEnabled
        self.sshHostKeys = sshHostKeys
        self.allowedPorts = allowedPorts
        self.heartbeatIntervalMillis = heartbeatIntervalMillis
        self.reportedAt = reportedAt
    }
}

/// The last heartbeat of a connected executor.
public struct HeartbeatView: Sendable, Equatable, Codable {
    public var load: Double
    public var memoryUsedBytes: UInt64
    public var uptimeSeconds: Double
    public var openTunnels: Int
    /// ISO 8601: when it arrived.
    public var at: String

    public init(load: Double, memoryUsedBytes: UInt64, uptimeSeconds: Double, openTunnels: Int, at: String) {
        self.load = load
        self.memoryUsedBytes = memoryUsedBytes
        self.uptimeSeconds = uptimeSeconds
        self.openTunnels = openTunnels
        self.at = at
    }
}
