import AHControl
import AHIdentity
import AHLogFields
import AHQUIC
import AHSPIFFE
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle
import X509

/// What the agent does, for logs, the CLI and tests that await events instead of polling.
public enum ExecutorEvent: Sendable, CustomStringConvertible {
    case connected(remote: String)
    case disconnected(reason: String)
    case connectFailed(reason: String, retryIn: TimeInterval)
    case renewed(notAfter: Date)
    case renewalFailed(reason: String, retryIn: TimeInterval)
    /// Goodbye sent: no new tunnels; `open` tunnels get the grace period.
    case draining(open: Int)
    /// Changed sshd host keys were sent to the access point (a facts update).
    case hostKeysReported(count: Int)

    public var description: String {
        switch self {
        case .connected(let r): return "connected to \(r)"
        case .disconnected(let r): return "disconnected: \(r)"
        case .connectFailed(let r, let d): return "connect failed (\(r)); retrying in \(String(format: "%.1f", d)) s"
        case .renewed(let d): return "certificate renewed, valid until \(d)"
        case .renewalFailed(let r, let d): return "renewal failed (\(r)); retrying in \(String(format: "%.1f", d)) s"
        case .draining(let open): return "draining: Goodbye sent, \(open) tunnels open"
        case .hostKeysReported(let count): return "reported \(count) sshd host keys"
        }
    }
}

/// `ah agent enroll` after enrollment: keep one mutually authenticated connection to the
/// access point, reconnecting after any transient fault, and renew the certificate over it
/// before half its lifetime has passed (with ±10% jitter so a fleet does not renew in lockstep).
///
/// A swift-service-lifecycle `Service`: `run()` returns after a graceful shutdown (Goodbye, no
/// new tunnels, open ones get `shutdownGrace`, then close); cancelling it (a second SIGTERM
/// in `ah agent enroll`) ends the grace at once. It throws `ExecutorError.refused` when the
/// access point refuses this identity for good (revoked), which retrying cannot fix.
public final class ExecutorAgent: Service, Sendable {
    /// Where the identity comes from: the state directory (enrolled, renewed here) or PEM
    /// files managed by someone else (`--identity files`: reloaded when they change, never
    /// renewed by us).
    public enum IdentitySource: Sendable, Equatable {
        case stateDirectory
        case files(certificate: String, key: String, ca: String)
    }

    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        public var identity: IdentitySource = .stateDirectory
        /// How often `--identity files` are checked for changes.
        public var fileCheckInterval: TimeInterval = 1
        public var backoff = Backoff()
        /// Give up after this many failed connection attempts in a row (nil: never).
        public var maxRetries: Int?
        public var idleTimeout: TimeAmount = .seconds(30)
        public var keepAlive: TimeAmount = .seconds(10)
        /// What tunnels may reach (`--ssh`, `--ssh-dst`, `--allow-tcp`).
        public var tunnelPolicy = TunnelPolicy()
        /// `.pub` files of the sshd's host keys; empty: ask the sshd with ssh-keyscan.
        public var sshHostKeyFiles: [String] = []
        /// How often the sshd's host keys are read again while connected (a change is reported).
        public var hostKeyRescanInterval: Duration = .seconds(60)
        public var heartbeatInterval: TimeAmount = .seconds(5)
        /// How long the access point has to answer Hello before the connection is dropped.
        public var helloTimeout: TimeAmount = .seconds(10)
        /// On shutdown: how long open tunnels may still run after Goodbye.
        public var shutdownGrace: TimeInterval = 30
        /// Tags the executor asked for (reported in Hello; the enrolled ones are authoritative).
        public var tags: [String: String] = [:]

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        /// `host:port` of the access point, for log lines and messages.
        var remote: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    public let state: ExecutorStateDirectory
    let configuration: Configuration
    let group: EventLoopGroup
    let logger: Logger
    public let events: AsyncStream<ExecutorEvent>
    /// Counted into log lines (`connections=N`, `renewals=N`) so operators and tests can
    /// tell a reconnect from the first connection.
    private let counters = NIOLockedValueBox((connections: 0, renewals: 0))
    private let continuation: AsyncStream<ExecutorEvent>.Continuation
    /// The executor's end of tunnels, shared by all connections (tunnels may outlive one).
    public let tunnels: TunnelOpener
    let hostKeys: HostKeyWatch

