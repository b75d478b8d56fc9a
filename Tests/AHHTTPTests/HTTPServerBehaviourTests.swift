@testable import AHHTTPServer
import AHTestSupport
import Foundation
import XCTest

/// Routing, framing and limits of the HTTP listener, with bytes chosen by the test.
final class HTTPServerBehaviourTests: XCTestCase {
    private var fixture: HTTPTestFixture!

    override func tearDown() async throws {
        await fixture?.shutdown()
        fixture = nil
    }

    private func start(_ configure: (inout HTTPServerConfiguration) -> Void = { _ in },
                       readiness: @escaping @Sendable () async -> Bool = { true }) async throws {
        var configuration = HTTPServerConfiguration()
        configure(&configuration)
        fixture = try await HTTPTestFixture(configuration: configuration, readiness: readiness)
    }

    func testReadyzNeedsNoToken() async throws {
        try await start()
        let response = try await fixture.client.get("/api/v1/readyz")
        XCTAssertEqual(response.status.code, 200)
        XCTAssertEqual(String(decoding: response.body, as: UTF8.self), #"{"status":"ready"}"#)
    }

    func testReadyzIs503WhenNotReady() async throws {
        try await start(readiness: { false })
        let response = try await fixture.client.get("/api/v1/readyz")
        XCTAssertEqual(response.status.code, 503)
        try assertProblem(response.body, type: "urn:ah:problem:not-ready", status: 503)
    }

    func testUnknownPathIs404Problem() async throws {
        try await start()
        let response = try await fixture.client.get("/api/v1/nothing-here", bearerToken: try await fixture.token())
        XCTAssertEqual(response.status.code, 404)
        XCTAssertEqual(response.headers.first(name: "content-type"), "application/problem+json")
        try assertProblem(response.body, type: "urn:ah:problem:not-found", status: 404)
    }

    func testWrongMethodIs405WithAllow() async throws {
        try await start()
        let raw = try RawSocket(port: fixture.port)
        try raw.send("DELETE /api/v1/executors HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let text = raw.readUntilClose(timeout: 5).text
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 405"), text)
        XCTAssertTrue(text.lowercased().contains("allow: get"), text)
        XCTAssertTrue(text.contains("application/problem+json"), text)
    }

    func testConnectIs405AndCloses() async throws {
        try await start()
        let raw = try RawSocket(port: fixture.port)
        try raw.send("CONNECT node1:22 HTTP/1.1\r\nHost: node1:22\r\n\r\nSSH-2.0-test\r\n")
        let (text, closed) = raw.readUntilClose(timeout: 5)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 405"), text)
        XCTAssertTrue(text.contains("urn:ah:problem:method-not-allowed"), text)
        XCTAssertTrue(closed)
    }

    func testMalformedRequestIs400AndCloses() async throws {
        try await start()
        let raw = try RawSocket(port: fixture.port)
        try raw.send("GET /api/v1/readyz HTTP/1.1\r\nBad Header Name: x\r\n\r\n")
        let (text, closed) = raw.readUntilClose(timeout: 5)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 400"), text)
        XCTAssertTrue(text.contains("urn:ah:problem:bad-request"), text)
        XCTAssertTrue(closed)
    }

    func testAbsoluteFormTargetIs400() async throws {
        try await start()
        let raw = try RawSocket(port: fixture.port)
        try raw.send("GET http://example.com/api/v1/readyz HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
        let text = raw.readUntilClose(timeout: 5).text
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 400"), text)
    }

    func testOversizedHeadersAre431AndClose() async throws {
        try await start()
        let raw = try RawSocket(port: fixture.port)
        let filler = String(repeating: "a", count: 9 * 1024)
        try raw.send("GET /api/v1/readyz HTTP/1.1\r\nHost: x\r\nX-Filler: \(filler)\r\n\r\n")
        let (text, closed) = raw.readUntilClose(timeout: 5)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 431"), text)
        XCTAssertTrue(text.contains("urn:ah:problem:request-header-fields-too-large"), text)
        XCTAssertTrue(closed)
    }

    func testOversizedRequestLineIs431() async throws {
        try await start()
        let raw = try RawSocket(port: fixture.port)
        try raw.send("GET /api/v1/readyz?\(String(repeating: "q", count: 9 * 1024)) HTTP/1.1\r\nHost: x\r\n\r\n")
        let (text, closed) = raw.readUntilClose(timeout: 5)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 431"), text)
        XCTAssertTrue(closed)
    }

    func testTooManyHeaderFieldsAre431() async throws {
        try await start()
        let raw = try RawSocket(port: fixture.port)
        let fields = (0..<200).map { "x\($0): y\r\n" }.joined()
        try raw.send("GET /api/v1/readyz HTTP/1.1\r\nHost: x\r\n\(fields)\r\n")
        XCTAssertTrue(raw.readUntilClose(timeout: 5).text.hasPrefix("HTTP/1.1 431"))
    }

    func testHeadsJustUnderTheLimitAreServed() async throws {
        try await start()
        let raw = try RawSocket(port: fixture.port)
        let filler = String(repeating: "a", count: 7 * 1024)
        try raw.send("GET /api/v1/readyz HTTP/1.1\r\nHost: x\r\nX-Filler: \(filler)\r\nConnection: close\r\n\r\n")
        XCTAssertTrue(raw.readUntilClose(timeout: 5).text.hasPrefix("HTTP/1.1 200"))
    }

    func testOversizedBodyIs413() async throws {
        try await start()
        let raw = try RawSocket(port: fixture.port)
        let body = String(repeating: "b", count: 70 * 1024)
        // Chunked, so the limit is enforced while reading rather than from Content-Length.
        try raw.send("POST /api/v1/executors HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + String(body.utf8.count, radix: 16) + "\r\n" + body + "\r\n0\r\n\r\n")
        let (text, closed) = raw.readUntilClose(timeout: 5)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 413"), text)
        XCTAssertTrue(closed)
        let declared = try RawSocket(port: fixture.port)
        try declared.send("POST /api/v1/executors HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        XCTAssertTrue(declared.readUntilClose(timeout: 5).text.hasPrefix("HTTP/1.1 413"))
    }

    func testSlowClientIsDisconnectedAfterTheTimeout() async throws {
        try await start { $0.headerReadTimeout = .milliseconds(400) }
        let raw = try RawSocket(port: fixture.port)
        try raw.send("GET /api/v1/rea")
        let started = Date()
        let (text, closed) = raw.readUntilClose(timeout: 10)
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertTrue(closed, "still open after 10 s")
        XCTAssertEqual(text, "", "nothing is answered to half a request line")
        XCTAssertGreaterThanOrEqual(elapsed, 0.3)
        XCTAssertLessThan(elapsed, 5)
    }

    func testIdleConnectionIsClosedAfterTheTimeout() async throws {
        try await start { $0.headerReadTimeout = .milliseconds(300) }
        let raw = try RawSocket(port: fixture.port)
        let (_, closed) = raw.readUntilClose(timeout: 10)
        XCTAssertTrue(closed)
    }

    func testKeepAliveServesSeveralRequestsInOrder() async throws {
        try await start()
        let token = try await fixture.token()
        let raw = try RawSocket(port: fixture.port)
        try raw.send("GET /api/v1/readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        let first = try XCTUnwrap(raw.readResponse(timeout: 5))
        XCTAssertTrue(first.hasPrefix("HTTP/1.1 200"), first)
        XCTAssertTrue(first.lowercased().contains("connection: keep-alive"), first)
        // Two pipelined requests: answered in the order sent.
        try raw.send("GET /api/v1/nope HTTP/1.1\r\nHost: x\r\n\r\n"
                     + "GET /api/v1/executors HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\nConnection: close\r\n\r\n")
        let rest = raw.readUntilClose(timeout: 5)
        XCTAssertTrue(rest.closed)
        // Bodies do not end in CRLF, so a status line may follow a body directly.
        let statuses = rest.text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.components(separatedBy: "\r\n")[0] }
        XCTAssertEqual(statuses, ["404 Not Found", "200 OK"], rest.text)
    }

    func testCloseEndsOpenConnections() async throws {
        try await start()
        let raw = try RawSocket(port: fixture.port)
        try raw.send("GET /api/v1/readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertNotNil(raw.readResponse(timeout: 5))
        await fixture.server.close()
        XCTAssertTrue(raw.readUntilClose(timeout: 5).closed)
        XCTAssertThrowsError(try RawSocket(port: fixture.port), "the listener is closed")
    }
}
