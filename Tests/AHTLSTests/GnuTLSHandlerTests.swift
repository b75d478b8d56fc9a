// GnuTLSHandler against itself over real sockets: bulk data, half-close, records split at
// any boundary, a handler added to a live channel, a chain with an intermediate, and a
// client that does not speak TLS at all.

import AHTLS
import AHTestSupport
import NIOCore
import NIOPosix
import XCTest

final class GnuTLSHandlerTests: TLSTestCase {
    private func serverContext() throws -> TLSServerContext {
        try TLSServerContext(certificateChainFile: pki.serverCertPath, privateKeyFile: pki.serverKeyPath)
    }

    private func clientContext() throws -> TLSClientContext {
        try TLSClientContext(caFile: pki.caPath)
    }

    /// Echo server ⇄ client, `total` bytes in odd-sized chunks; both directions hashed.
    private func echo(total: Int, deadline: Int64,
                      serverFront: @escaping @Sendable () -> [ChannelHandler] = { [] },
                      clientFront: @escaping @Sendable () -> [ChannelHandler] = { [] },
                      serverApp: @escaping @Sendable () -> ChannelHandler = { EchoHandler() }) async throws -> HashingSender.Outcome {
        let server = try serverContext()
        let client = try clientContext()
        let port = try await harness.startServer { _ in
            serverFront() + [GnuTLSHandler.server(context: server, alpn: ["h2", "http/1.1"]), serverApp()]
        }
        let done = harness.makePromise(HashingSender.Outcome.self, deadline: deadline, "echo of \(total) bytes")
        _ = try await harness.connect(port: port) { _ in
            clientFront() + [GnuTLSHandler.client(context: client, serverName: "localhost", alpn: ["http/1.1"]),
                             HashingSender(total: total, done: done)]
        }
        return try await done.futureResult.get()
    }

    func testEcho32MiBInOddSizedChunks() async throws {
        let start = ContinuousClock.now
        let outcome = try await echo(total: 32 << 20, deadline: 600)
        XCTAssertEqual(outcome.sentDigest, outcome.receivedDigest)
        XCTAssertEqual(outcome.handshake, TLSHandshakeCompleted(alpn: "http/1.1", version: "TLS1.3"))
        print("32 MiB echoed through GnuTLS in \(ContinuousClock.now - start)")
    }

    func testRecordsSplitIntoSingleBytes() async throws {
        // Every ciphertext byte arrives in its own channelRead, on both sides.
        let outcome = try await echo(total: 256 << 10, deadline: 300,
                                     serverFront: { [Rechunker { 1 }] }, clientFront: { [Rechunker { 1 }] })
        XCTAssertEqual(outcome.sentDigest, outcome.receivedDigest)
        XCTAssertNotNil(outcome.handshake)
    }

    func testRecordsSplitAtRandomBoundaries() async throws {
        // Pieces from 1 byte to several records long, so reads both split and batch records.
        let outcome = try await echo(total: 8 << 20, deadline: 300,
                                     serverFront: { [Rechunker { Int.random(in: 1...50_000) }] },
                                     clientFront: { [Rechunker { Int.random(in: 1...50_000) }] })
        XCTAssertEqual(outcome.sentDigest, outcome.receivedDigest)
    }

    func testKeyUpdatesDuringBulkTransfer() async throws {
        // The server rekeys every 2 MiB and asks the client to follow: 4 updates each way.
        // (GnuTLS refuses peers that send more than a few KeyUpdates per second, so a test
        // that rekeys every few hundred KiB at loopback speed is closed, by design.)
        let outcome = try await echo(total: 8 << 20, deadline: 300,
                                     serverApp: { EchoHandler(rekeyEvery: 2 << 20) })
        XCTAssertEqual(outcome.sentDigest, outcome.receivedDigest)
    }

    func testKeyUpdateBatchedWithDataAndCloseNotify() async throws {
        // KeyUpdate, data and close_notify reach the client's TLS handler in one read. GnuTLS
        // reports GNUTLS_E_AGAIN after digesting the KeyUpdate although the data is already
        // buffered; the handler must carry on rather than wait for more bytes.
        let server = try serverContext()
        let client = try clientContext()
        let reply = ByteBuffer(string: String(repeating: "after the key update\n", count: 100))
        let port = try await harness.startServer { _ in
            [GnuTLSHandler.server(context: server), KeyUpdateThenReply(reply: reply)]
        }
        let collected = harness.makePromise(ByteBuffer.self, "reply after the key update")
        _ = try await harness.connect(port: port) { _ in
            let hold = HoldUntilClose()
            return [hold, GnuTLSHandler.client(context: client, serverName: "localhost"), HoldArmer(hold),
                    Collector(request: ByteBuffer(string: "go"), done: collected)]
        }
        let answer = try await collected.futureResult.get()
        XCTAssertEqual(answer, reply)
    }

