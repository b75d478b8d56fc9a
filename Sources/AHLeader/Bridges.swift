import Foundation
import Logging

// The leader's view of its three building blocks — the fleet config (AHFleet), SSH
// sessions (AHSSH) and the follower helper (AHFollowerHelper) — reduced to what the engine
// calls. Each is mapped onto its module here and nowhere else.

/// How one command is launched on one follower (from the OS adapter).
struct LaunchPlan: Sendable {
    var argv: [String]
    var commandLine: String
}

/// One `--command` on one host.
struct ShardAssignment: Sendable {
    /// Position in the whole plan (report order).
    var order: Int
    var command: String
    var host: String
    var shardIndex: Int
    var shardCount: Int
}

/// How a command ended, as the helper reported it.
struct JobExit: Sendable {
    var code: Int32?
    var signal: String?
    var timedOut: Bool
}

enum JobEvent: Sendable {
    case started
    case output(OutputStreamKind, [UInt8])
    case exited(JobExit)
}

enum FleetBridge {
    static func load(path: String) throws -> LeaderFleet {
        throw LeaderFailure.usage("fleet config support is not built in yet (\(path))")
    }

    static func select(fleet: LeaderFleet, hosts: [String], tags: [String], all: Bool) throws -> [LeaderMember] {
        throw LeaderFailure.usage("selection is not built in yet")
    }

    static func launch(member: LeaderMember, argv: [String], shell: String?, env: [String: String]) throws -> LaunchPlan {
        throw LeaderFailure.usage("command adapters are not built in yet")
    }

    static func shards(commands: [String], members: [LeaderMember]) throws -> [ShardAssignment] {
        throw LeaderFailure.usage("sharding is not built in yet")
    }
}

/// One SSH session to a follower.
final class LinkSession: Sendable {
    struct Result: Sendable {
        var stdout: String
        var stderr: String
        var exit: Int32?
    }

    static func open(fd: Int32, user: String, expectedHostKeys: [String], identityFile: String?, keepalive: Duration,
                     timeout: Duration, logger: Logger) async throws -> LinkSession {
        Glibc.close(fd)
        throw LeaderFailure.unreachable("SSH is not built in yet")
    }

    var isAlive: Bool { false }

    func run(_ command: String, timeout: Duration) async throws -> Result {
        throw LeaderFailure.unreachable("SSH is not built in yet")
    }

    func close() async {}
}

/// The follower helper on a session.
final class LinkHelper: Sendable {
    static func start(on session: LinkSession, remoteAH: String, timeout: Duration, logger: Logger) async throws -> LinkHelper {
        throw LeaderFailure.unreachable("the follower helper is not built in yet")
    }

    var isOpen: Bool { false }

    func run(argv: [String], timeout: Duration) -> AsyncThrowingStream<JobEvent, any Error> {
        AsyncThrowingStream { $0.finish(throwing: LeaderFailure.unreachable("not built in yet")) }
    }

    func probe(timeout: Duration) async throws -> Duration {
        throw LeaderFailure.unreachable("not built in yet")
    }

    func close() {}
}
