@preconcurrency import AHQUIC
import ArgumentParser
import Foundation
import NIOCore
import Logging
import ServiceLifecycle
import NIOPosix

struct DebugQUICEchoServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quic-echo-server",
        abstract: "Run a QUIC echo server (mutual TLS, ALPN ah/1) for transport testing.",
        discussion: """
            Echoes every byte of each bidirectional stream and finishes its side when the peer \
            finishes. Peers outside --allow-id are refused during the handshake; without \
            --allow-id any SPIFFE ID of our own trust domain is accepted. Prints \
            'listening on HOST:PORT' once bound. Stops on SIGTERM or SIGINT.
            """
    )

    @Option(help: ArgumentHelp("UDP address to listen on (port 0 picks one).", valueName: "host:port"))
    var listen: HostPort

    @OptionGroup var tls: TLSFileOptions

    @Option(name: .customLong("allow-id"), help: ArgumentHelp("Allowed peer: exact SPIFFE ID or spiffe://TD/prefix/*; repeatable.", valueName: "id"))
    var allowIDs: [String] = []

    @Option(name: .customLong("idle-timeout"), help: "Idle timeout in seconds.")
    var idleTimeout: Int = 30

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let logger = CLILogging.logger("ah.debug.echo-server")
        var configuration = QUICConfiguration(identity: tls.identity, peerPolicy: try tls.peerPolicy(explicit: allowIDs, flag: "--allow-id"))
        configuration.idleTimeout = .seconds(Int64(idleTimeout))
        let server = try await bindOrExit(listen, configuration: configuration, logger: logger) { stream in
            stream.pipeline.addHandler(EchoStreamHandler())
        }
        try await serveUntilSignal(server, logger: logger)
    }
}

/// Binds a QUIC server and prints the one 'listening on' line scripts wait for.
func bindOrExit(_ listen: HostPort, configuration: QUICConfiguration, logger: Logger,
                initializer: @escaping @Sendable (QUICStreamChannel) -> EventLoopFuture<Void>) async throws -> QUICServer {
    let server: QUICServer
    do {
        server = try await QUICServer.bind(
            host: listen.host, port: listen.port, configuration: configuration,
            group: MultiThreadedEventLoopGroup.singleton, logger: logger,
            onConnection: { connection in
                logger.info("peer connected", metadata: ["peer": "\(connection.peerIdentity.map { "\($0)" } ?? "?")",
                                                         "remote": "\(connection.remoteAddress)"])
            },
            inboundStreamInitializer: initializer)
    } catch let error as QUICError {
        throw CLIError.usage("\(error)")
    } catch {
        throw CLIError.usage("cannot listen on \(listen): \(error)")
    }
    let port = server.localAddress.port ?? listen.port
    print("listening on \(HostPort(host: listen.host, port: port))")
    fflush(nil)  // flush all C streams: scripts wait for this line
    return server
}

func serveUntilSignal(_ server: QUICServer, logger: Logger) async throws {
    try await ServiceRunner.run([DebugServerService(server: server, logger: logger)], logger: logger)
}

/// A debug QUIC server until SIGTERM/SIGINT: then every connection is closed.
private struct DebugServerService: Service {
    let server: QUICServer
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        logger.info("closing connections and stopping")
        await server.close()
    }
}
