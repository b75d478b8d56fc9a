import Foundation

/// What an executor last reported about itself (its Hello), as the store keeps it.
///
/// A type of the store's own rather than the control message: the wire format may change
/// with the control protocol, while rows written by older versions stay in the state file
/// and must keep decoding. Rows carry a shape number (see `StoredFacts`).
public struct ExecutorFacts: Sendable, Equatable, Codable {
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
    /// The executor's sshd host keys: what `ah ssh-config` pins.
    public var sshHostKeys: [HostKey]
    public var allowedPorts: [Int]
    public var heartbeatIntervalMillis: Int

    public init(agentVersion: String, os: String, osVersion: String, arch: String, cpuCount: Int, memoryBytes: UInt64,
                sshEnabled: Bool, sshHostKeys: [HostKey], allowedPorts: [Int], heartbeatIntervalMillis: Int) {
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
    }
}

/// An executor's facts and when it reported them.
public struct ReportedFacts: Sendable, Equatable {
    public var facts: ExecutorFacts
    public var reportedAt: Date

    public init(facts: ExecutorFacts, reportedAt: Date) {
        self.facts = facts
        self.reportedAt = reportedAt
    }
}
