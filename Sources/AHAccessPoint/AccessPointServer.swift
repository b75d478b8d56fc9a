import AHControl
import AHEvents
import AHIdentity
import AHLogFields
import AHQUIC
import AHSPIFFE
import AHStore
import Foundation
import Logging
import NIOCore
import NIOPosix

/// What `ah serve` runs: the QUIC endpoint (mutual TLS `ah/1` for executors, `ah-enroll/1`
/// for first contact), the enrollment service, the live registry and the revocation watch.
public final class AccessPointServer: Sendable {
    public struct Configuration: Sendable {
        public var dataDirectory: String
        public var trustDomain: String?
        public var quicHost = "0.0.0.0"
        public var quicPort = 4433
        /// Lifetime of executor SVIDs (executors renew at about half).
        public var svidLifetime: TimeInterval = 3600
        /// How often the state file is checked for revocations made by other processes (a
        /// `PRAGMA data_version` query; executors are re-read only when it moved).
        public var revocationPollInterval: TimeAmount = .milliseconds(250)
        /// How long tunnel and identity audit rows are kept (pruned at start and hourly).
        public var auditRetention: Duration = AuditRetention.defaultMaxAge
        /// How long an unauthenticated enrollment connection may stay open.
        public var enrollmentDeadline: TimeAmount = .seconds(10)
        public var idleTimeout: TimeAmount = .seconds(30)
        /// How long a new `ah/1` connection may take to send Hello.
        public var helloDeadline: TimeAmount = .seconds(10)
        /// Sent in Ack; executors log when it changes.
        public var configHash: String = ""
        /// Where this access point's counters and gauges go (`GET /metrics`); one per access point.
        public var metrics = AccessPointMetrics()

        public init(dataDirectory: String) { self.dataDirectory = dataDirectory }
    }

    public let dataDirectory: AccessPointDataDirectory
    public let quic: QUICServer
    public let registry: ExecutorRegistry
    public let store: StateStore
    public let known: KnownExecutors
    /// Live session events for SSE consumers, fed by the leaders' uplinks.
    public let sessions: SessionsHub
    let logger: Logger
    private let watcher: Task<Void, Never>

    public var quicAddress: SocketAddress { quic.localAddress }

    public static func start(_ configuration: Configuration, group: EventLoopGroup,
                             logger: Logger = Logger(label: "ah.serve")) async throws -> AccessPointServer {
        let directory = try AccessPointDataDirectory.open(path: configuration.dataDirectory,
                                                         trustDomain: configuration.trustDomain, create: true)
        let store = try await StateStore.open(path: directory.statePath,
                                              changeCheckInterval: .nanoseconds(configuration.revocationPollInterval.nanoseconds),
                                              logger: logger)
        let known = KnownExecutors()
        _ = known.replaceAll(with: try await store.listExecutors())
        let registry = ExecutorRegistry()
        let enrollment = EnrollmentService(ca: directory.ca, trustDomain: directory.trustDomain, store: store,
                                           known: known, svidLifetime: configuration.svidLifetime, logger: logger)

        var quicConfiguration = QUICConfiguration(
            identity: TLSIdentity(certFile: directory.serveCertificatePath, keyFile: directory.serveKeyPath,
                                  caFile: directory.caCertificatePath),
            peerPolicy: .prefix(trustDomain: directory.trustDomain, pathPrefix: "/ah/agent"))
        quicConfiguration.alpn = controlALPN
        // `ah-events/1`: a leader's event uplink, same mutual TLS as `ah/1` (SessionsIngest).
        quicConfiguration.additionalALPNs = [enrollmentALPN, eventsALPN]
        quicConfiguration.clientCertificateOptionalALPNs = [enrollmentALPN]
        quicConfiguration.idleTimeout = configuration.idleTimeout
        quicConfiguration.statelessResetSecret = try directory.statelessResetSecret()
        quicConfiguration.peerAuthorizer = { peer in
            let name = peer.id.segments().last ?? ""
            guard let refusal = known.refusal(name: name, keyHash: peer.publicKeySHA256) else { return nil }
            store.recordHistory(kind: .reconnectRefused, name: name, spiffeID: "\(peer.id)", detail: refusal, now: Date())
            return refusal
        }

        let deadline = configuration.enrollmentDeadline
        let sessions = SessionsHub()
        let ingest = SessionsIngest(store: store, hub: sessions, known: known, metrics: configuration.metrics, logger: logger)
        let control = ControlContext(registry: registry, store: store, configHash: configuration.configHash,
                                     helloDeadline: configuration.helloDeadline, logger: logger)
        let quic = try await QUICServer.bind(
            host: configuration.quicHost, port: configuration.quicPort, configuration: quicConfiguration,
            group: group, logger: logger,
            onConnection: { connection in
                Self.connectionEstablished(connection, registry: registry, known: known, store: store, deadline: deadline,
                                           helloDeadline: configuration.helloDeadline, logger: logger)
            },
            inboundStreamInitializer: { stream in
                if stream.connection.negotiatedALPN == eventsALPN { return Self.initializeUplink(stream, ingest: ingest) }
                return Self.initialize(stream, enrollment: enrollment, control: control, metrics: configuration.metrics, logger: logger)
            })
        let degradation = DegradationWatch(registry: registry, logger: logger)
        let watcher = Task {
            async let trimming: Void = MemoryTrimmer.run()
            async let watching: Void = degradation.run()
            async let counting: Void = Self.countConnections(quic.events, into: configuration.metrics)
            async let pruning: Void = AuditPruner.run(store: store, retention: AuditRetention(maxAge: configuration.auditRetention),
                                                      logger: logger)
            await Self.watchRevocations(store: store, known: known, registry: registry, logger: logger)
            await pruning
            await trimming
            await watching
            await counting
        }
        logger.info("access point listening", metadata: [
            "quic": "\(quic.localAddress.hostPort)", "trustDomain": "\(directory.trustDomain)", "caPin": "\(directory.caPin)",
            "dataDir": "\(directory.url.path)"])
        return AccessPointServer(dataDirectory: directory, quic: quic, registry: registry, store: store, known: known,
                                 sessions: sessions, logger: logger, watcher: watcher)
    }

