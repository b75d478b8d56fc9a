@preconcurrency import AHQUIC
import ArgumentParser
import Foundation
import NIOCore

struct DebugQUICDownloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quic-download",
        abstract: "Download one stream from quic-download-server and print the throughput."
    )

    @Option(help: ArgumentHelp("Server UDP address.", valueName: "host:port"))
    var connect: HostPort

    @OptionGroup var tls: TLSFileOptions

    @Option(name: .customLong("server-id"), help: ArgumentHelp("Expected server SPIFFE ID (or prefix/*); default: any in our trust domain.", valueName: "id"))
    var serverID: String?

    @Flag(name: .customLong("no-verify"), help: "Skip checking every byte against the expected pattern.")
    var noVerify = false

    @Flag(help: "Print one JSON document instead of text.")
    var json = false

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let logger = CLILogging.logger("ah.debug.download")
        let policy = try tls.peerPolicy(explicit: serverID.map { [$0] } ?? [], flag: "--server-id")
        let configuration = QUICConfiguration(identity: tls.identity, peerPolicy: policy)
        let connection = try await dial(connect, configuration: configuration, logger: logger)
        let start = DispatchTime.now()
        let promise = connection.eventLoop.makePromise(of: Int.self)
        let verify = !noVerify
        connection.openStream { stream in
            stream.pipeline.addHandler(DownloadClientStreamHandler(verify: verify, result: promise))
        }.whenFailure { promise.fail($0) }
        let received: Int
        do {
            received = try await promise.futureResult.get()
        } catch {
            connection.close(applicationErrorCode: 1, reason: "download failed")
            throw CLIError.failed("download failed: \(error)")
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        connection.close(applicationErrorCode: 0, reason: "done")
        try? await connection.closeFuture.get()
        let mibPerSecond = Double(received) / seconds / 1_048_576
        if json {
            printJSON(["bytes": received, "seconds": seconds, "mibPerSecond": mibPerSecond])
        } else {
            print(String(format: "downloaded %d bytes in %.3f s: %.1f MiB/s", received, seconds, mibPerSecond))
        }
    }
}
