@preconcurrency import AHQUIC
import ArgumentParser
import Foundation

struct DebugQUICDownloadServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quic-download-server",
        abstract: "Serve --size bytes on every stream a client opens and finishes (bulk-transfer benchmark).",
        discussion: "Prints 'listening on HOST:PORT' once bound. Stops on SIGTERM or SIGINT."
    )

    @Option(help: ArgumentHelp("UDP address to listen on (port 0 picks one).", valueName: "host:port"))
    var listen: HostPort

    @OptionGroup var tls: TLSFileOptions

    @Option(name: .customLong("allow-id"), help: ArgumentHelp("Allowed peer: exact SPIFFE ID or spiffe://TD/prefix/*; repeatable.", valueName: "id"))
    var allowIDs: [String] = []

    @Option(help: ArgumentHelp("Bytes to send per stream (suffixes KiB, MiB, GiB).", valueName: "n"))
    var size: ByteCount

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let logger = CLILogging.logger("ah.debug.download-server")
        let configuration = QUICConfiguration(identity: tls.identity, peerPolicy: try tls.peerPolicy(explicit: allowIDs, flag: "--allow-id"))
        let size = self.size.value
        let server = try await bindOrExit(listen, configuration: configuration, logger: logger) { stream in
            stream.pipeline.addHandler(DownloadServerStreamHandler(size: size))
        }
        try await serveUntilSignal(server, logger: logger)
    }
}
