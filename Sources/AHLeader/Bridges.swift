import AHFleet
import AHFollowerHelper
import AHSSH
import Foundation
import Logging
import NIOCore

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
    /// The command could not be started (e.g. no such program): a failure, not unreachable.
    var error: String? = nil
}

enum JobEvent: Sendable {
    case started
    case output(OutputStreamKind, [UInt8])
    case exited(JobExit)
}

enum FleetBridge {
    static func load(path: String) throws -> LeaderFleet {
        let config: FleetConfig
        do { config = try FleetConfig.load(path: path) } catch { throw LeaderFailure.usage(error.description) }
        let settings = config.settings
        let followers = config.followers.map { member in
            LeaderMember(name: member.name, os: member.os?.rawValue, tags: member.tags, host: member.host,
                         sshUser: member.sshUser, sshPort: member.sshPort,
                         connect: LeaderMember.Connect(rawValue: member.connect.rawValue) ?? .auto,
                         workspace: member.workspace, remoteServer: member.remoteServer,
                         identityFile: member.identityFile, knownHosts: member.knownHosts, remoteAH: member.remoteAH)
        }
        return LeaderFleet(name: settings.name, followers: followers, tokenFile: settings.tokenFile, caFile: settings.caFile,
                           sshConnectTimeout: settings.connectivity.sshConnectTimeout,
                           sshKeepalive: settings.connectivity.sshKeepalive,
                           healthProbeInterval: settings.connectivity.healthProbeInterval,
                           failureThreshold: settings.connectivity.failureThreshold,
                           concurrency: settings.execution.concurrency, executionTimeout: settings.execution.timeout,
                           sshRetry: settings.execution.sshRetry, config: config, transfers: settings.execution.transfers)
    }

    static func select(fleet: LeaderFleet, hosts: [String], tags: [String], all: Bool) throws -> [LeaderMember] {
        do {
            let chosen = try FollowerSelection(hosts: hosts, tags: tags, all: all).select(from: fleet.config)
            return chosen.compactMap { fleet.member($0.name) }
        } catch {
            throw LeaderFailure.usage(error.description)
        }
    }

    static func launch(member: LeaderMember, fleet: LeaderFleet, argv: [String], shell: String?,
                       env: [String: String]) throws -> LaunchPlan {
        guard var config = fleet.config.member(named: member.name) else {
            throw LeaderFailure.usage("no member named '\(member.name)'")
        }
        if config.os == nil, let os = member.os { config.os = FleetOS(rawValue: os) }
        do {
            let plan = try CommandAdapter.plan(for: config, command: shell.map(FleetCommand.shell) ?? .argv(argv), environment: env)
            return LaunchPlan(argv: plan.argv, commandLine: plan.sshCommandLine)
        } catch {
            throw LeaderFailure.usage("\(member.name): \(error.description)")
        }
    }

    static func shards(commands: [String], members: [LeaderMember], fleet: LeaderFleet) throws -> [ShardAssignment] {
        let configs: [FleetMember] = members.compactMap { member in
            guard var config = fleet.config.member(named: member.name) else { return nil }
            if config.os == nil, let os = member.os { config.os = FleetOS(rawValue: os) }
            return config
        }
        do {
            let plan = try ShardPlan.make(commands: commands, followers: configs, concurrency: max(1, fleet.concurrency))
            return plan.assignments.map {
                ShardAssignment(order: $0.order, command: $0.command, host: $0.host, shardIndex: $0.shardIndex, shardCount: $0.shardCount)
            }
        } catch {
            throw LeaderFailure.usage(error.description)
        }
    }
}

/// One SSH session to a follower (AHSSH: libssh2 on its own thread).
final class LinkSession: Sendable {
    struct Result: Sendable {
        var stdout: String
        var stderr: String
        var exit: Int32?
    }

    let session: SSHSession

    private init(session: SSHSession) { self.session = session }

