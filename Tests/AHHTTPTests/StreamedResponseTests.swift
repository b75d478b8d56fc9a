@testable import AHHTTPServer
import AHTestSupport
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import XCTest

/// Streamed responses (what server-sent events ride on) through a real listener, read by a
/// raw socket as the chunks are produced.
final class StreamedResponseTests: XCTestCase {
    private var server: HTTPAPIServer?

    override func tearDown() async throws {
        await server?.close()
        server = nil
    }

    private func start(_ route: @escaping @Sendable (HTTPAPIRequest) async -> HTTPAPIResponse) async throws -> Int {
        let started = try await HTTPAPIServer.start(host: "127.0.0.1", port: 0, responder: TestResponder(route: route))
        server = started
        return started.port
    }

    func testChunksArriveAsTheyAreProduced() async throws {
        let release = Signal()
        let port = try await start { _ in
            HTTPAPIResponse(headers: ["content-type": "text/event-stream"], stream: HTTPResponseStream { writer in
                try await writer.write("data: one\n\n")
                await release.wait()
                try await writer.write("data: two\n\n")
            })
        }
        let raw = try RawSocket(port: port)
        try raw.send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        let first = raw.read(until: "data: one", timeout: 5)
        XCTAssertTrue(first.found, "the first chunk must arrive while the producer still waits: \(first.text)")
        XCTAssertTrue(first.text.hasPrefix("HTTP/1.1 200"), first.text)
        XCTAssertTrue(first.text.lowercased().contains("transfer-encoding: chunked"), first.text)
        XCTAssertTrue(first.text.lowercased().contains("content-type: text/event-stream"), first.text)
        XCTAssertFalse(first.text.contains("two"))
        release.fire()
        let (rest, closed) = raw.readUntilClose(timeout: 5)
        XCTAssertTrue(rest.contains("data: two"), rest)
        XCTAssertTrue(rest.hasSuffix("0\r\n\r\n"), "the stream ends with the last chunk: \(rest)")
        XCTAssertTrue(closed, "the connection closes after a stream")
    }

    func testAsyncSequenceBody() async throws {
        let port = try await start { _ in
            let (chunks, continuation) = AsyncStream.makeStream(of: ByteBuffer.self)
            for word in ["alpha ", "beta ", "gamma"] { continuation.yield(ByteBuffer(string: word)) }
            continuation.finish()
            return HTTPAPIResponse(stream: HTTPResponseStream(chunks: chunks))
        }
        let raw = try RawSocket(port: port)
        try raw.send("GET /words HTTP/1.1\r\nHost: x\r\n\r\n")
        let (text, closed) = raw.readUntilClose(timeout: 5)
        XCTAssertTrue(closed)
        let body = text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
        // Chunked framing: size line, data, CRLF ...; the words in order.
        XCTAssertEqual(body, "6\r\nalpha \r\n5\r\nbeta \r\n5\r\ngamma\r\n0\r\n\r\n", text)
    }

    func testClientGoingAwayEndsTheProducer() async throws {
        let ended = Signal()
        let outcome = NIOLockedValueBox<String>("")
        let port = try await start { _ in
            HTTPAPIResponse(stream: HTTPResponseStream { writer in
                defer { ended.fire() }
                try await writer.write("tick\n")
                do {
                    // An event stream between events: only the client going away ends this.
                    try await Task.sleep(for: .seconds(3600))
                } catch {
                    outcome.withLockedValue { $0 = "\(type(of: error))" }
                    throw error
                }
            })
        }
        let raw = try RawSocket(port: port)
        try raw.send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertTrue(raw.read(until: "tick", timeout: 5).found)
        raw.close()
        let finished = await ended.wait(seconds: 10)
        XCTAssertTrue(finished, "the producer must be cancelled when the client closes")
        XCTAssertEqual(outcome.withLockedValue { $0 }, "CancellationError")
    }

    func testSlowReaderHoldsTheProducerBack() async throws {
        let chunk = 64 * 1024
        let written = ManagedAtomicCounter()
        let ended = Signal()
        let port = try await start { _ in
            HTTPAPIResponse(stream: HTTPResponseStream { writer in
                defer { ended.fire() }
                let buffer = ByteBuffer(repeating: UInt8(ascii: "x"), count: chunk)
                for _ in 0..<4096 {  // 256 MiB if nothing held it back
                    try await writer.write(buffer)
                    written.increment()
                }
            })
        }
        let raw = try RawSocket(port: port)
        try raw.send("GET /bulk HTTP/1.1\r\nHost: x\r\n\r\n")
        // The client reads nothing: the producer must stall once the socket buffers are full.
        let stalledAt = await written.waitUntilQuiet(for: 0.5, deadline: 20)
        XCTAssertLessThan(stalledAt, 512, "\(stalledAt) chunks of 64 KiB were accepted while the client read nothing")
        XCTAssertFalse(ended.fired)
        raw.close()
        let finished = await ended.wait(seconds: 10)
        XCTAssertTrue(finished, "a producer blocked in write ends when the client goes away")
    }
}

/// A counter the producer bumps and the test watches.
final class ManagedAtomicCounter: Sendable {
    private let value = NIOLockedValueBox(0)

    func increment() { value.withLockedValue { $0 += 1 } }
    var current: Int { value.withLockedValue { $0 } }

    /// Waits until the value stops changing for `quiet` seconds (or `deadline` passes) and
    /// returns it. Stalling is the absence of an event, so a quiet period is the only witness.
    func waitUntilQuiet(for quiet: Double, deadline: Double) async -> Int {
        let end = Date().addingTimeInterval(deadline)
        var last = current
        while Date() < end {
            try? await Task.sleep(for: .seconds(quiet))
            let now = current
            if now == last { return now }
            last = now
        }
        return current
    }
}