    private init(dataDirectory: AccessPointDataDirectory, quic: QUICServer, registry: ExecutorRegistry,
                 store: StateStore, known: KnownExecutors, sessions: SessionsHub, logger: Logger, watcher: Task<Void, Never>) {
        self.dataDirectory = dataDirectory
        self.quic = quic
        self.registry = registry
        self.store = store
        self.known = known
        self.sessions = sessions
        self.logger = logger
        self.watcher = watcher
    }

    /// Tells every connected executor Goodbye (they stop expecting tunnels from us and will
    /// reconnect to whoever answers next). Open tunnels are the ingress's business.
    public func sayGoodbye(reason: String, grace: TimeInterval) {
        for (_, entry) in registry.snapshot() {
            entry.control?.sayGoodbye(Goodbye(reason: reason, graceMillis: Int(grace * 1000)))
        }
    }

    /// Closes every connection (executors see "access point shutting down") and stops.
    public func close() async {
        watcher.cancel()
        await quic.close(applicationErrorCode: 0, reason: "access point shutting down")
        // Last: the disconnects above queue last-seen writes; close() applies every queued
        // write before it closes the state file.
        await store.close()
    }

    // MARK: Connections and streams

    private static func connectionEstablished(_ connection: QUICConnection, registry: ExecutorRegistry, known: KnownExecutors,
                                              store: StateStore, deadline: TimeAmount, helloDeadline: TimeAmount,
                                              logger: Logger) {
        if connection.negotiatedALPN == enrollmentALPN {
            // First contact gets one short window to enroll, then it is closed.
            connection.eventLoop.scheduleTask(in: deadline) {
                connection.close(applicationErrorCode: 0x11, reason: "enrollment deadline passed")
            }
            return
        }
        if connection.negotiatedALPN == eventsALPN {
            // A leader's event uplink: not the executor's control connection, so it is not
            // registered (it must not replace the executor's `ah/1` connection).
            logger.debug("event uplink connected", metadata: ["peer": "\(connection.peerIdentity.map { "\($0)" } ?? "?")"])
            return
        }
        guard let peer = connection.peerIdentity, let name = peer.segments().last else { return }
        let now = Date()
        if let previous = registry.connected(name, connection, at: now) {
            // One connection per executor: a reconnect replaces a stale one.
            previous.close(applicationErrorCode: 0x12, reason: "replaced by a newer connection")
        }
        logger.info("executor connected", metadata: ["name": "\(name)", "remote": "\(connection.remoteAddress.hostPort)"])
        // An executor that does not say Hello is not usable for tunnels or listings: drop it.
        connection.eventLoop.scheduleTask(in: helloDeadline) {
            if let entry = registry.entry(for: name), entry.connection === connection, entry.hello == nil {
                logger.warning("closing executor connection: no hello in time", metadata: ["name": "\(name)", "deadline": "\(helloDeadline)"])
                connection.close(applicationErrorCode: ConnectionCloseCode.protocolViolation, reason: "no hello within \(helloDeadline)")
            }
        }
        let entry = known.entry(name)
        if let verified = connection.verifiedPeer, entry == nil || (entry!.bringYourOwn && entry!.publicKeySHA256 != verified.publicKeySHA256) {
            // A certificate we did not issue through enrollment (`--identity files`): record
            // it (or its rotated key) so the executor is listed, bound to this key, revocable.
            Task {
                do {
                    if entry == nil {
                        try await store.enroll(name: name, spiffeID: peer, publicKeySHA256: verified.publicKeySHA256,
                                               tags: [KnownExecutors.identityTag.0: KnownExecutors.identityTag.1],
                                               certSerial: verified.serialHex, certNotAfter: verified.notAfter, now: now)
                        logger.info("registered executor with a bring-your-own certificate", metadata: ["name": "\(name)"])
                    } else {
                        try await store.recordRenewal(name: name, certSerial: verified.serialHex, certNotAfter: verified.notAfter,
                                                      publicKeySHA256: verified.publicKeySHA256, now: now)
                        logger.info("bring-your-own certificate rotated", metadata: ["name": "\(name)"])
                    }
                    known.update(name, .init(publicKeySHA256: verified.publicKeySHA256, revoked: false, bringYourOwn: true))
                } catch {
                    logger.warning("cannot record executor", metadata: ["name": "\(name)", "error": "\(error)"])
                }
                store.touch(name: name, lastSeen: now)
            }
        } else {
            store.touch(name: name, lastSeen: now)
        }
        connection.closeFuture.whenComplete { _ in
            // LAST SEEN is when the executor last spoke (its last heartbeat or Hello), not
            // the moment the idle timeout noticed the silence. A connection already replaced
            // by a newer one leaves the record to that one.
            let entry = registry.entry(for: name).flatMap { $0.connection === connection ? $0 : nil }
            registry.disconnected(name, connection)
            let reason = connection.eventLoop.inEventLoop ? connection.closeReason : nil
            logger.info("executor disconnected", metadata: ["name": "\(name)", "reason": "\(reason.map { "\($0)" } ?? "closed")"])
            if let entry { store.touch(name: name, lastSeen: entry.lastHeartbeatAt ?? entry.lastSeen) }
        }
    }

