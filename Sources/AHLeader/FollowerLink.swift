import Foundation
import Logging

/// Everything the leader keeps for one follower between requests (the ControlMaster
/// equivalent): the path (direct or CONNECT), one SSH session on it, and one follower helper
/// on that session. A session found dead is re-established before use, never used.
actor FollowerLink {
    let member: LeaderMember
    let fleet: LeaderFleet
    let hostKeys: HostKeyDirectory
    let journal: EventJournal
    let logger: Logger
    let version: String

    struct Connection: Sendable {
        let dialed: DialedPath
        let session: LinkSession
        let helper: LinkHelper
        let os: String?
        let connectedAt: ContinuousClock.Instant
    }

    private var connection: Connection?
    private var connecting: Task<Connection, any Error>?
    private(set) var lastError: String?
    /// The method that worked last: tried first on a re-route.
    private var lastMethod: PathReport.Method?

    init(member: LeaderMember, fleet: LeaderFleet, hostKeys: HostKeyDirectory, journal: EventJournal, version: String,
         logger: Logger) {
        self.version = version
        self.member = member
        self.fleet = fleet
        self.hostKeys = hostKeys
        self.journal = journal
        var logger = logger
        logger[metadataKey: "follower"] = "\(member.name)"
        self.logger = logger
    }

    /// The live connection, or a new one (one attempt at a time; callers arriving meanwhile
    /// wait for the same attempt).
    func connected(progress: (@Sendable (String) async -> Void)? = nil) async throws -> Connection {
        if let connection, connection.session.isAlive, connection.helper.isOpen { return connection }
        if let connection {
            logger.info("session to follower is dead: reconnecting")
            await Self.tearDown(connection)
            self.connection = nil
        }
        if let connecting { return try await connecting.value }
        let attempt = Task { try await self.establish(progress: progress) }
        connecting = attempt
        defer { connecting = nil }
        do {
            let made = try await attempt.value
            connection = made
            lastError = nil
            lastMethod = made.dialed.report.method
            return made
        } catch {
            lastError = "\(error)"
            throw error
        }
    }

    /// Stage 2–3 of the seed's connectivity algorithm for this follower: a path (the last
    /// good method first), SSH with the host key verified, `uname -a && id -u` as liveness
    /// check, then the helper. Bounded by `ssh_connect_timeout` per step.
    private func establish(progress: (@Sendable (String) async -> Void)?) async throws -> Connection {
        let timeout = fleet.sshConnectTimeout
        let dialed = try await dial(progress: progress)
        do {
            let expected = try await hostKeys.expected(for: member)
            let session: LinkSession
            do {
                session = try await LinkSession.open(fd: dialed.fd, user: member.sshUser, expectedHostKeys: expected,
                                                     identityFile: member.identityFile, keepalive: fleet.sshKeepalive,
                                                     timeout: timeout, logger: logger)
            } catch let mismatch as HostKeyMismatch where member.knownHosts == nil {
                // The executor may have re-keyed its sshd and re-reported: read the facts once more.
                let fresh = try await hostKeys.expected(for: member, refresh: true)
                guard fresh != expected else { throw mismatch }
                dialed.closeRelay()
                let again = try await dial(progress: progress)
                session = try await LinkSession.open(fd: again.fd, user: member.sshUser, expectedHostKeys: fresh,
                                                     identityFile: member.identityFile, keepalive: fleet.sshKeepalive,
                                                     timeout: timeout, logger: logger)
                return try await finish(dialed: again, session: session)
            }
            return try await finish(dialed: dialed, session: session)
        } catch {
            logger.warning("SSH over the dialed path failed", metadata: ["method": "\(dialed.report.method.rawValue)",
                                                                        "target": "\(dialed.report.target)", "error": "\(error)"])
            dialed.closeRelay()
            throw error
        }
    }

    private func finish(dialed: DialedPath, session: LinkSession) async throws -> Connection {
        do {
            let started = ContinuousClock.now
            let liveness = try await session.run("uname -a && id -u", timeout: fleet.sshConnectTimeout)
            let rtt = ContinuousClock.now - started
            guard liveness.exit == 0 else {
                throw LeaderFailure.unreachable("\(member.name): liveness check `uname -a && id -u` exited \(liveness.exit.map(String.init) ?? "without a status"): \(liveness.stderr.prefix(200))")
            }
            let uname = liveness.stdout.split(separator: "\n").first.map(String.init) ?? ""
            let helper = try await LinkHelper.start(on: session, remoteAH: member.remoteAH, version: version,
                                                    timeout: fleet.sshConnectTimeout, logger: logger)
            var report = dialed.report
            report.rttMs = rtt.milliseconds
            let path = DialedPath(fd: dialed.fd, report: report, relay: dialed.relay)
            logger.info("connect.path.fixed", metadata: ["method": "\(report.method.rawValue)", "target": "\(report.target)",
                                                         "relay": "\(report.relay ?? "-")", "rttMs": "\(Int(report.rttMs))"])
            journal.recordPath(follower: member.name, report)
            journal.append("connect.path.fixed", ["host": .string(member.name), "method": .string(report.method.rawValue),
                                                  "target": .string(report.target), "relay": .optional(report.relay),
                                                  "rttMs": .number(report.rttMs.rounded())])
            return Connection(dialed: path, session: session, helper: helper, os: member.os ?? Self.os(fromUname: uname) ?? helper.os,
                              connectedAt: .now)
        } catch {
            await session.close()
            throw error
        }
    }

    static func os(fromUname line: String) -> String? {
        if line.hasPrefix("Linux") { return "linux" }
        if line.hasPrefix("Darwin") { return "macos" }
        if line.contains("MINGW") || line.contains("MSYS") || line.contains("CYGWIN") { return "windows" }
        return nil
    }

    /// `connect = auto`: direct TCP when the member has a host that answers, else CONNECT
    /// through its access point; the method that worked last is tried first.
    private func dial(progress: (@Sendable (String) async -> Void)?) async throws -> DialedPath {
        var methods: [PathReport.Method]
        switch member.connect {
        case .direct: methods = [.direct]
        case .accessPoint: methods = [.accessPoint]
        case .auto:
            methods = []
            if member.host != nil { methods.append(.direct) }
            if member.remoteServer != nil { methods.append(.accessPoint) }
            if let last = lastMethod, let index = methods.firstIndex(of: last) { methods.insert(methods.remove(at: index), at: 0) }
        }
        guard !methods.isEmpty else {
            throw LeaderFailure.usage("\(member.name): neither a host for direct SSH nor a remote_server to reach it through")
        }
        var failures: [String] = []
        for method in methods {
            do {
                switch method {
                case .direct:
                    guard let host = member.host else { throw LeaderFailure.usage("\(member.name): connect = direct needs host") }
                    return try await FollowerDialer.direct(host: host, port: member.sshPort, timeout: fleet.sshConnectTimeout)
                case .accessPoint:
                    guard let server = member.remoteServer else {
                        throw LeaderFailure.usage("\(member.name): connect = access-point needs remote_server")
                    }
                    if let progress { await progress("\(member.name): connecting through the access point \(server)") }
                    let client = try AccessPointAccess.connectClient(server: server, fleet: fleet, timeout: fleet.sshConnectTimeout)
                    return try await FollowerDialer.accessPoint(client: client, executor: member.name,
                                                                 token: try AccessPointAccess.token(fleet: fleet))
                }
            } catch let failure as LeaderFailure where failure.exitCode == 2 {
                throw failure
            } catch {
                failures.append("\(error)")
            }
        }
        throw LeaderFailure.unreachable("\(member.name): " + failures.joined(separator: "; "))
    }

    /// Health for `followers list`: connected (or connects now) and the helper answers a probe.
    func probe() async -> (path: PathReport?, health: Health, error: String?, os: String?) {
        do {
            let connection = try await connected()
            let rtt = try await connection.helper.probe(timeout: .seconds(1))
            var path = connection.dialed.report
            path.rttMs = rtt.milliseconds
            return (path, .ok, nil, connection.os)
        } catch {
            if let connection {
                await Self.tearDown(connection)
                self.connection = nil
            }
            return (nil, .unreachable, "\(error)", nil)
        }
    }

    private var probeFailures = 0
    private var degraded = false

    /// Seed stage 6 for this follower, called every `health_probe_interval`: the helper
    /// answers a probe within 1 s, or it counts as a failure; `failure_threshold` failures in
    /// a row mark the path degraded and re-route it (the last good method first); when that
    /// fails too, the follower is unreachable until a later probe or request connects again.
    /// Followers with no connection are left alone (nothing to probe, nothing to keep warm).
    func healthCheck() async {
        guard let connection else { return }
        do {
            _ = try await connection.helper.probe(timeout: .seconds(1))
            probeFailures = 0
            return
        } catch {
            probeFailures += 1
            logger.warning("health probe failed", metadata: ["failures": "\(probeFailures)", "error": "\(error)"])
        }
        guard probeFailures >= fleet.failureThreshold, !degraded else { return }
        degraded = true
        let old = connection.dialed.report
        journal.append("connect.path.degraded", ["host": .string(member.name), "method": .string(old.method.rawValue),
                                                 "target": .string(old.target), "failures": .int(probeFailures)])
        await discard()
        do {
            let fresh = try await connected()
            degraded = false
            probeFailures = 0
            journal.append("connect.path.restored", ["host": .string(member.name), "method": .string(fresh.dialed.report.method.rawValue),
                                                     "target": .string(fresh.dialed.report.target),
                                                     "rttMs": .number(fresh.dialed.report.rttMs.rounded())])
            logger.info("path restored", metadata: ["method": "\(fresh.dialed.report.method.rawValue)"])
        } catch {
            degraded = false
            probeFailures = 0
            logger.warning("follower unreachable after re-route", metadata: ["error": "\(error)"])
        }
    }

    /// Forgets a connection that failed under a command (the next use reconnects).
    func discard() async {
        if let connection {
            self.connection = nil
            await Self.tearDown(connection)
        }
    }

    func close() async {
        connecting?.cancel()
        await discard()
    }

    static func tearDown(_ connection: Connection) async {
        connection.helper.close()
        await connection.session.close()
        connection.dialed.closeRelay()
    }
}

/// The host key the follower's sshd showed is not one the leader expected.
struct HostKeyMismatch: Error, CustomStringConvertible {
    let description: String
}