    public init(state: ExecutorStateDirectory, configuration: Configuration, group: EventLoopGroup, logger: Logger) {
        self.state = state
        self.configuration = configuration
        self.group = group
        self.logger = logger
        let hostKeys = HostKeyWatch(policy: configuration.tunnelPolicy, files: configuration.sshHostKeyFiles, logger: logger)
        self.hostKeys = hostKeys
        self.tunnels = TunnelOpener(policy: configuration.tunnelPolicy, logger: logger, sshReached: { hostKeys.sshReachable() })
        (events, continuation) = AsyncStream.makeStream(of: ExecutorEvent.self, bufferingPolicy: .bufferingNewest(256))
    }

    private func emit(_ event: ExecutorEvent) {
        continuation.yield(event)
    }

    /// How one connection ended.
    private enum Outcome {
        /// We left on purpose (graceful shutdown or cancellation): stop.
        case left
        /// It closed under us, for this reason (nil: unknown).
        case lost(QUICError?)
    }

    /// Runs until a graceful shutdown or cancellation (or `maxRetries` consecutive failures).
    /// Throws `ExecutorError.identityExpired` when the stored certificate can no longer be used
    /// and `ExecutorError.refused` when the access point refuses this identity for good.
    public func run() async throws {
        defer { continuation.finish() }
        recordAccessPoint()
        var backoff = configuration.backoff
        var failures = 0
        let clock = ContinuousClock()
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let (metadata, certificate) = try currentIdentity()
            if certificate.notValidAfter <= Date() {
                throw ExecutorError.identityExpired(
                    "the certificate for \(metadata.spiffeID) expired at \(certificate.notValidAfter); enroll again with a new --token")
            }
            let started = clock.now
            let outcome: Outcome
            do {
                let hello = await makeHello(name: metadata.name)
                let connection = try await connect(metadata: metadata)
                let control: ControlStream
                do {
                    control = try await openControl(connection, hello: hello)
                } catch {
                    connection.close(applicationErrorCode: ConnectionCloseCode.protocolViolation, reason: "no Ack to Hello")
                    throw error
                }
                failures = 0
                let connections = counters.withLockedValue { $0.connections += 1; return $0.connections }
                let remote = connection.remoteAddress.hostPort
                logger.info("connected to access point", metadata: [
                    "remote": "\(remote)", "spiffeId": "\(metadata.spiffeID)", "connections": "\(connections)"])
                emit(.connected(remote: remote))
                outcome = await stayConnected(connection, control: control, hello: hello)
            } catch {
                let fault = ConnectionFault(error)
                if case .permanent(let reason) = fault {
                    let message = ConnectionFault.exitMessage(reason, remote: configuration.remote)
                    logger.error("giving up: \(message)")
                    throw ExecutorError.refused(message)
                }
                failures += 1
                if let limit = configuration.maxRetries, failures > limit {
                    throw ExecutorError.refused("giving up after \(failures) failed attempts to reach the access point at \(configuration.remote): \(error)")
                }
                let delay = backoff.nextDelay()
                logger.warning("cannot connect to access point at \(configuration.remote); retrying in \(Self.seconds(delay)) s",
                               metadata: ["error": "\(error)"])
                emit(.connectFailed(reason: "\(error)", retryIn: delay))
                await pause(delay)
                continue
            }
            guard case .lost(let reason) = outcome else { return }
            let text = reason.map { "\($0)" } ?? "closed"
            emit(.disconnected(reason: text))
            let lasted = clock.now - started
            backoff.connectionLasted(Double(lasted.components.seconds) + Double(lasted.components.attoseconds) / 1e18)
            var delay = backoff.nextDelay()
            if let reason, case .revokedWhileConnected = ConnectionFault(reason) {
                // The next handshake tells for certain (and makes us exit 3 if so): ask at once.
                delay = 0
            }
            logger.warning("connection to access point at \(configuration.remote) lost (\(text)); retrying in \(Self.seconds(delay)) s",
                           metadata: ["reason": "\(text)"])
            await pause(delay)
        }
    }

    /// `1.3`: delays in log lines.
    private static func seconds(_ delay: TimeInterval) -> String { String(format: "%.1f", delay) }

    /// Waits `delay` seconds, or less if a graceful shutdown or cancellation comes first.
    private func pause(_ delay: TimeInterval) async {
        guard delay > 0 else { return }
        try? await cancelWhenGracefulShutdown {
            try await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
        }
    }

    /// The identity to present now, read fresh from disk for every connection attempt.
    public func currentIdentity() throws -> (ExecutorStateDirectory.Metadata, Certificate) {
        switch configuration.identity {
        case .stateDirectory:
            return (try state.metadata(), try state.certificate())
        case .files(let certPath, _, _):
            let certificate = try PEMFile.readCertificate(from: URL(fileURLWithPath: certPath))
            let sans = try certificate.uriSANs()
            guard sans.count == 1, let id = try? SPIFFEID(parsing: sans[0]), let name = id.segments().last else {
                throw ExecutorError.usage("--cert-file '\(certPath)' does not carry exactly one SPIFFE ID")
            }
            return (.init(name: name, spiffeID: "\(id)", trustDomain: id.trustDomain), certificate)
        }
    }

    var identityFiles: (cert: String, key: String, ca: String) {
        switch configuration.identity {
        case .stateDirectory: return (state.certificatePath, state.keyPath, state.caPath)
        case .files(let cert, let key, let ca): return (cert, key, ca)
        }
    }

    private func connect(metadata: ExecutorStateDirectory.Metadata) async throws -> QUICConnection {
        let files = identityFiles
        var quic = QUICConfiguration(
            identity: TLSIdentity(certFile: files.cert, keyFile: files.key, caFile: files.ca),
            peerPolicy: .exact(try SPIFFEID.accessPoint(trustDomain: metadata.trustDomain)))
        quic.alpn = controlALPN
        quic.idleTimeout = configuration.idleTimeout
        quic.keepAliveInterval = configuration.keepAlive
        let tunnels = self.tunnels
        return try await QUICClient.connect(host: configuration.host, port: configuration.port,
                                            configuration: quic, group: group, logger: logger,
                                            inboundStreamInitializer: { stream in tunnels.initialize(stream) })
    }

    /// What Hello says about this executor. Host keys are read fresh for every connection
    /// (and re-read while connected: `HostKeyWatch`).
    func makeHello(name: String) async -> Hello {
        let policy = configuration.tunnelPolicy
        await hostKeys.refresh()
        let os = SystemFacts.operatingSystem
        return Hello(name: name, agentVersion: SystemFacts.agentVersion, os: os.name, osVersion: os.version,
                     arch: SystemFacts.architecture, cpuCount: SystemFacts.cpuCount, memoryBytes: SystemFacts.memoryBytes,
                     tags: configuration.tags, sshEnabled: policy.sshEnabled, sshHostKeys: hostKeys.current,
                     allowedPorts: policy.allowedPorts,
                     heartbeatIntervalMillis: Int(configuration.heartbeatInterval.nanoseconds / 1_000_000))
    }

    /// Opens the control stream, says Hello and waits for Ack. Throws (and the caller drops the
    /// connection) when the access point does not answer in time.
    private func openControl(_ connection: QUICConnection, hello: Hello) async throws -> ControlStream {
        let tunnels = self.tunnels
        let control = try await ControlStream.open(on: connection, hello: hello, heartbeatInterval: configuration.heartbeatInterval,
                                                   openTunnels: { tunnels.openTunnels }, logger: logger)
        let timeout = configuration.helloTimeout
        // Whichever comes first completes `answer` (a second completion is ignored).
        let answer = connection.eventLoop.makePromise(of: Ack.self)
        control.acknowledged.cascade(to: answer)
        let timer = connection.eventLoop.scheduleTask(in: timeout) {
            answer.fail(ExecutorError.refused("the access point did not acknowledge Hello within \(timeout)"))
        }
        defer { timer.cancel() }
        let ack = try await answer.futureResult.get()
        logger.debug("access point acknowledged", metadata: ["configHash": "\(ack.configHash)"])
        return control
    }

    /// Holds the connection, renewing as due and reporting changed host keys, until it closes
    /// (`.lost`) or we are asked to stop: then leaves politely (`.left`).
    private func stayConnected(_ connection: QUICConnection, control: ControlStream, hello: Hello) async -> Outcome {
        let wake = connection.eventLoop.makePromise(of: Void.self)
        connection.closeFuture.whenComplete { _ in wake.succeed(()) }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                if case .files = self.configuration.identity {
                    await self.watchFiles(connection)
                } else {
                    await self.renewLoop(connection)
                }
            }
            group.addTask {
                await self.hostKeys.watch(every: self.configuration.hostKeyRescanInterval) { keys in
                    var update = hello
                    update.sshHostKeys = keys
                    control.send(update.asFactsUpdate)
                    self.emit(.hostKeysReported(count: keys.count))
                }
            }
            await withTaskCancellationOrGracefulShutdownHandler {
                try? await wake.futureResult.get()
            } onCancelOrGracefulShutdown: {
                wake.succeed(())
            }
            group.cancelAll()
        }
        if Task.isCancelled || Task.isShuttingDownGracefully {
            await leave(connection, control: control)
            return .left
        }
        let reason = try? await connection.eventLoop.submit { connection.closeReason }.get()
        return .lost(reason ?? nil)
    }

    /// Stopping: Goodbye, no new tunnels, the grace period for open ones (ended at once by
    /// cancellation), then a close the access point sees at once rather than after its idle
    /// timeout.
    private func leave(_ connection: QUICConnection, control: ControlStream) async {
        let grace = configuration.shutdownGrace
        tunnels.drain()
        control.send(Goodbye(reason: "executor shutting down", graceMillis: Int(grace * 1000)))
        let open = tunnels.openTunnels
        emit(.draining(open: open))
        if open > 0 {
            logger.info("waiting for open tunnels to finish", metadata: ["open": "\(open)", "graceSeconds": "\(grace)"])
            let left = await tunnels.waitForTunnels(grace: grace)
            if left > 0 {
                let why = Task.isCancelled ? "stopped again" : "grace period over"
                logger.warning("\(why); closing open tunnels", metadata: ["open": "\(left)"])
            }
        }
        connection.close(applicationErrorCode: ConnectionCloseCode.normal, reason: "executor shutting down")
        try? await connection.closeFuture.get()
        logger.info("connection to access point closed", metadata: ["reason": "executor shutting down"])
    }

    /// `--identity files`: when the PEM files change, reconnect so the new certificate is
    /// presented (the access point sees the rotation at once, not at the next fault).
    private func watchFiles(_ connection: QUICConnection) async {
        let files = identityFiles
        func signature() -> [String] {
            [files.cert, files.key, files.ca].map { path in
                let attributes = try? FileManager.default.attributesOfItem(atPath: path)
                return "\((attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)/\(attributes?[.size] as? Int ?? -1)"
            }
        }
        let initial = signature()
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(Int64(configuration.fileCheckInterval * 1000)))
            if Task.isCancelled { return }
            if signature() != initial {
                logger.info("identity files changed; reconnecting with the new certificate")
                connection.close(applicationErrorCode: 0, reason: "executor identity rotated")
                return
            }
        }
    }

    private func renewLoop(_ connection: QUICConnection) async {
        var retry = Backoff(base: 2, cap: 60)
        while !Task.isCancelled {
            guard let certificate = try? state.certificate() else { return }
            // Measure the lifetime from when we got the certificate (the file's mtime), not
            // from notBefore, which the CA backdates for clock skew.
            let received = max(certificate.notValidBefore, state.certificateModified() ?? certificate.notValidBefore)
            let lifetime = certificate.notValidAfter.timeIntervalSince(received)
            let jitter = Double.random(in: -0.1...0.1) * lifetime / 2
            let due = received.addingTimeInterval(lifetime / 2 + jitter)
            let wait = max(0, due.timeIntervalSinceNow)
            try? await Task.sleep(for: .milliseconds(Int64(min(wait, 1e9) * 1000)))
            if Task.isCancelled { return }
            do {
                let notAfter = try await renew(over: connection)
                retry = Backoff(base: 2, cap: 60)
                let renewals = counters.withLockedValue { $0.renewals += 1; return $0.renewals }
                logger.info("certificate renewed", metadata: ["notAfter": "\(notAfter)", "renewals": "\(renewals)"])
                emit(.renewed(notAfter: notAfter))
            } catch {
                // Keep working on the current certificate; try again until it expires.
                let delay = retry.nextDelay()
                logger.warning("certificate renewal failed", metadata: ["error": "\(error)", "retryIn": "\(String(format: "%.1f", delay))s"])
                emit(.renewalFailed(reason: "\(error)", retryIn: delay))
                try? await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
            }
        }
    }

    private func renew(over connection: QUICConnection) async throws -> Date {
        let key = try state.privateKey()
        let csr = try CSR.make(privateKey: key, commonName: (try? state.metadata().name) ?? "executor")
        let response = try await OneShotExchange.send(RenewRequest(csr: csr), over: connection, expecting: EnrollResponse.self)
        guard response.ok, let pem = response.certificate else {
            throw ExecutorError.refused("renewal refused: \(response.message ?? "no reason") [\(response.error ?? "unknown")]")
        }
        try state.storeRenewal(certificatePEM: pem)
        return try state.certificate().notValidAfter
    }
}