    /// Handshakes, their failures and open connections, from the QUIC server's events (until
    /// the watcher is cancelled at close).
    private static func countConnections(_ events: AsyncStream<QUICServerEvent>, into metrics: AccessPointMetrics) async {
        for await event in events { metrics.record(event) }
    }

    private static func initialize(_ stream: QUICStreamChannel, enrollment: EnrollmentService, control: ControlContext,
                                   metrics: AccessPointMetrics, logger: Logger) -> EventLoopFuture<Void> {
        let connection = stream.connection
        let loop = stream.eventLoop
        if connection.negotiatedALPN == enrollmentALPN {
            let remote = connection.remoteAddress.hostPort
            let responder = FrameResponder<EnrollRequest, EnrollResponse>(
                respond: { request in
                    let promise = loop.makePromise(of: EnrollResponse.self)
                    promise.completeWithTask {
                        let response = await enrollment.enroll(request, remote: remote)
                        metrics.enrolled(ok: response.ok)
                        return response
                    }
                    return promise.futureResult.map { response in
                        // One enrollment per connection: close once the answer is out.
                        loop.scheduleTask(in: .milliseconds(500)) {
                            connection.close(applicationErrorCode: 0, reason: response.ok ? "enrolled" : "enrollment refused")
                        }
                        return response
                    }
                },
                onError: { error in logger.warning("bad enrollment request", metadata: ["remote": "\(remote)", "error": "\(error)"]) })
            // Stream initializers run on the stream's loop: add the handler synchronously.
            return stream.eventLoop.makeCompletedFuture { try stream.pipeline.syncOperations.addHandler(responder) }
        }
        guard let peer = connection.peerIdentity, let name = peer.segments().last else { return stream.close() }
        let dispatcher = StreamKindDispatcher(
            install: { header, pipeline in
                switch header.type {
                case "renew":
                    try pipeline.addHandler(FrameResponder<RenewRequest, EnrollResponse>(
                        respond: { request in
                            let promise = loop.makePromise(of: EnrollResponse.self)
                            promise.completeWithTask { await enrollment.renew(csr: request.csr, peer: peer) }
                            return promise.futureResult
                        },
                        onError: { error in logger.warning("bad renewal request", metadata: ["peer": "\(peer)", "error": "\(error)"]) }))
                case "hello":
                    try control.install(on: pipeline, stream: stream, name: name)
                default:
                    throw FrameError.malformed("unknown stream kind '\(header.type.prefix(32))'")
                }
            },
            onError: { error in logger.warning("bad stream from executor", metadata: ["peer": "\(peer)", "error": "\(error)"]) })
        return stream.eventLoop.makeCompletedFuture { try stream.pipeline.syncOperations.addHandler(dispatcher) }
    }

    /// Re-reads executors whenever the store reports a change (`ExecutorStore.executorChanges`:
    /// our own enrollments and revocations, and commits by other processes such as
    /// `ah executors revoke`); a newly revoked identity loses its live connection at once.
    private static func watchRevocations(store: StateStore, known: KnownExecutors, registry: ExecutorRegistry,
                                         logger: Logger) async {
        for await change in store.executorChanges() {
            do {
                // Our own enrollments and renewals already updated `known`; re-reading every
                // executor after each of them would cost O(fleet) per enrollment.
                if case .local(let name) = change, !(try await store.isRevoked(name: name)) { continue }
                let (revoked, _) = known.replaceAll(with: try await store.listExecutors())
                for name in revoked {
                    if let connection = registry.connection(for: name) {
                        logger.warning("closing connection of revoked executor", metadata: ["name": "\(name)"])
                        connection.close(applicationErrorCode: 0x10, reason: "identity revoked")
                    }
                }
            } catch {
                logger.error("cannot read executors from the state file", metadata: ["error": "\(error)"])
            }
        }
    }
}
