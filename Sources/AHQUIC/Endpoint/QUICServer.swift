import Logging
import NIOCore
import NIOPosix

/// A listening QUIC endpoint: one UDP socket, many connections.
public final class QUICServer: Sendable {
    public let channel: Channel
    private let handler: NIOLoopBound<QUICEndpointHandler>
    /// Connection lifecycle events. Buffers the newest 4096 if nobody reads them.
    public let events: AsyncStream<QUICServerEvent>

    /// The bound address (with the real port when 0 was requested).
    public var localAddress: SocketAddress { channel.localAddress! }

    /// Binds and starts accepting. `onConnection` runs (on the connection's event loop) once
    /// a peer has completed the handshake and passed the peer policy; `inboundStreamInitializer`
    /// runs for every stream a peer opens, before its data is delivered.
    public static func bind(
        host: String,
        port: Int,
        configuration: QUICConfiguration,
        group: EventLoopGroup,
        logger: Logger = Logger(label: "ah.quic.server"),
        onConnection: @escaping @Sendable (QUICConnection) -> Void = { _ in },
        inboundStreamInitializer: (@Sendable (QUICStreamChannel) -> EventLoopFuture<Void>)? = nil
    ) async throws -> QUICServer {
        let credentials = try TLSCredentials(configuration.identity)
        let (events, continuation) = AsyncStream.makeStream(of: QUICServerEvent.self, bufferingPolicy: .bufferingNewest(4096))
        let hooks = QUICEndpointHandler.ServerHooks(onConnection: onConnection, inboundStreamInitializer: inboundStreamInitializer,
                                                    events: continuation)
        let channel = try await DatagramBootstrap(group: group)
            .udpOptions(configuration)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = QUICEndpointHandler(configuration: configuration, credentials: credentials,
                                                      logger: logger, server: hooks)
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .bind(host: host, port: port).get()
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: QUICEndpointHandler.self), eventLoop: channel.eventLoop)
        }.get()
        channel.closeFuture.whenComplete { _ in continuation.finish() }
        return QUICServer(channel: channel, handler: handler, events: events)
    }

    private init(channel: Channel, handler: NIOLoopBound<QUICEndpointHandler>, events: AsyncStream<QUICServerEvent>) {
        self.channel = channel
        self.handler = handler
        self.events = events
    }

    /// Number of live connections (handshaking or established).
    public func connectionCount() async throws -> Int {
        try await channel.eventLoop.submit { self.handler.value.connectionCount }.get()
    }

    /// Returns once the server holds no connection at all: every refused or closed one has
    /// been released and its native state freed.
    public func waitUntilNoConnections() async throws {
        try await channel.eventLoop.flatSubmit {
            let promise = self.channel.eventLoop.makePromise(of: Void.self)
            self.handler.value.whenIdle(promise)
            return promise.futureResult
        }.get()
    }

    /// Closes every connection with `applicationErrorCode`/`reason`, waits for them to finish
    /// their closing period (bounded by `grace`), then closes the socket.
    public func close(applicationErrorCode: UInt64 = 0, reason: String = "server shutting down",
                      grace: TimeAmount = .seconds(3)) async {
        let closes: [EventLoopFuture<Void>] = (try? await channel.eventLoop.submit {
            self.handler.value.connections.map { connection in
                connection.closeLocally(CloseInfo(kind: .application, code: applicationErrorCode, reason: reason))
                return connection.closeFuture
            }
        }.get()) ?? []
        let all = EventLoopFuture.andAllComplete(closes, on: channel.eventLoop)
        let timeout = channel.eventLoop.scheduleTask(in: grace) {}
        _ = try? await all.or(timeout.futureResult).get()
        try? await channel.close()
    }
}

extension DatagramBootstrap {
    /// SO_REUSEADDR is never set. UDP has no TIME_WAIT, so a restarted server does not need it;
    /// with it, Linux lets a second process bind the same address and port and quietly
    /// hands it the new peers (a second `ah serve` would take every new executor), and a
    /// client's ephemeral socket could share a port with another socket of this process.
    /// Binding an address in use therefore fails with EADDRINUSE, as a TCP listener does.
    func udpOptions(_ configuration: QUICConfiguration) -> DatagramBootstrap {
        let gro = configuration.useSegmentationOffload && System.supportsUDPReceiveOffload
        // recvmmsg: several datagrams per syscall. Each slot must hold the largest datagram
        // we can be handed: a GRO batch, or one loopback-sized packet (DatagramSizing) —
        // up to 64 KiB either way.
        let messages = gro ? 8 : 16
        let slot = 65_536
        var bootstrap = self.channelOption(.socketOption(.so_reuseaddr), value: 0)
            .channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(configuration.socketReceiveBufferSize))
            .channelOption(.socketOption(.so_sndbuf), value: SocketOptionValue(configuration.socketSendBufferSize))
            .channelOption(.datagramVectorReadMessageCount, value: messages)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: messages * slot))
            .channelOption(.maxMessagesPerRead, value: 4)
        if gro {
            bootstrap = bootstrap
                .channelOption(.datagramReceiveOffload, value: true)
                .channelOption(.datagramReceiveSegmentSize, value: true)
        }
        return bootstrap
    }
}

extension EventLoopFuture where Value == Void {
    /// Completes when either future completes.
    func or(_ other: EventLoopFuture<Void>) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        whenComplete { _ in promise.succeed(()) }
        other.whenComplete { _ in promise.succeed(()) }
        return promise.futureResult
    }
}
