import AHAuth
import AHHTTPServer
import AHTLS
import AHTunnel
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// `ah serve` as a swift-service-lifecycle `Service`: the QUIC side (`AccessPointServer`),
/// user tokens, the CONNECT ingress and the HTTP listener, started in that order and drained
/// in the reverse one.
///
/// Drain (graceful shutdown, i.e. the first SIGTERM/SIGINT in a `ServiceGroup` that lists it
/// in `gracefulShutdownSignals`):
/// 1. readyz turns 503 and new CONNECTs are refused with 503 (load balancers stop sending);
/// 2. every executor is told Goodbye with the grace period;
/// 3. open tunnels get `shutdownGrace` to finish; task cancellation (a second signal, listed in
///    `cancellationSignals`) ends the grace at once;
/// 4. what is still open is reset, the HTTP listener and the QUIC endpoint close, and queued
///    state writes are flushed.
public final class AccessPointService: Service, Sendable {
    public struct Configuration: Sendable {
        public var server: AccessPointServer.Configuration
        public var httpHost = "0.0.0.0"
        public var httpPort = 8443
        public var http = HTTPServerConfiguration()
        public var tls: TLSServerContext?
        public var acl: AccessControlList = .unconfigured
        public var externalIssuer: ExternalIssuerConfiguration?
        /// How long open tunnels may run on after the drain starts.
        public var shutdownGrace: TimeInterval = 30
        /// `--metrics-listen`: a second listener serving `GET /metrics` without a token (nil:
        /// /metrics only on the main listener, with a token of role ≥ viewer).
        public var metricsHost: String?
        public var metricsPort = 9464

        public init(server: AccessPointServer.Configuration) { self.server = server }
    }

    /// What a caller may want to print once everything listens.
    public struct Started: Sendable {
        public let quicAddress: SocketAddress
        public let httpAddress: SocketAddress
        /// The `--metrics-listen` listener's address, when there is one.
        public let metricsAddress: SocketAddress?
        public let caPin: String
        public let trustDomain: String
    }

    /// Why the service could not start; each a sentence naming the thing and the cause.
    public enum StartError: Error, CustomStringConvertible {
        case dataDirectory(String)
        case quic(String)
        case userTokens(String)
        case externalIssuer(String)
        case http(String)
        case metrics(String)

        public var description: String {
            switch self {
            case .dataDirectory(let text), .quic(let text), .userTokens(let text), .externalIssuer(let text), .http(let text),
                 .metrics(let text):
                return text
            }
        }
    }

    let configuration: Configuration
    let group: any EventLoopGroup
    let logger: Logger
    let onStarted: @Sendable (Started) -> Void

    public init(configuration: Configuration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                logger: Logger, onStarted: @escaping @Sendable (Started) -> Void = { _ in }) {
        self.configuration = configuration
        self.group = group
        self.logger = logger
        self.onStarted = onStarted
    }

    public func run() async throws {
        let running = try await start()
        // Until the group asks us to stop. Cancellation without a graceful phase (the group
        // failed elsewhere) skips the grace period.
        do {
            try await gracefulShutdown()
        } catch {
            logger.info("access point cancelled: closing without a grace period")
            await running.close(grace: 0)
            return
        }
        await running.drain(grace: configuration.shutdownGrace)
    }

