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
        let connections = ConnectionSet()
        let channel = try await ServerBootstrap(group: group, childGroup: connectionGroup ?? group)
            .serverChannelOption(ChannelOptions.backlog, value: configuration.backlog)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                connections.insert(channel)
                return channel.eventLoop.makeCompletedFuture {
                    // TLS first: everything after it, tunnels included, sees plaintext.
                    if let tls { try channel.pipeline.syncOperations.addHandler(GnuTLSHandler.server(context: tls)) }
                    try HTTPServerPipeline.configure(channel.pipeline.syncOperations, routes: routes,
                                                     configuration: configuration, logger: logger)
                }
            }
            .bind(host: host, port: port).get()
        guard let address = channel.localAddress else {
            try? await channel.close()
            throw ChannelError.unknownLocalAddress
        }
        logger.info("HTTP API listening", metadata: ["address": "\(address)"])
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

/// Builds the per-connection pipeline. Order matters: bytes → decoder (with the head limits)
/// → connection handler; responses → encoder. A CONNECT ingress will sit in the connection
/// handler's place for tunnel requests, which is why the decoder forwards leftover bytes.
enum HTTPServerPipeline {
    static func configure(_ pipeline: ChannelPipeline.SynchronousOperations, routes: HTTPAPIRoutes,
                          configuration: HTTPServerConfiguration, logger: Logger) throws {
        try pipeline.addHandler(HTTPResponseEncoder())
        try pipeline.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes,
                                                                        limitConfiguration: configuration.decoderLimits)))
        try pipeline.addHandler(HTTPConnectionHandler(routes: routes, configuration: configuration, logger: logger))
    }
}

/// Open connections, so that `close()` can end them (NIO closes only the listener otherwise).
private final class ConnectionSet: @unchecked Sendable {
    private let lock = NSLock()
    private var channels: [ObjectIdentifier: any Channel] = [:]

    private var closed = false

    func insert(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        let accepted = lock.withLock {
            if !closed { channels[id] = channel }
            return !closed
        }
        // Accepted in the moment between closing the listener and draining: end it too.
        guard accepted else {
            channel.close(promise: nil)
            return
        }
        channel.closeFuture.whenComplete { _ in
            self.lock.withLock { _ = self.channels.removeValue(forKey: id) }
        }
    }

    func drain() -> [any Channel] {
        lock.withLock {
            closed = true
            defer { channels.removeAll() }
            return Array(channels.values)
        }
    }
}
