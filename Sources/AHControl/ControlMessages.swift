import Foundation

/// Messages on the long-lived control stream of an `ah/1` connection, and on tunnel streams.
/// Every message is one frame (`Frame`: 4-byte length + JSON object, ≤ 64 KiB) whose object
/// carries `version` (the protocol's major version, 1) and `type`. Receivers ignore fields
/// they do not know, so minor additions need no new version; docs/protocol.md has the rules.
public enum ControlProtocol {
    public static let version = 1
}

/// The first two fields of every message: enough to route it before decoding the rest.
public struct MessageHeader: Codable, Sendable, Equatable {
    public var version: Int
    public var type: String

    public init(version: Int, type: String) {
        self.version = version
        self.type = type
    }
}

/// One SSH host key of the executor's sshd, as `ssh-keyscan` or a `.pub` file gives it.
public struct SSHHostKey: Codable, Sendable, Equatable, Hashable {
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, ...
    public var algorithm: String
    /// The public key blob, base64 as in known_hosts.
    public var publicKey: String
    /// `SHA256:...` (unpadded base64 of the blob's SHA-256), as `ssh-keygen -l` prints it.
    public var fingerprint: String

    public init(algorithm: String, publicKey: String, fingerprint: String) {
        self.algorithm = algorithm
        self.publicKey = publicKey
        self.fingerprint = fingerprint
    }
}

/// Executor → access point, first message on the control stream: who and what it is.
public struct Hello: Codable, Sendable, Equatable {
    public var version = ControlProtocol.version
    public var type = "hello"
    public var name: String
    /// `ah` build of the executor.
    public var agentVersion: String
    public var os: String
    public var osVersion: String
    public var arch: String
    public var cpuCount: Int
    public var memoryBytes: UInt64
    public var tags: [String: String]
    public var sshEnabled: Bool
    /// Host keys of the sshd behind `--ssh-dst` (empty when it could not be read).
    public var sshHostKeys: [SSHHostKey]
    /// Ports other than 22 that the executor accepts tunnels to.
    public var allowedPorts: [Int]
    /// How often heartbeats will come; the access point calls the executor degraded when
    /// they are late.
    public var heartbeatIntervalMillis: Int

    public init(name: String, agentVersion: String, os: String, osVersion: String, arch: String, cpuCount: Int,
                memoryBytes: UInt64, tags: [String: String], sshEnabled: Bool, sshHostKeys: [SSHHostKey],
                allowedPorts: [Int], heartbeatIntervalMillis: Int) {
        self.name = name
        self.agentVersion = agentVersion
        self.os = os
        self.osVersion = osVersion
        self.arch = arch
        self.cpuCount = cpuCount
        self.memoryBytes = memoryBytes
        self.tags = tags
        self.sshEnabled = sshEnabled
        self.sshHostKeys = sshHostKeys
        self.allowedPorts = allowedPorts
        self.heartbeatIntervalMillis = heartbeatIntervalMillis
    }

    /// The type of a later report of the same facts on an established control stream.
    public static let factsType = "facts"

    /// This hello as a facts update (`type` = `facts`), for when what it reports changed.
    public var asFactsUpdate: Hello {
        var copy = self
        copy.type = Self.factsType
        return copy
    }
}

/// Executor → access point, every `--heartbeat-interval`.
public struct Heartbeat: Codable, Sendable, Equatable {
    public var version = ControlProtocol.version
    public var type = "heartbeat"
    public var sequence: UInt64
    /// One-minute load average.
    public var load: Double
    public var memoryUsedBytes: UInt64
    public var uptimeSeconds: Double
    public var openTunnels: Int

    public init(sequence: UInt64, load: Double, memoryUsedBytes: UInt64, uptimeSeconds: Double, openTunnels: Int) {
        self.sequence = sequence
        self.load = load
        self.memoryUsedBytes = memoryUsedBytes
        self.uptimeSeconds = uptimeSeconds
        self.openTunnels = openTunnels
    }
}