    private func start() async throws -> Running {
        let server: AccessPointServer
        do {
            server = try await AccessPointServer.start(configuration.server, group: group, logger: logger)
        } catch let error as DataDirectoryError {
            throw StartError.dataDirectory(error.description)
        } catch {
            let address = "\(configuration.server.quicHost):\(configuration.server.quicPort)"
            throw StartError.quic("cannot listen for QUIC on \(address): \(Self.sentence(error))")
        }
        do {
            let authority: UserTokenAuthority
            do {
                authority = try await UserTokenAuthority.loadOrCreate(dataDirectory: configuration.server.dataDirectory)
            } catch {
                throw StartError.userTokens("cannot load the user token key in \(configuration.server.dataDirectory): \(error)")
            }
            var external: ExternalTokenIssuer?
            if let issuer = configuration.externalIssuer {
                do { external = try await ExternalTokenIssuer.load(issuer) } catch {
                    throw StartError.externalIssuer("--oidc-jwks-file '\(issuer.jwksFile)': \(error)")
                }
                logger.info("accepting user tokens from an external issuer",
                            metadata: ["issuer": "\(issuer.issuer)", "audience": "\(issuer.audience)"])
            }
            let verifier = TokenVerifierChain(local: authority, external: external)
            let draining = DrainFlag()
            let metrics = configuration.server.metrics
            let tunnels = ExecutorTunnels(verifier: verifier, acl: configuration.acl, registry: server.registry,
                                          store: server.store, metrics: metrics, logger: logger)
            let executors = LiveExecutorDirectory(store: server.store, registry: server.registry)
            let metricsSource = AccessPointMetricsSource(metrics: metrics, executors: executors)
            var routes = HTTPAPIRoutes(authority: authority,
                                       executors: executors,
                                       tunnels: tunnels, verifier: verifier,
                                       readiness: { !draining.isSet },
                                       logger: logger)
            routes.metrics = metricsSource
            routes.tunnelAudit = server.store
            routes.sessions = SessionsAPI(store: server.store, hub: server.sessions, acl: configuration.acl, metrics: metrics,
                                          logger: logger)
            let http: HTTPAPIServer
            do {
                http = try await HTTPAPIServer.start(host: configuration.httpHost, port: configuration.httpPort, group: group,
                                                     connectionGroup: server.quic.channel.eventLoop,
                                                     routes: routes, configuration: configuration.http,
                                                     tls: configuration.tls, logger: logger)
            } catch {
                throw StartError.http("cannot listen for HTTP on \(configuration.httpHost):\(configuration.httpPort): \(Self.sentence(error))")
            }
            if configuration.tls != nil { logger.info("TLS on the HTTP listener") }
            var metricsListener: HTTPAPIServer?
            if let metricsHost = configuration.metricsHost {
                do {
                    metricsListener = try await HTTPAPIServer.start(host: metricsHost, port: configuration.metricsPort, group: group,
                                                                    responder: MetricsOnlyResponder(metrics: metricsSource),
                                                                    logger: logger)
                } catch {
                    await http.close()
                    throw StartError.metrics("cannot listen for metrics on \(metricsHost):\(configuration.metricsPort): \(Self.sentence(error))")
                }
            }
            onStarted(Started(quicAddress: server.quicAddress, httpAddress: http.localAddress,
                              metricsAddress: metricsListener?.localAddress,
                              caPin: server.dataDirectory.caPin, trustDomain: server.dataDirectory.trustDomain))
            return Running(server: server, http: http, metrics: metricsListener, tunnels: tunnels, draining: draining, logger: logger)
        } catch {
            await server.close()
            throw error
        }
    }

    /// NIO's socket errors read like `bind(descriptor:ptr:bytes:): Address already in use
    /// (errno: 98)`: keep the reason only.
    static func sentence(_ error: any Error) -> String {
        if let io = error as? IOError {
            return String(cString: strerror(io.errnoCode)).lowercased()
        }
        return "\(error)"
    }

    /// The started parts, in the order they are taken down.
    struct Running: Sendable {
        let server: AccessPointServer
        let http: HTTPAPIServer
        let metrics: HTTPAPIServer?
        let tunnels: ExecutorTunnels
        let draining: DrainFlag
        let logger: Logger

        func drain(grace: TimeInterval) async {
            logger.info("draining", metadata: ["openTunnels": "\(tunnels.openTunnels)", "graceSeconds": "\(Int(grace))"])
            draining.set()
            tunnels.drain()
            server.sayGoodbye(reason: "access point shutting down", grace: grace)
            await close(grace: grace)
        }

        func close(grace: TimeInterval) async {
            draining.set()
            tunnels.drain()
            // `closeAll` waits at most `grace` and returns early when this task is cancelled
            // (the second signal); what is still open then is reset.
            let cutShort = await tunnels.closeAll(grace: grace)
            if cutShort > 0 {
                logger.warning("closed tunnels still open at the end of the grace period", metadata: ["count": "\(cutShort)"])
                // Let the reset tunnels write their audit rows before the store closes; a
                // detached task, because this one may be cancelled (the second signal).
                let tunnels = self.tunnels
                await Task.detached { _ = await Tunnel.waitForDrain(grace: 2) { tunnels.openTunnels } }.value
            }
            await http.close()
            await metrics?.close()
            await server.close()
            logger.info("stopped")
        }
    }
}

/// Set once when the drain starts; read by the readiness probe from any thread.
final class DrainFlag: Sendable {
    private let value = NIOLockedValueBox(false)
    var isSet: Bool { value.withLockedValue { $0 } }
    func set() { value.withLockedValue { $0 = true } }
}
