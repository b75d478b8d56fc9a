import AHControl
import AHIdentity
import AHQUIC
import AHSPIFFE
import Foundation
import Logging
import NIOCore
import X509

/// What the agent does, for logs, the CLI and tests that await events instead of polling.
public enum ExecutorEvent: Sendable, CustomStringConvertible {
    case connected(remote: String)
    case disconnected(reason: String)
    case connectFailed(reason: String, retryIn: TimeInterval)
    case renewed(notAfter: Date)
    case renewalFailed(reason: String, retryIn: TimeInterval)

    public var description: String {
        switch self {
        case .connected(let r): return "connected to \(r)"
        case .disconnected(let r): return "disconnected: \(r)"
        case .connectFailed(let r, let d): return "connect failed (\(r)); retrying in \(String(format: "%.1f", d)) s"
        case .renewed(let d): return "certificate renewed, valid until \(d)"
        case .renewalFailed(let r, let d): return "renewal failed (\(r)); retrying in \(String(format: "%.1f", d)) s"
        }
    }
}

/// `ah agent enroll` after enrollment: keep one mutually authenticated connection to the
/// access point, reconnecting after any fault, and renew the certificate over it before
/// half its lifetime has passed (with ±10% jitter so a fleet does not renew in lockstep).
public final class ExecutorAgent: @unchecked Sendable {
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
    }

    public let state: ExecutorStateDirectory
    let configuration: Configuration
    let group: EventLoopGroup
    let logger: Logger
    public let events: AsyncStream<ExecutorEvent>
    /// Counted into log lines (`connections=N`, `renewals=N`) so operators and tests can
    /// tell a reconnect from the first connection.
    private var connections = 0
    private var renewals = 0
    private let continuation: AsyncStream<ExecutorEvent>.Continuation
    /// The executor's end of tunnels, shared by all connections (tunnels may outlive one).
    public let tunnels: TunnelOpener

    public init(state: ExecutorStateDirectory, configuration: Configuration, group: EventLoopGroup, logger: Logger) {
        self.state = state
        self.configuration = configuration
        self.group = group
        self.logger = logger
        self.tunnels = TunnelOpener(policy: configuration.tunnelPolicy, logger: logger)
        (events, continuation) = AsyncStream.makeStream(of: ExecutorEvent.self, bufferingPolicy: .bufferingNewest(256))
    }

    private func emit(_ event: ExecutorEvent) {
        continuation.yield(event)
    }

    /// Runs until cancelled (or `maxRetries` consecutive failures). Throws
    /// `ExecutorError.identityExpired` when the stored certificate can no longer be used.
    public func run() async throws {
        defer { continuation.finish() }
        var backoff = configuration.backoff
        var failures = 0
        while !Task.isCancelled {
            let (metadata, certificate) = try currentIdentity()
            if certificate.notValidAfter <= Date() {
                throw ExecutorError.identityExpired(
                    "the certificate for \(metadata.spiffeID) expired at \(certificate.notValidAfter); enroll again with a new --token")
            }
            let started = Date()
            do {
                let hello = makeHello(name: metadata.name)
                let connection = try await connect(metadata: metadata)
                let control: ExecutorControlHandler
                do {
                    control = try await openControl(connection, hello: hello)
                } catch {
                    connection.close(applicationErrorCode: ConnectionCloseCode.protocolViolation, reason: "no Ack to Hello")
                    throw error
                }
                failures = 0
                connections += 1
                logger.info("connected to access point", metadata: [
                    "remote": "\(connection.remoteAddress)", "spiffeId": "\(metadata.spiffeID)", "connections": "\(connections)"])
                emit(.connected(remote: "\(connection.remoteAddress)"))
                let reason = await stayConnected(connection, control: control)
                if Task.isCancelled {
                    logger.info("connection to access point closed", metadata: ["reason": "\(reason)"])
                } else {
                    logger.warning("connection to access point ended", metadata: ["reason": "\(reason)"])
                }
                emit(.disconnected(reason: reason))
                backoff.connectionLasted(Date().timeIntervalSince(started))
            } catch {
                failures += 1
                if let limit = configuration.maxRetries, failures > limit {
                    throw ExecutorError.refused("giving up after \(failures) failed attempts: \(error)")
                }
                let delay = backoff.nextDelay()
                logger.warning("cannot connect to access point", metadata: ["error": "\(error)", "retryIn": "\(String(format: "%.1f", delay))s"])
                emit(.connectFailed(reason: "\(error)", retryIn: delay))
                try? await Task.sleep(nanoseconds: UInt64(delay * 1e9))
                continue
            }
            let delay = backoff.nextDelay()
            try? await Task.sleep(nanoseconds: UInt64(delay * 1e9))
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

    private var identityFiles: (cert: String, key: String, ca: String) {
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

    /// What Hello says about this executor. Host keys are read fresh for every connection,
    /// so a re-keyed sshd is reported at the next reconnect.
    func makeHello(name: String) -> Hello {
        let policy = configuration.tunnelPolicy
        var hostKeys: [SSHHostKey] = []
        if policy.sshEnabled {
            if configuration.sshHostKeyFiles.isEmpty {
                let scan = SSHHostKeys.scan(policy.sshDestination)
                hostKeys = scan.keys
                if let error = scan.error {
                    logger.warning("cannot read the sshd's host keys; `ah ssh-config` will have none to pin", metadata: ["error": "\(error)"])
                }
            } else {
                do { hostKeys = try SSHHostKeys.read(files: configuration.sshHostKeyFiles) } catch {
                    logger.warning("cannot read --ssh-host-key files", metadata: ["error": "\(error)"])
                }
            }
        }
        let os = SystemFacts.operatingSystem
        return Hello(name: name, agentVersion: SystemFacts.agentVersion, os: os.name, osVersion: os.version,
                     arch: SystemFacts.architecture, cpuCount: SystemFacts.cpuCount, memoryBytes: SystemFacts.memoryBytes,
                     tags: configuration.tags, sshEnabled: policy.sshEnabled, sshHostKeys: hostKeys,
                     allowedPorts: policy.allowedPorts,
                     heartbeatIntervalMillis: Int(configuration.heartbeatInterval.nanoseconds / 1_000_000))
    }

    /// Opens the control stream, says Hello and waits for Ack. Throws (and the caller drops the
    /// connection) when the access point does not answer in time.
    private func openControl(_ connection: QUICConnection, hello: Hello) async throws -> ExecutorControlHandler {
        let handler = ExecutorControlHandler(hello: hello, interval: configuration.heartbeatInterval,
                                             openTunnels: { [tunnels] in tunnels.openTunnels },
                                             loop: connection.eventLoop, logger: logger)
        _ = try await connection.openStream { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(ByteToMessageHandler(ControlFrameDecoder()))
                try stream.pipeline.syncOperations.addHandler(handler)
            }
        }.get()
        let timeout = connection.eventLoop.scheduleTask(in: configuration.helloTimeout) {
            handler.acknowledged.fail(ExecutorError.refused("the access point did not acknowledge Hello within \(self.configuration.helloTimeout)"))
        }
        defer { timeout.cancel() }
        let ack = try await handler.acknowledged.futureResult.get()
        logger.debug("access point acknowledged", metadata: ["configHash": "\(ack.configHash)"])
        return handler
    }

    /// Holds the connection, renewing as due, until it closes. Returns why it closed.
    private func stayConnected(_ connection: QUICConnection, control: ExecutorControlHandler) async -> String {
        let renewer: Task<Void, Never>
        if case .files = configuration.identity {
            renewer = Task { await watchFiles(connection) }
        } else {
            renewer = Task { await renewLoop(connection) }
        }
        defer { renewer.cancel() }
        await withTaskCancellationHandler {
            try? await connection.closeFuture.get()
        } onCancel: {
            // Stopping (SIGTERM): Goodbye, no new tunnels, a grace period for open ones, then
            // a close the access point sees at once rather than after its idle timeout.
            Task { await self.leave(connection, control: control) }
        }
        let reason = try? await connection.eventLoop.submit { connection.closeReason }.get()
        return reason.map { "\($0)" } ?? "closed"
    }

    private func leave(_ connection: QUICConnection, control: ExecutorControlHandler) async {
        let grace = configuration.shutdownGrace
        tunnels.drain()
        connection.eventLoop.execute {
            control.sayGoodbye(Goodbye(reason: "executor shutting down", graceMillis: Int(grace * 1000)))
        }
        let open = tunnels.openTunnels
        if open > 0 {
            logger.info("waiting for open tunnels to finish", metadata: ["open": "\(open)", "graceSeconds": "\(grace)"])
            let left = await tunnels.waitForTunnels(grace: grace)
            if left > 0 { logger.warning("grace period over; closing open tunnels", metadata: ["open": "\(left)"]) }
        }
        connection.close(applicationErrorCode: ConnectionCloseCode.normal, reason: "executor shutting down")
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
            try? await Task.sleep(nanoseconds: UInt64(configuration.fileCheckInterval * 1e9))
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
            try? await Task.sleep(nanoseconds: UInt64(wait * 1e9))
            if Task.isCancelled { return }
            do {
                let notAfter = try await renew(over: connection)
                retry = Backoff(base: 2, cap: 60)
                renewals += 1
                logger.info("certificate renewed", metadata: ["notAfter": "\(notAfter)", "renewals": "\(renewals)"])
                emit(.renewed(notAfter: notAfter))
            } catch {
                // Keep working on the current certificate; try again until it expires.
                let delay = retry.nextDelay()
                logger.warning("certificate renewal failed", metadata: ["error": "\(error)", "retryIn": "\(String(format: "%.1f", delay))s"])
                emit(.renewalFailed(reason: "\(error)", retryIn: delay))
                try? await Task.sleep(nanoseconds: UInt64(delay * 1e9))
            }
        }
    }

    private func renew(over connection: QUICConnection) async throws -> Date {
        let key = try state.privateKey()
        let csr = try CSR.make(privateKey: key, commonName: (try? state.metadata().name) ?? "executor")
        let promise = connection.eventLoop.makePromise(of: EnrollResponse.self)
        _ = connection.openStream { stream in
            stream.pipeline.addHandler(FrameRequester<RenewRequest, EnrollResponse>(request: RenewRequest(csr: csr), promise: promise))
        }.cascadeFailure(to: promise)
        let response = try await promise.futureResult.get()
        guard response.ok, let pem = response.certificate else {
            throw ExecutorError.refused("renewal refused: \(response.message ?? "no reason") [\(response.error ?? "unknown")]")
        }
        try state.storeRenewal(certificatePEM: pem)
        return try state.certificate().notValidAfter
    }
}
