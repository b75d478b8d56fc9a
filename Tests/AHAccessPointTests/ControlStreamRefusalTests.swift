import AHControl
import AHQUIC
import AHSPIFFE
import AHTestSupport
import Foundation
import NIOCore
import NIOPosix
import XCTest

/// A real `ah serve` and a raw QUIC client holding a real enrolled executor identity, which
/// writes control frames by hand: every malformed or out-of-order message closes the
/// connection with the documented code (docs/protocol.md), and a well-formed exchange works.
final class ControlStreamRefusalTests: XCTestCase {
    var directory: TemporaryDirectory!
    var serve: ServeProcess!

    override func setUp() async throws {
        directory = try TemporaryDirectory(prefix: "ah-control-refusal")
        serve = try await ServeProcess.start(dataDir: directory.file("data").path)
        let token = try await tokenCreate(serve)
        let enrolled = try await ah(["agent", "enroll", "--enroll-only", "--remote-server", serve.remote, "--state-dir",
                                     directory.file("agent").path, "--name", "node1", "--token", token, "--ca-pin", serve.pin])
        XCTAssertEqual(enrolled.exit, .exited(0), enrolled.transcript)
    }

    override func tearDown() async throws {
        await serve?.stop()
    }

    func testHelloThenHeartbeatIsAcknowledgedAndRecorded() async throws {
        let (connection, frames) = try await openControlStream(first: [try Frame.encode(hello())])
        let ack = try await frames.next(Ack.self)
        XCTAssertFalse(ack.configHash.isEmpty)
        try await frames.send(Frame.encode(Heartbeat(sequence: 1, load: 0.5, memoryUsedBytes: 1 << 20, uptimeSeconds: 7, openTunnels: 0)))
        let listed = try await waitForHeartbeat(uptime: 7)
        XCTAssertEqual(listed, 7, "the heartbeat did not reach the registry")
        connection.close()
    }

    func testHeartbeatMissingFieldsClosesWithProtocolViolation() async throws {
        let (connection, frames) = try await openControlStream(first: [try Frame.encode(hello())])
        _ = try await frames.next(Ack.self)
        try await frames.send(rawFrame(#"{"version":1,"type":"heartbeat","sequence":2}"#))
        let info = try await closeInfo(connection)
        XCTAssertEqual(info.code, ConnectionCloseCode.protocolViolation)
        XCTAssertTrue(info.reason.contains("malformed control message"), info.reason)
    }

    func testHelloNamingAnotherExecutorClosesWithProtocolViolation() async throws {
        var early = hello()
        early.name = "someone-else"
        let (connection, _) = try await openControlStream(first: [try Frame.encode(early)])
        let info = try await closeInfo(connection)
        XCTAssertEqual(info.code, ConnectionCloseCode.protocolViolation)
        XCTAssertTrue(info.reason.contains("someone-else"), info.reason)
    }

    func testOtherProtocolVersionClosesWithUnsupportedVersion() async throws {
        let (connection, _) = try await openControlStream(first: [rawFrame(#"{"version":2,"type":"hello","future":true}"#)])
        let info = try await closeInfo(connection)
        XCTAssertEqual(info.code, ConnectionCloseCode.unsupportedVersion)
        XCTAssertTrue(info.reason.contains("version 2"), info.reason)
    }

    func testSecondHelloClosesWithProtocolViolation() async throws {
        let (connection, frames) = try await openControlStream(first: [try Frame.encode(hello())])
        _ = try await frames.next(Ack.self)
        try await frames.send(Frame.encode(hello()))
        let info = try await closeInfo(connection)
        XCTAssertEqual(info.code, ConnectionCloseCode.protocolViolation)
        XCTAssertTrue(info.reason.contains("second hello"), info.reason)
    }

    // MARK: - Helpers

    private func hello() -> Hello {
        Hello(name: "node1", agentVersion: "test", os: "Linux", osVersion: "test", arch: "x86_64", cpuCount: 2,
              memoryBytes: 1 << 30, tags: [:], sshEnabled: false, sshHostKeys: [], allowedPorts: [],
              heartbeatIntervalMillis: 5000)
    }

    private func rawFrame(_ json: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(json.utf8.count))
        buffer.writeString(json)
        return buffer
    }

    private func openControlStream(first: [ByteBuffer]) async throws -> (QUICConnection, FrameChannel) {
        let agent = directory.file("agent").path
        var configuration = QUICConfiguration(
            identity: TLSIdentity(certFile: agent + "/cert.pem", keyFile: agent + "/key.pem", caFile: agent + "/ca.pem"),
            peerPolicy: .exact(try SPIFFEID(parsing: "spiffe://example.org/ah/serve")))
        configuration.alpn = "ah/1"
        let connection = try await QUICClient.connect(host: "127.0.0.1", port: serve.quicPort, configuration: configuration,
                                                      group: MultiThreadedEventLoopGroup.singleton)
        let frames = FrameChannel(eventLoop: connection.eventLoop)
        let stream = try await connection.openStream { stream in
            stream.eventLoop.makeCompletedFuture { try stream.pipeline.syncOperations.addHandler(frames.collector) }
        }.get()
        frames.stream = stream
        for buffer in first { try await frames.send(buffer) }
        return (connection, frames)
    }

    private func closeInfo(_ connection: QUICConnection) async throws -> CloseInfo {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await connection.closeFuture.get() }
            group.addTask {
                try await Task.sleep(for: .seconds(10))
                throw CancellationError()
            }
            try await group.next()
            group.cancelAll()
        }
        guard case .closedByPeer(let info)? = connection.closeReason else {
            XCTFail("expected the access point to close, got \(String(describing: connection.closeReason))")
            return CloseInfo(kind: .application, code: .max, reason: "")
        }
        XCTAssertEqual(info.kind, .application)
        return info
    }

    /// The uptime of node1's last heartbeat as `ah executors list --json` shows it, once it is `expected`.
    private func waitForHeartbeat(uptime expected: Double) async throws -> Double? {
        for _ in 0..<50 {
            let node = try await executorsJSON(serve).first { $0["name"] as? String == "node1" }
            if let heartbeat = node?["heartbeat"] as? [String: Any], let uptime = heartbeat["uptimeSeconds"] as? Double,
               uptime == expected {
                return uptime
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }
}

/// Sends frames on a stream and hands back the frames that arrive, in order.
final class FrameChannel: @unchecked Sendable {
    let eventLoop: EventLoop
    var stream: Channel?
    let collector: Collector

    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
        self.collector = Collector()
    }

    func send(_ buffer: ByteBuffer) async throws {
        try await stream!.writeAndFlush(buffer).get()
    }

    func next<T: Decodable>(_ type: T.Type) async throws -> T {
        for _ in 0..<100 {
            let body = try await eventLoop.submit { self.collector.takeFrame() }.get()
            if let body { return try Frame.decodeBody(type, body) }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw FrameError.truncated
    }

    final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        private var buffer = ByteBuffer()

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var incoming = unwrapInboundIn(data)
            buffer.writeBuffer(&incoming)
        }

        func takeFrame() -> Data? {
            try? Frame.nextBody(from: &buffer)
        }
    }
}