    func testHalfCloseThenReply() async throws {
        let server = try serverContext()
        let client = try clientContext()
        var reply = ByteBuffer()
        for i in 0..<(300 * 1024 / 8) {
            reply.writeInteger(UInt64(i))
        }
        let request = ByteBuffer(repeating: 0x61, count: 100_000)
        let receivedAtEnd = harness.makePromise(Int.self, "server to see the end of the request")
        let port = try await harness.startServer(allowHalfClosure: true) { [reply] _ in
            [GnuTLSHandler.server(context: server), ReplyAtEndOfInput(reply: reply, receivedAtEnd: receivedAtEnd)]
        }
        let outputClosed = harness.makePromise(Void.self, "client close(mode: .output)")
        let collected = harness.makePromise(ByteBuffer.self, "client to receive the reply and close")
        // The request and the half-close are issued in channelActive, before the handshake.
        _ = try await harness.connect(port: port) { _ in
            [GnuTLSHandler.client(context: client, serverName: "localhost"),
             Collector(request: request, halfCloseAfterRequest: true, outputClosed: outputClosed, done: collected)]
        }
        let received = try await receivedAtEnd.futureResult.get()
        XCTAssertEqual(received, request.readableBytes)
        try await outputClosed.futureResult.get()
        let answer = try await collected.futureResult.get()
        XCTAssertEqual(answer.readableBytes, reply.readableBytes)
        XCTAssertEqual(answer, reply)
    }

    func testEOFWithoutCloseNotifyEndsInput() async throws {
        // The client stops after its request without close_notify: the server sees
        // inputClosed after all the data (not an error), and can still answer.
        let server = try serverContext()
        let client = try clientContext()
        let receivedAtEnd = harness.makePromise(Int.self, "server to see the end of input")
        let port = try await harness.startServer(allowHalfClosure: true) { _ in
            [GnuTLSHandler.server(context: server),
             ReplyAtEndOfInput(reply: ByteBuffer(string: "bye"), receivedAtEnd: receivedAtEnd)]
        }
        let message = ByteBuffer(repeating: 0x42, count: 50_000)
        let closed = harness.makePromise(ByteBuffer.self, "client to be closed")
        _ = try await harness.connect(port: port) { _ in
            let tls = GnuTLSHandler.client(context: client, serverName: "localhost")
            return [tls, SendThenDropTLS(tls: tls, message: message), Collector(done: closed)]
        }
        let received = try await receivedAtEnd.futureResult.get()
        XCTAssertEqual(received, message.readableBytes)
        let ciphertext = try await closed.futureResult.get()
        XCTAssertGreaterThan(ciphertext.readableBytes, 3)  // the encrypted "bye" (+ close_notify)
    }

    func testHandshakeStartsWhenAddedToAnActiveChannel() async throws {
        let server = try serverContext()
        let client = try clientContext()
        let port = try await harness.startServer { _ in [GnuTLSHandler.server(context: server), EchoHandler()] }
        let channel = try await harness.connect(port: port) { _ in [] }
        let handshake = harness.makePromise(TLSHandshakeCompleted.self, "handshake")
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandlers([
                GnuTLSHandler.client(context: client, serverName: "localhost"), HandshakeWatcher(done: handshake),
            ])
        }.get()
        let info = try await handshake.futureResult.get()
        XCTAssertEqual(info.version, "TLS1.3")
        XCTAssertNil(info.alpn)
    }

    func testChainWithIntermediate() async throws {
        let server = try TLSServerContext(certificateChainFile: pki.chainPath, privateKeyFile: pki.chainKeyPath)
        let client = try clientContext()  // trusts the root only
        let port = try await harness.startServer { _ in [GnuTLSHandler.server(context: server), EchoHandler()] }
        let handshake = harness.makePromise(TLSHandshakeCompleted.self, "handshake")
        _ = try await harness.connect(port: port) { _ in
            [GnuTLSHandler.client(context: client, serverName: "localhost"), HandshakeWatcher(done: handshake)]
        }
        _ = try await handshake.futureResult.get()
    }

    func testPlaintextClientIsDisconnected() async throws {
        let server = try serverContext()
        let client = try clientContext()
        let serverSide = harness.makePromise(TLSHandshakeCompleted.self, "server handshake result")
        let port = try await harness.startServer { _ in
            [GnuTLSHandler.server(context: server), HandshakeWatcher(done: serverSide)]
        }
        let closed = harness.makePromise(ByteBuffer.self, "plaintext client to be disconnected")
        _ = try await harness.connect(port: port) { _ in
            [Collector(request: ByteBuffer(string: "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"), done: closed)]
        }
        _ = try await closed.futureResult.get()
        do {
            _ = try await serverSide.futureResult.get()
            XCTFail("a plaintext request completed a TLS handshake")
        } catch let error as TLSError {
            guard case .handshakeFailed = error else { return XCTFail("unexpected error: \(error)") }
            print("plaintext client refused: \(error)")
        }

        // The server is unharmed: a TLS client still gets through.
        let handshake = harness.makePromise(TLSHandshakeCompleted.self, "handshake after the plaintext client")
        _ = try await harness.connect(port: port) { _ in
            [GnuTLSHandler.client(context: client, serverName: "localhost"), HandshakeWatcher(done: handshake)]
        }
        _ = try await handshake.futureResult.get()
    }
}
