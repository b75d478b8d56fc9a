import AHControl
@testable import AHExecutor
import Logging
import NIOCore
import NIOEmbedded
import XCTest

/// The executor's end of the control stream on an EmbeddedChannel: Hello first, Ack
/// completes the handshake, Ping is answered, a Goodbye is noted, another protocol version
/// closes the stream, and a facts update goes out as `facts`.
final class ControlHandlerTests: XCTestCase {
    let hello = Hello(name: "node1", agentVersion: "t", os: "linux", osVersion: "x", arch: "x86_64", cpuCount: 1,
                      memoryBytes: 1, tags: [:], sshEnabled: true, sshHostKeys: [], allowedPorts: [],
                      heartbeatIntervalMillis: 1000)

    private func start() throws -> (EmbeddedChannel, EventLoopPromise<Ack>, EventLoopPromise<Goodbye>) {
        let channel = EmbeddedChannel()
        let ack = channel.eventLoop.makePromise(of: Ack.self)
        let goodbye = channel.eventLoop.makePromise(of: Goodbye.self)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let handler = ExecutorControlHandler(hello: hello, interval: .seconds(1), openTunnels: { 3 },
                                             acknowledged: ack, farewell: goodbye, logger: logger)
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(ControlFrameDecoder()))
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, ack, goodbye)
    }

    private func sent(_ channel: EmbeddedChannel) throws -> ControlFrame? {
        guard var out = try channel.readOutbound(as: ByteBuffer.self) else { return nil }
        return try ControlFrame(body: XCTUnwrap(Frame.nextBody(from: &out)))
    }

    func testHelloAckHeartbeatPingGoodbye() throws {
        let (channel, ack, goodbye) = try start()
        XCTAssertEqual(try sent(channel)?.decode(Hello.self), hello)
        try channel.writeInbound(Frame.encode(Ack(now: Date(), configHash: "h")))
        XCTAssertEqual(try ack.futureResult.wait().configHash, "h")
        // Heartbeats on the (embedded) clock: one per interval, with the open tunnel count.
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        let beat = try XCTUnwrap(try sent(channel)).decode(Heartbeat.self)
        XCTAssertEqual(beat.sequence, 1)
        XCTAssertEqual(beat.openTunnels, 3)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        XCTAssertEqual(try XCTUnwrap(try sent(channel)).decode(Heartbeat.self).sequence, 2)
        try channel.writeInbound(Frame.encode(Ping(id: 9)))
        XCTAssertEqual(try XCTUnwrap(try sent(channel)).decode(Pong.self).id, 9)
        try channel.writeInbound(Frame.encode(Goodbye(reason: "restart", graceMillis: 5)))
        XCTAssertEqual(try goodbye.futureResult.wait().reason, "restart")
        XCTAssertTrue(channel.isActive)
    }

    func testOtherProtocolVersionClosesTheStream() throws {
        let (channel, ack, _) = try start()
        _ = try sent(channel)
        var frame = ByteBuffer()
        let json = #"{"version":2,"type":"ack","now":"2026-01-01T00:00:00Z","configHash":""}"#
        frame.writeInteger(UInt32(json.utf8.count))
        frame.writeString(json)
        try channel.writeInbound(frame)
        XCTAssertFalse(channel.isActive)
        XCTAssertThrowsError(try ack.futureResult.wait(), "no Ack from a peer speaking another version")
    }

    func testFactsUpdateGoesOutAsFacts() throws {
        let (channel, _, _) = try start()
        _ = try sent(channel)
        let handler = try channel.pipeline.syncOperations.handler(type: ExecutorControlHandler.self)
        var update = hello
        update.sshHostKeys = [SSHHostKey(algorithm: "ssh-ed25519", publicKey: "AAAA", fingerprint: "SHA256:x")]
        handler.sendMessage(update.asFactsUpdate)
        let frame = try XCTUnwrap(try sent(channel))
        XCTAssertEqual(frame.header.type, "facts")
        XCTAssertEqual(try frame.decode(Hello.self).sshHostKeys, update.sshHostKeys)
    }
}
