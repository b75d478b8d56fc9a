@testable import AHHTTPServer
import AHAPI
import AHTestSupport
import Foundation
import NIOCore
import NIOEmbedded
import XCTest

/// CONNECT on the listener: target grammar (400s, audited), a CONNECT pipelined behind a
/// GET, and the bound on what an unauthenticated client can make the server hold.
final class ConnectHandlingTests: XCTestCase {
    private var server: HTTPAPIServer?
    private var echo: EchoServer?

    override func tearDown() async throws {
        await server?.close()
        await echo?.close()
    }

    private func start(_ ingress: TestIngress) async throws -> Int {
        let responder = TestResponder(tunnels: ingress, route: { _ in .problem(.notFound("nothing here")) })
        let started = try await HTTPAPIServer.start(host: "127.0.0.1", port: 0, responder: responder)
        server = started
        return started.port
    }

    private func connect(_ target: String, port: Int) throws -> String {
        let raw = try RawSocket(port: port)
        try raw.send("CONNECT \(target) HTTP/1.1\r\nHost: \(target)\r\n\r\n")
        return raw.readUntilClose(timeout: 5).text
    }

    func testIPv4LiteralIs400AndAudited() async throws {
        let ingress = TestIngress()
        let port = try await start(ingress)
        let text = try connect("127.0.0.1:22", port: port)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 400"), text)
        XCTAssertTrue(text.contains("'127.0.0.1' is an IP literal"), text)
        XCTAssertEqual(ingress.opened, [], "an IP literal never reaches the ingress")
        XCTAssertEqual(ingress.badRequests.map(\.givenName), ["127"])
        XCTAssertEqual(ingress.badRequests.first?.port, 22)
        XCTAssertEqual(ingress.badRequests.first?.detail.contains("IP literal"), true)
    }

    func testIPv6LiteralsAre400() async throws {
        let ingress = TestIngress()
        let port = try await start(ingress)
        for target in ["[::1]:22", "::1:22"] {
            let text = try connect(target, port: port)
            XCTAssertTrue(text.hasPrefix("HTTP/1.1 400"), "\(target): \(text)")
            XCTAssertTrue(text.contains("IP literal"), "\(target): \(text)")
        }
        XCTAssertEqual(ingress.opened, [])
        XCTAssertEqual(ingress.badRequests.count, 2)
    }

    func testOverlongNameIsRefusedNotCut() async throws {
        let ingress = TestIngress()
        let port = try await start(ingress)
        let name = String(repeating: "a", count: 70)
        let text = try connect("\(name).example.org:22", port: port)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 400"), text)
        XCTAssertTrue(text.contains("70 bytes long (at most 63)"), text)
        XCTAssertEqual(ingress.opened, [])
        XCTAssertEqual(ingress.badRequests.first?.givenName.count, 64, "the audited name is bounded")
    }

    func testBadNamesAre400WithTheReason() async throws {
        let ingress = TestIngress()
        let port = try await start(ingress)
        for (target, reason) in [("-web:22", "must start with a letter or digit"), ("we%b:22", "contains '%'"),
                                 (".prod:22", "executor name is empty"), ("web:0", "is not 1-65535"),
                                 ("web", "must be NAME:PORT")] {
            let text = try connect(target, port: port)
            XCTAssertTrue(text.hasPrefix("HTTP/1.1 400"), "\(target): \(text)")
            XCTAssertTrue(text.contains(reason), "\(target): \(text)")
        }
        XCTAssertEqual(ingress.opened, [])
        XCTAssertEqual(ingress.badRequests.count, 5, "every 400 is handed to the audit")
    }

    func testDomainSuffixReachesTheExecutor() async throws {
        let ingress = TestIngress()
        let port = try await start(ingress)
        let text = try connect("web.prod:22", port: port)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 404"), text)
        XCTAssertEqual(ingress.opened, [ConnectTarget(executor: "web", port: 22)])
        XCTAssertEqual(ingress.badRequests.count, 0)
    }

    /// GET and CONNECT in one write: the GET is answered, then the CONNECT becomes a tunnel,
    /// and bytes sent right behind the CONNECT head reach the far side.
    func testConnectPipelinedBehindGetIsServed() async throws {
        let echo = try await EchoServer()
        self.echo = echo
        let ingress = TestIngress(echoPort: echo.port)
        let port = try await start(ingress)
        let raw = try RawSocket(port: port)
        try raw.send("GET /api/v1/readyz HTTP/1.1\r\nHost: x\r\n\r\n"
                     + "CONNECT node1:22 HTTP/1.1\r\nHost: node1:22\r\n\r\nSSH-2.0-early\r\n")
        let answer = raw.read(until: "SSH-2.0-early\r\n", timeout: 5)
        XCTAssertTrue(answer.found, answer.text)
        let statuses = answer.text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.components(separatedBy: "\r\n")[0] }
        XCTAssertEqual(statuses, ["200 OK", "200 Connection Established"], answer.text)
        try raw.send("after the join\n")
        XCTAssertTrue(raw.read(until: "after the join\n", timeout: 5).found, "the tunnel carries bytes both ways")
        XCTAssertEqual(ingress.opened, [ConnectTarget(executor: "node1", port: 22)])
    }

    /// An unauthenticated client floods after the CONNECT head while the ingress decides: the
    /// server stops reading, so the client's sends stall after what kernel buffers take.
    func testBytesBeforeTheTunnelAreBounded() async throws {
        let gate = Signal()
        let ingress = TestIngress(gate: gate)
        let port = try await start(ingress)
        let flood = try FloodSocket(port: port)
        try flood.sendAll("CONNECT node1:22 HTTP/1.1\r\nHost: node1:22\r\n\r\n")
        let pushed = flood.pushUntilStalled(limit: 256 << 20, quiet: 0.5)
        // Socket buffers on loopback take a few MiB; a server that kept reading takes it all.
        XCTAssertLessThan(pushed, 48 << 20, "the client pushed \(pushed >> 20) MiB past a CONNECT head without a tunnel")
        gate.fire()
        let answer = flood.readUntilClose(timeout: 10)
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 404"), "the refusal still arrives: \(answer.prefix(200))")
    }

    func testPreTunnelLimitDropsBeyondItsBound() throws {
        let channel = EmbeddedChannel()
        let limit = PreTunnelByteLimit(limit: 1000)
        try channel.pipeline.syncOperations.addHandler(limit)
        try channel.writeInbound(ByteBuffer(repeating: 1, count: 5000))
        XCTAssertEqual(try channel.readInbound(as: ByteBuffer.self)?.readableBytes, 5000, "unarmed: everything passes")
        limit.arm()
        try channel.writeInbound(ByteBuffer(repeating: 2, count: 600))
        try channel.writeInbound(ByteBuffer(repeating: 3, count: 600))
        try channel.writeInbound(ByteBuffer(repeating: 4, count: 600))
        XCTAssertEqual(try channel.readInbound(as: ByteBuffer.self)?.readableBytes, 600)
        XCTAssertEqual(try channel.readInbound(as: ByteBuffer.self)?.readableBytes, 400)
        XCTAssertNil(try channel.readInbound(as: ByteBuffer.self))
        XCTAssertTrue(limit.overflowed)
        _ = try channel.finish()
    }
}
