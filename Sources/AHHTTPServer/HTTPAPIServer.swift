import AHLogFields
import AHTLS
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// The HTTP listener for the REST API and CONNECT tunnels (TLS over GnuTLS when a context is given), started in-process by
/// `ah serve` and by tests:
///
///     let server = try await HTTPAPIServer.start(host: "0.0.0.0", port: 8443,
///                                                group: MultiThreadedEventLoopGroup.singleton,
///                                                routes: HTTPAPIRoutes(authority: authority, executors: directory))
///     ...
///     await server.close()
public final class HTTPAPIServer: Sendable {
    private let serverChannel: any Channel
    private let connections: ConnectionSet
    /// The bound address (the real port when started with port 0).
    public let localAddress: SocketAddress

    public var port: Int { localAddress.port ?? 0 }

    private init(serverChannel: any Channel, connections: ConnectionSet, localAddress: SocketAddress) {
        self.serverChannel = serverChannel
        self.connections = connections
        self.localAddress = localAddress
    }

    /// `connectionGroup` serves the accepted connections (default: `group`). An access point
    /// passes its QUIC socket's loop: a tunnel's TCP side then runs on the same thread as its
    /// QUIC stream, so relayed bytes never cross threads (no wake-ups, no cache traffic).
    public static func start(host: String, port: Int,
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                             connectionGroup: (any EventLoopGroup)? = nil, routes: HTTPAPIRoutes,
                             configuration: HTTPServerConfiguration = HTTPServerConfiguration(),
                             tls: TLSServerContext? = nil,
                             logger: Logger = Logger(label: "ah.http")) async throws -> HTTPAPIServer {
        try await start(host: host, port: port, group: group, connectionGroup: connectionGroup, responder: routes,
                        configuration: configuration, tls: tls, logger: logger)
    }

    /// The same listener answering through any `HTTPResponder`.
    public static func start(host: String, port: Int,
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                             connectionGroup: (any EventLoopGroup)? = nil, responder: any HTTPResponder,
                             configuration: HTTPServerConfiguration = HTTPServerConfiguration(),
                             tls: TLSServerContext? = nil,
                             logger: Logger = Logger(label: "ah.http")) async throws -> HTTPAPIServer {
        let connections = ConnectionSet(limit: configuration.maxConnections, logger: logger)
        let channel = try await ServerBootstrap(group: group, childGroup: connectionGroup ?? group)
            .serverChannelOption(ChannelOptions.backlog, value: configuration.backlog)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptBackoff(pause: configuration.acceptBackoff, logger: logger))
                }
            }
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                // Over the cap: a failed initializer makes NIO close the connection at once.
                guard connections.insert(channel) else {
                    return channel.eventLoop.makeFailedFuture(HTTPServerRefusal.tooManyConnections)
                }
                return channel.eventLoop.makeCompletedFuture {
                    // TLS first: everything after it, tunnels included, sees plaintext.
                    if let tls { try channel.pipeline.syncOperations.addHandler(GnuTLSHandler.server(context: tls)) }
                    try HTTPServerPipeline.configure(channel.pipeline.syncOperations, responder: responder,
                                                     configuration: configuration, logger: logger)
                }
            }
            .bind(host: host, port: port).get()
        guard let address = channel.localAddress else {
            try? await channel.close()
            throw ChannelError.unknownLocalAddress
        }
        logger.info("HTTP API listening", metadata: ["address": "\(address.hostPort)"])
        return HTTPAPIServer(serverChannel: channel, connections: connections, localAddress: address)
    }

    /// Stops accepting, then closes every open connection (in-flight responses are cut off).
    public func close() async {
        try? await serverChannel.close()
        for channel in connections.drain() {
            try? await channel.close()
        }
    }
}

/// Builds the per-connection pipeline. Order matters: bytes → pre-tunnel limit → decoder
/// (with the head limits) → connection handler; responses → encoder. On a CONNECT the
/// connection handler hands the connection to a tunnel, which is why the decoder forwards
/// leftover bytes, and why the limit sits in front of the decoder that holds them.
enum HTTPServerPipeline {
    static func configure(_ pipeline: ChannelPipeline.SynchronousOperations, responder: any HTTPResponder,
                          configuration: HTTPServerConfiguration, logger: Logger) throws {
        let limiter = PreTunnelByteLimit(limit: configuration.maxPreTunnelBytes)
        try pipeline.addHandler(limiter)
        try pipeline.addHandler(HTTPResponseEncoder())
        try pipeline.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes,
                                                                        limitConfiguration: configuration.decoderLimits)))
        try pipeline.addHandler(HTTPConnectionHandler(responder: responder, limiter: limiter, configuration: configuration,
                                                      logger: logger))
    }
}

/// Why the listener closed a connection without a word.
enum HTTPServerRefusal: Error {
    case tooManyConnections
}

/// Open connections, so that `close()` can end them (NIO closes only the listener otherwise),
/// and their cap.
private final class ConnectionSet: @unchecked Sendable {
    private let lock = NSLock()
    private var channels: [ObjectIdentifier: any Channel] = [:]
    private let limit: Int
    private let logger: Logger
    /// Set while connections are being refused for the cap; the first refusal logs.
    private var refusing = false

    private var closed = false

    init(limit: Int, logger: Logger) {
        self.limit = limit
        self.logger = logger
    }

    /// False if the connection must be refused (over the cap). A connection accepted in the
    /// moment between closing the listener and draining is closed here and counts as taken.
    func insert(_ channel: any Channel) -> Bool {
        let id = ObjectIdentifier(channel)
        enum Verdict { case taken, closed, overCap(firstInEpisode: Bool), recovered }
        let verdict: Verdict = lock.withLock {
            if closed { return .closed }
            guard channels.count < limit else {
                defer { refusing = true }
                return .overCap(firstInEpisode: !refusing)
            }
            channels[id] = channel
            if refusing {
                refusing = false
                return .recovered
            }
            return .taken
        }
        switch verdict {
        case .closed:
            channel.close(promise: nil)
            return true
        case .overCap(let first):
            if first {
                logger.warning("refusing connections: \(limit) are open; new ones are closed until some end (raise --max-http-connections if this is normal load)")
            }
            return false
        case .recovered:
            logger.notice("accepting connections again: fewer than \(limit) open")
        case .taken:
            break
        }
        channel.closeFuture.whenComplete { _ in
            self.lock.withLock { _ = self.channels.removeValue(forKey: id) }
        }
        return true
    }

    func drain() -> [any Channel] {
        lock.withLock {
            closed = true
            defer { channels.removeAll() }
            return Array(channels.values)
        }
    }
}
