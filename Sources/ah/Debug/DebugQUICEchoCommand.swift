@preconcurrency import AHQUIC
import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix

struct DebugQUICEchoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quic-echo",
        abstract: "Send data over QUIC streams to an echo server and check it comes back identical.",
        discussion: "Exits 0 only when every stream came back byte-identical; prints the throughput."
    )

    @Option(help: ArgumentHelp("Server UDP address.", valueName: "host:port"))
    var connect: HostPort

    @OptionGroup var tls: TLSFileOptions

    @Option(name: .customLong("server-id"), help: ArgumentHelp("Expected server SPIFFE ID (or spiffe://TD/prefix/*); default: any in our trust domain.", valueName: "id"))
    var serverID: String?

    @Option(help: "Number of concurrent bidirectional streams.")
    var streams: Int = 1

    @Option(help: ArgumentHelp("Bytes to send on each stream (suffixes KiB, MiB, GiB).", valueName: "n"))
    var bytes: ByteCount = ByteCount(argument: "1MiB")!

    @Flag(help: "Print one JSON document instead of text.")
    var json = false

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        guard streams >= 1 else { throw ValidationError("--streams '\(streams)' must be at least 1") }
    }

    func run() async throws {
        let logger = CLILogging.logger("ah.debug.echo")
        let policy = try tls.peerPolicy(explicit: serverID.map { [$0] } ?? [], flag: "--server-id")
        let configuration = QUICConfiguration(identity: tls.identity, peerPolicy: policy)
        let connection = try await dial(connect, configuration: configuration, logger: logger)
        let start = DispatchTime.now()
        let perStream = bytes.value
        let results = (0..<streams).map { index -> EventLoopFuture<Void> in
            let promise = connection.eventLoop.makePromise(of: Void.self)
            connection.openStreamWaitingForCredit { stream in
                stream.pipeline.addHandler(EchoClientStreamHandler(bytes: perStream, seed: index, result: promise))
            }.whenFailure { promise.fail($0) }
            return promise.futureResult
        }
        do {
            try await EventLoopFuture.andAllSucceed(results, on: connection.eventLoop).get()
        } catch {
            connection.close(applicationErrorCode: 1, reason: "echo failed")
            throw CLIError.failed("echo failed: \(error)")
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        connection.close(applicationErrorCode: 0, reason: "done")
        try? await connection.closeFuture.get()
        let total = Double(perStream * streams)
        let mibPerSecond = total / seconds / 1_048_576
        if json {
            printJSON(["streams": streams, "bytesPerStream": perStream, "seconds": seconds, "mibPerSecond": mibPerSecond])
        } else {
            print(String(format: "echoed %d stream(s) x %d bytes in %.3f s: %.1f MiB/s each way, all identical",
                         streams, perStream, seconds, mibPerSecond))
        }
    }
}

/// Connects or exits 3 with the reason (refused handshake, unreachable, timeout).
func dial(_ address: HostPort, configuration: QUICConfiguration, logger: Logger) async throws -> QUICConnection {
    do {
        return try await QUICClient.connect(host: address.host, port: address.port, configuration: configuration,
                                            group: MultiThreadedEventLoopGroup.singleton, logger: logger)
    } catch let error as QUICError {
        if case .credentials = error { throw CLIError.usage("\(error)") }
        throw CLIError.unreachable("cannot connect to \(address): \(error)")
    } catch {
        throw CLIError.unreachable("cannot connect to \(address): \(error)")
    }
}

func printJSON(_ object: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}