/// Either side, before it closes on purpose: no new tunnels; open ones get a grace period.
public struct Goodbye: Codable, Sendable, Equatable {
    public var version = ControlProtocol.version
    public var type = "goodbye"
    public var reason: String
    /// How long open tunnels may still run.
    public var graceMillis: Int

    public init(reason: String, graceMillis: Int) {
        self.reason = reason
        self.graceMillis = graceMillis
    }
}

/// Access point → executor, the answer to `Hello`.
public struct Ack: Codable, Sendable, Equatable {
    public var version = ControlProtocol.version
    public var type = "ack"
    /// The access point's clock (for skew warnings).
    public var now: Date
    /// Hash of the access point configuration that concerns executors; changes tell an
    /// executor something changed on the other side.
    public var configHash: String

    public init(now: Date, configHash: String) {
        self.now = now
        self.configHash = configHash
    }
}

/// Access point → executor: a liveness request; answered with `Pong` carrying the same id.
public struct Ping: Codable, Sendable, Equatable {
    public var version = ControlProtocol.version
    public var type = "ping"
    public var id: UInt64

    public init(id: UInt64) { self.id = id }
}

public struct Pong: Codable, Sendable, Equatable {
    public var version = ControlProtocol.version
    public var type = "pong"
    public var id: UInt64

    public init(id: UInt64) { self.id = id }
}

/// Access point → executor, first message on a stream the access point opens: connect this
/// stream to a local TCP port. Port 22 means the executor's sshd (`--ssh-dst`, wherever it
/// listens); other ports only when the executor allow-lists them.
public struct OpenTCP: Codable, Sendable, Equatable {
    public var version = ControlProtocol.version
    public var type = "open-tcp"
    public var port: Int
    /// The access point's id for the tunnel, for matching log lines on both sides.
    public var tunnelID: String

    public init(port: Int, tunnelID: String) {
        self.port = port
        self.tunnelID = tunnelID
    }
}

/// Executor → access point on a tunnel stream: connected (then raw bytes follow both ways)
/// or refused (then the stream ends).
public struct OpenTCPResult: Codable, Sendable, Equatable {
    public enum Refusal: String, Codable, Sendable {
        /// `--ssh disabled`.
        case sshDisabled = "ssh-disabled"
        /// The port is not 22 and not allow-listed.
        case notAllowed = "not-allowed"
        /// The local connection failed (sshd down, refused, timed out).
        case connectFailed = "connect-failed"
        /// The executor is shutting down.
        case draining
    }

    public var version = ControlProtocol.version
    public var type = "open-tcp-result"
    public var ok: Bool
    public var error: Refusal?
    public var message: String?

    public static let success = OpenTCPResult(ok: true, error: nil, message: nil)

    public static func refused(_ error: Refusal, _ message: String) -> OpenTCPResult {
        OpenTCPResult(ok: false, error: error, message: message)
    }

    init(ok: Bool, error: Refusal?, message: String?) {
        self.ok = ok
        self.error = error
        self.message = message
    }
}

/// Application error codes on tunnel streams (RESET_STREAM / STOP_SENDING).
public enum TunnelCloseCode {
    /// The TCP connection at the other end failed or was reset.
    public static let destinationFailed: UInt64 = 0x20
    /// The access point or executor is shutting down and the grace period is over.
    public static let shutdown: UInt64 = 0x21
}

/// Application error codes in CONNECTION_CLOSE on `ah/1` connections.
public enum ConnectionCloseCode {
    public static let normal: UInt64 = 0
    public static let revoked: UInt64 = 0x10
    public static let enrollmentDeadline: UInt64 = 0x11
    public static let replaced: UInt64 = 0x12
    /// The peer speaks a control protocol version we do not.
    public static let unsupportedVersion: UInt64 = 0x13
    /// No Hello (or no Ack) within the deadline, or a malformed control message.
    public static let protocolViolation: UInt64 = 0x14
}