    static func open(fd: Int32, user: String, expectedHostKeys: [String], identityFile: String?, keepalive: Duration,
                     timeout: Duration, logger: Logger) async throws -> LinkSession {
        let auth: SSHAuthentication
        if let identityFile { auth = .keyFile(identityFile) } else if ProcessInfo.processInfo.environment["SSH_AUTH_SOCK"] != nil {
            auth = .agent
        } else {
            Glibc.close(fd)
            throw LeaderFailure.usage("no identity_file for \(user)@ and no ssh-agent (SSH_AUTH_SOCK)")
        }
        do {
            let session = try await SSHSession.connect(socket: fd, expectedHostKeySHA256: expectedHostKeys, user: user, auth: auth,
                                                       keepalive: keepalive, connectTimeout: timeout, logger: logger)
            return LinkSession(session: session)
        } catch let error as SSHError where error.kind == .hostKey {
            throw HostKeyMismatch(description: error.description)
        }
    }

    var isAlive: Bool { session.isAlive }

    func run(_ command: String, timeout: Duration) async throws -> Result {
        let channel = try await session.exec(command)
        let collected = try await withThrowingTaskGroup(of: Result?.self) { group in
            group.addTask {
                let (out, err) = try await channel.collectOutput(limit: 1 << 20)
                let exit = try await channel.waitForExit()
                var code: Int32?
                if case .exited(let value) = exit { code = value }
                return Result(stdout: String(buffer: out), stderr: String(buffer: err), exit: code)
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
        await channel.close()
        guard let collected else { throw LeaderFailure.unreachable("`\(command)` did not finish within \(timeout)") }
        return collected
    }

    func exec(_ command: String) async throws -> SSHExecChannel { try await session.exec(command) }

    func close() async { await session.close() }
}

/// The follower helper (`ah agent follower-helper`) on an exec channel of the session.
final class LinkHelper: Sendable {
    let client: HelperClient
    let channel: SSHExecChannel

    private init(client: HelperClient, channel: SSHExecChannel) {
        self.client = client
        self.channel = channel
    }

    static func start(on session: LinkSession, remoteAH: String, version: String, timeout: Duration,
                      logger: Logger) async throws -> LinkHelper {
        let channel = try await session.exec("exec \(ShellQuoting.posix(remoteAH)) agent follower-helper")
        // The helper's stdout is the protocol; its stderr (logs) goes to the leader's log.
        let inbound = HelperInbound(output: channel.output, logger: logger)
        do {
            let client = try await HelperClient.connect(inbound: inbound, write: { try await channel.write($0) },
                                                        closeOutbound: { try? await channel.sendEOF() },
                                                        ahVersion: version, timeout: timeout, logger: logger)
            return LinkHelper(client: client, channel: channel)
        } catch {
            await channel.close()
            throw LeaderFailure.unreachable("the follower helper `\(remoteAH) agent follower-helper` did not start: \(error)")
        }
    }

    var isOpen: Bool { client.isOpen }
    var os: String { client.serverHello.os }

    func run(argv: [String], timeout: Duration) -> AsyncThrowingStream<JobEvent, any Error> {
        let request = AHFollowerHelper.RunRequest(job: client.makeJobID(), argv: argv,
                                                  timeoutMillis: Int(timeout.milliseconds.rounded(.up)))
        let events = client.run(request)
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    for try await event in events {
                        switch event {
                        case .started: continuation.yield(.started)
                        case .stdout(let bytes): continuation.yield(.output(.stdout, bytes))
                        case .stderr(let bytes): continuation.yield(.output(.stderr, bytes))
                        case .exited(let exit):
                            continuation.yield(.exited(JobExit(code: exit.exitCode, signal: exit.signal, timedOut: exit.timedOut,
                                                               error: exit.error)))
                        }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    func probe(timeout: Duration) async throws -> Duration { try await client.probe(timeout: timeout) }

    func close() {
        let client = self.client
        let channel = self.channel
        Task {
            await client.close()
            await channel.close()
        }
    }
}
