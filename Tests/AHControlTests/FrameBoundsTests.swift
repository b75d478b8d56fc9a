import AHControl
import Foundation
import NIOCore
import NIOEmbedded
import XCTest

/// The control framing's bounds, through the decoder every control stream uses
/// (`ByteToMessageHandler(ControlFrameDecoder())`) on an EmbeddedChannel: an oversized length
/// is refused before anything is buffered, a stream that ends inside a frame is an error, a
/// frame of exactly the bound passes, and versions other than ours are recognised as such.
final class FrameBoundsTests: XCTestCase {
    private func decoderChannel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(ControlFrameDecoder()))
        return channel
    }

    private func framed(_ json: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(json.utf8.count))
        buffer.writeString(json)
        return buffer
    }

    /// A JSON object of exactly `size` bytes carrying version and type.
    private func paddedBody(size: Int, version: Int = 1, type: String = "heartbeat") -> String {
        let prefix = #"{"version":\#(version),"type":"\#(type)","pad":""#
        let suffix = #""}"#
        return prefix + String(repeating: "a", count: size - prefix.utf8.count - suffix.utf8.count) + suffix
    }

    func testOversizedLengthIsRefusedBeforeTheBodyArrives() throws {
        let channel = try decoderChannel()
        var header = ByteBuffer()
        header.writeInteger(UInt32(Frame.maxFrameSize + 1))
        // Only the 4-byte length: the decoder must refuse without waiting for (or holding) 64 KiB.
        XCTAssertThrowsError(try channel.writeInbound(header)) { error in
            XCTAssertEqual(error as? FrameError, .tooLarge(Frame.maxFrameSize + 1))
        }
        XCTAssertNil(try channel.readInbound(as: ControlFrame.self))
    }

    func testFrameOfExactlyTheBoundIsAccepted() throws {
        let channel = try decoderChannel()
        try channel.writeInbound(framed(paddedBody(size: Frame.maxFrameSize)))
        let decoded = try XCTUnwrap(try channel.readInbound(as: ControlFrame.self))
        XCTAssertEqual(decoded.header, MessageHeader(version: 1, type: "heartbeat"))
        XCTAssertEqual(decoded.body.count, Frame.maxFrameSize)
        XCTAssertNoThrow(try channel.finish())
    }

    func testEncodingRefusesAMessageOverTheBound() {
        struct Big: Encodable { var version = 1; var type = "x"; var pad = String(repeating: "b", count: Frame.maxFrameSize) }
        XCTAssertThrowsError(try Frame.encode(Big())) { error in
            guard case .tooLarge(let size) = error as? FrameError else { return XCTFail("\(error)") }
            XCTAssertGreaterThan(size, Frame.maxFrameSize)
        }
    }

    func testFrameSplitAcrossReadsIsReassembled() throws {
        let channel = try decoderChannel()
        var whole = framed(#"{"version":1,"type":"ping","id":7}"#)
        let first = whole.readSlice(length: 6)!
        try channel.writeInbound(first)
        XCTAssertNil(try channel.readInbound(as: ControlFrame.self), "half a frame is not a frame")
        try channel.writeInbound(whole)
        let decoded = try XCTUnwrap(try channel.readInbound(as: ControlFrame.self))
        XCTAssertEqual(try decoded.decode(Ping.self).id, 7)
    }

    func testStreamEndingInsideAFrameIsTruncated() throws {
        for cut in [2, 4, 10] {
            let channel = try decoderChannel()
            var partial = framed(#"{"version":1,"type":"ping","id":7}"#)
            partial.moveWriterIndex(to: cut)
            try channel.writeInbound(partial)
            XCTAssertThrowsError(try channel.finish(), "cut at \(cut)") { error in
                XCTAssertEqual(error as? FrameError, .truncated, "cut at \(cut)")
            }
        }
    }

    func testBodyThatIsNotAMessageIsMalformed() throws {
        let channel = try decoderChannel()
        XCTAssertThrowsError(try channel.writeInbound(framed(#"{"type":"ping"}"#))) { error in
            guard case .malformed = error as? FrameError else { return XCTFail("\(error)") }
        }
    }

    func testUnknownVersionIsRecognisedNotGuessed() throws {
        // Control stream: a version-2 hello decodes as `.other` with its header, for the
        // receiver to refuse by version rather than misread its fields.
        let message = try Frame.decodeBody(ExecutorControlMessage.self, Data(#"{"version":2,"type":"hello","name":"x"}"#.utf8))
        guard case .other(let header) = message else { return XCTFail("\(message)") }
        XCTAssertEqual(header, MessageHeader(version: 2, type: "hello"))
        // Single-purpose streams: the first frame must be the expected type at our version.
        var buffer = framed(#"{"version":2,"type":"open-tcp","port":22,"tunnelID":"t"}"#)
        XCTAssertThrowsError(try ControlFrame.next(OpenTCP.self, type: "open-tcp", from: &buffer)) { error in
            guard case .malformed(let text) = error as? FrameError else { return XCTFail("\(error)") }
            XCTAssertTrue(text.contains("version 2"), text)
        }
    }

    func testFactsUpdateDecodesAsFacts() throws {
        let hello = Hello(name: "n1", agentVersion: "1", os: "linux", osVersion: "x", arch: "x86_64", cpuCount: 2,
                          memoryBytes: 1, tags: [:], sshEnabled: true,
                          sshHostKeys: [SSHHostKey(algorithm: "ssh-ed25519", publicKey: "AAAA", fingerprint: "SHA256:x")],
                          allowedPorts: [], heartbeatIntervalMillis: 1000)
        var buffer = try Frame.encode(hello.asFactsUpdate)
        let body = try XCTUnwrap(try Frame.nextBody(from: &buffer))
        guard case .facts(let facts) = try Frame.decodeBody(ExecutorControlMessage.self, body) else { return XCTFail() }
        XCTAssertEqual(facts.sshHostKeys, hello.sshHostKeys)
        XCTAssertEqual(facts.type, "facts")
        guard case .hello = try Frame.decodeBody(ExecutorControlMessage.self, Data(try JSONEncoder().encode(hello))) else {
            return XCTFail("a plain hello stays a hello")
        }
    }

    func testResponderClosesOnOversizedRequestWithoutAnswering() throws {
        let channel = EmbeddedChannel()
        var errors: [Error] = []
        let responder = FrameResponder<Ping, Pong>(respond: { ping in channel.eventLoop.makeSucceededFuture(Pong(id: ping.id)) },
                                                   onError: { errors.append($0) })
        try channel.pipeline.syncOperations.addHandler(responder)
        var header = ByteBuffer()
        header.writeInteger(UInt32(Frame.maxFrameSize + 1))
        header.writeRepeatingByte(0x20, count: Frame.maxFrameSize + 1)
        try channel.writeInbound(header)
        XCTAssertFalse(channel.isActive, "closed")
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self), "no answer to an oversized request")
        XCTAssertEqual(errors.count, 1)
    }

    func testResponderAnswersOneRequest() throws {
        let channel = EmbeddedChannel()
        let responder = FrameResponder<Ping, Pong>(respond: { ping in channel.eventLoop.makeSucceededFuture(Pong(id: ping.id)) })
        try channel.pipeline.syncOperations.addHandler(responder)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(try Frame.encode(Ping(id: 42)))
        var out = try XCTUnwrap(try channel.readOutbound(as: ByteBuffer.self))
        XCTAssertEqual(try Frame.decode(Pong.self, from: &out)?.id, 42)
    }
}
