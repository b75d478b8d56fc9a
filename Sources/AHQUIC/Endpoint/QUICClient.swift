import Logging
import NIOCore
import NIOPosix

/// Dials QUIC connections. Each client connection has its own UDP socket, closed when the
/// connection ends.
public enum QUICClient {
    /// Connects and completes the handshake, including the server's acceptance of our
    /// certificate (handshake confirmation). Throws the refusal reason otherwise.
    public static func connect(
        host: String,
        port: Int,
        configuration: QUICConfiguration,
        group: EventLoopGroup,
        logger: Logger = Logger(label: "ah.quic.client"),
        inboundStreamInitializer: (@Sendable (QUICStreamChannel) -> EventLoopFuture<Void>)? = nil
    ) async throws -> QUICConnection {
        let remote = try SocketAddress.makeAddressResolvingHost(host, port: port)
        return try await connect(to: remote, configuration: configuration, group: group, logger: logger,
                                 inboundStreamInitializer: inboundStreamInitializer)
    }

    public static func connect(
        to remote: SocketAddress,
        configuration: QUICConfiguration,
        group: EventLoopGroup,
        logger: Logger = Logger(label: "ah.quic.client"),
        inboundStreamInitializer: (@Sendable (QUICStreamChannel) -> EventLoopFuture<Void>)? = nil
    ) async throws -> QUICConnection {
        let credentials = try TLSCredentials(configuration.identity)
        let bindHost = remote.protocol == .inet6 ? "::" : "0.0.0.0"
        let channel = try await DatagramBootstrap(group: group)
            .udpOptions(configuration)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = QUICEndpointHandler(configuration: configuration, credentials: credentials,
                                                      logger: logger, server: nil)
                    handler.closesWhenEmpty = true
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .bind(host: bindHost, port: 0).get()
        let connection: QUICConnection
        do {
            connection = try await channel.eventLoop.submit {
                let handler = try channel.pipeline.syncOperations.handler(type: QUICEndpointHandler.self)
                let connection = QUICConnection(role: .client, channel: channel, owner: handler,
                                                local: channel.localAddress!, remote: remote,
                                                configuration: configuration, credentials: credentials, logger: logger)
                connection.inboundStreamInitializer = inboundStreamInitializer
                handler.adopt(connection)
                try connection.startClient()
                return connection
            }.get()
        } catch {
            try? await channel.close()
            throw error
        }
        do {
            try await connection.handshakeComplete.get()
        } catch {
            connection.close()
            throw error
        }
        return connection
    }
}
