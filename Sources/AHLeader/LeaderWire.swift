import Foundation

/// What a `ah agent followers ...` command asks the leader service, over its Unix socket.
///
/// Framing on the socket: one JSON document per line (UTF-8, `\n`-terminated), each at most
/// `LeaderWire.maxLine` bytes. The client sends one `LeaderRequest` line; the service answers
/// with any number of `LeaderEvent` lines, the last of which is `.result` or `.failure`, and
/// closes. Both ends are the same `ah` version (the socket name contains it), so the shape
/// needs no negotiation; a line that does not decode is a bug, reported as such.
public enum LeaderWire {
    public static let maxLine = 8 << 20

    public static func encode<T: Encodable>(_ value: T) throws -> Data {
        var data = try JSONEncoder().encode(value)
        data.append(0x0A)
        return data
    }

    public static func decode<T: Decodable>(_ type: T.Type, from line: some Collection<UInt8>) throws -> T {
        try JSONDecoder().decode(type, from: Data(line))
    }
}

public enum LeaderRequest: Codable, Sendable {
    case ping
    case list
    case run(RunRequest)
    /// `followers slurp` (SlurpWire.swift).
    case slurp(SlurpRequest)
    /// `followers sync-fence`, `moments`, `seek` (FenceWire.swift).
    case syncFence(FenceRequest)
    case moments
    case seek(moment: String)
    case session
    case stop
}

/// `followers run`: which followers, what to run, how long.
public struct RunRequest: Codable, Sendable, Equatable {
    public var hosts: [String] = []
    public var tags: [String] = []
    public var all = false
    /// The words after `--` (each quoted for the follower's shell).
    public var argv: [String] = []
    /// `--command` shell strings (sharded), instead of argv.
    public var commands: [String] = []
    public var env: [String: String] = [:]
    /// Per-command deadline in seconds (nil: `[fleet.execution] timeout`).
    public var timeoutSeconds: Double?
    public var noFence = false

    public init() {}
}

/// What the service streams back while it works.
public enum LeaderEvent: Codable, Sendable {
    /// A chunk of a host's output, as it arrives.
    case output(host: String, stream: OutputStreamKind, text: String)
    /// Progress worth a line on stderr ("connecting to mac-1 through the access point").
    case progress(String)
    case result(LeaderResult)
    /// The request failed as a whole: `exitCode` per cli.md (2 usage, 3 unreachable, 1 other).
    case failure(exitCode: Int32, message: String)
}

public enum OutputStreamKind: String, Codable, Sendable { case stdout, stderr }

public enum LeaderResult: Codable, Sendable {
    case pong(version: String, pid: Int32)
    case list(FollowersListReport)
    case run(RunReport)
    case slurp(SlurpReport)
    case fence(FenceReport)
    case moments(MomentsReport)
    case seek(SeekReport)
    case session(SessionReport)
    case stopped
}

// MARK: The --json shapes of shared/cli.md (keys are the contract; extra keys may be added)

/// `followers list`: {"followers":[{"name","os","tags","path":{...}|null,"health"}]}
public struct FollowersListReport: Codable, Sendable, Equatable {
    public struct Follower: Codable, Sendable, Equatable {
        public var name: String
        public var os: String?
        public var tags: [String: String]
        public var path: PathReport?
        public var health: Health
        /// Why the host is unreachable or degraded, when it is.
        public var error: String?

        public init(name: String, os: String?, tags: [String: String], path: PathReport?, health: Health, error: String?) {
            self.name = name
            self.os = os
            self.tags = tags
            self.path = path
            self.health = health
            self.error = error
        }

        enum CodingKeys: String, CodingKey { case name, os, tags, path, health, error }

        /// cli.md's shape has `"path": null`, not an absent key.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try container.encode(os, forKey: .os)
            try container.encode(tags, forKey: .tags)
            try container.encode(path, forKey: .path)
            try container.encode(health, forKey: .health)
            try container.encodeIfPresent(error, forKey: .error)
        }
    }
    public var followers: [Follower]

    public init(followers: [Follower]) { self.followers = followers }
}

public enum Health: String, Codable, Sendable { case ok, degraded, unreachable }

/// `{"method":"direct|access-point","target","rttMs"}`, plus the relay for CONNECT paths.
public struct PathReport: Codable, Sendable, Equatable {
    public enum Method: String, Codable, Sendable { case direct, accessPoint = "access-point" }
    public var method: Method
    public var target: String
    public var rttMs: Double
    public var relay: String?
}

/// `followers run --json`.
public struct RunReport: Codable, Sendable, Equatable {
    public struct Host: Codable, Sendable, Equatable {
        public var name: String
        public var os: String?
        public var status: Status
        public var exit: Int32?
        public var signal: String?
        public var stdout: String
        public var stderr: String
        public var durationMs: Int
        /// Where the full output of this host is kept (under the leader's state directory).
        public var logFile: String?
        /// Why it is unreachable, when it is.
        public var error: String?

        enum CodingKeys: String, CodingKey { case name, os, status, exit, signal, stdout, stderr, durationMs, logFile, error }

        /// `exit` and `signal` are `null` when absent (cli.md), not left out.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try container.encode(os, forKey: .os)
            try container.encode(status, forKey: .status)
            try container.encode(exit, forKey: .exit)
            try container.encode(signal, forKey: .signal)
            try container.encode(stdout, forKey: .stdout)
            try container.encode(stderr, forKey: .stderr)
            try container.encode(durationMs, forKey: .durationMs)
            try container.encodeIfPresent(logFile, forKey: .logFile)
            try container.encodeIfPresent(error, forKey: .error)
        }
    }
    public struct Command: Codable, Sendable, Equatable {
        public var command: String
        public var os: String
        public var host: String
        public var shardIndex: Int
        public var shardCount: Int
        public var status: Status
        public var exit: Int32?
        public var signal: String?
        public var stdout: String
        public var stderr: String
        public var durationMs: Int
        public var error: String?

        enum CodingKeys: String, CodingKey {
            case command, os, host, shardIndex, shardCount, status, exit, signal, stdout, stderr, durationMs, error
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(command, forKey: .command)
            try container.encode(os, forKey: .os)
            try container.encode(host, forKey: .host)
            try container.encode(shardIndex, forKey: .shardIndex)
            try container.encode(shardCount, forKey: .shardCount)
            try container.encode(status, forKey: .status)
            try container.encode(exit, forKey: .exit)
            try container.encode(signal, forKey: .signal)
            try container.encode(stdout, forKey: .stdout)
            try container.encode(stderr, forKey: .stderr)
            try container.encode(durationMs, forKey: .durationMs)
            try container.encodeIfPresent(error, forKey: .error)
        }
    }
    public struct Summary: Codable, Sendable, Equatable {
        public var passed: [String]
        public var failed: [String]
        public var unreachable: [String]
    }
    public enum Status: String, Codable, Sendable { case passed, failed, timeout, unreachable }

    public var hosts: [Host]
    /// Only with `--command`.
    public var commands: [Command]?
    public var summary: Summary

    /// cli.md: 0 every selected host passed; 1 any host failed or timed out; 3 none failed but
    /// some were unreachable.
    public var exitCode: Int32 {
        if hosts.contains(where: { $0.status == .failed || $0.status == .timeout }) { return 1 }
        if hosts.contains(where: { $0.status == .unreachable }) { return 3 }
        return 0
    }

    /// The last line of the text output.
    public var summaryLine: String {
        "\(summary.passed.count) passed, \(summary.failed.count) failed, \(summary.unreachable.count) unreachable"
    }
}

/// `followers session --json`: {"id","startedAt","fleet"}.
public struct SessionReport: Codable, Sendable, Equatable {
    public var id: String
    public var startedAt: String
    public var fleet: String
}
