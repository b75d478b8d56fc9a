import AHQUIC
import Crypto
import NIOCore
import Foundation
import XCTest

/// A receiver that stops reading must stop the sender through flow control, with bounded
/// buffers on both sides, and lose nothing when it resumes.
final class BackpressureTests: XCTestCase {
    var fixture: QUICFixture!

    override func setUpWithError() throws { fixture = try QUICFixture() }
    override func tearDown() { fixture.shutdown() }

    func testStalledReaderStopsSenderWithBoundedBuffersAndLosesNothing() async throws {
        let size = 48 * 1024 * 1024
        let streamWindow: UInt64 = 256 * 1024
        var serverConfiguration = fixture.serverConfiguration()
        serverConfiguration.streamWriteBufferHigh = 512 * 1024
        serverConfiguration.streamWriteBufferLow = 128 * 1024
        var clientConfiguration = fixture.clientConfiguration()
        clientConfiguration.initialStreamWindow = streamWindow
        clientConfiguration.maxStreamWindow = streamWindow * 2
        clientConfiguration.initialConnectionWindow = streamWindow * 4
        clientConfiguration.maxConnectionWindow = streamWindow * 8

        let counter = ManagedCounter()
        let serverStream = NIOLockedValueBoxHolder<QUICStreamChannel>()
        let server = try await fixture.startServer(serverConfiguration) { stream in
            serverStream.set(stream)
            return stream.addLoopBoundHandler(PatternWriter(count: size, seed: 0, start: .whenPeerFinishes, progress: counter))
        }
        let connection = try await fixture.connect(to: server, clientConfiguration)
        // Wrap the stream for async use inside the initializer, before it becomes active,
        // so NIOAsyncChannel's backpressure governs every read from the start.
        let wrapped = NIOLockedValueBoxHolder<NIOAsyncChannel<ByteBuffer, ByteBuffer>>()
        let stream = try await connection.openStream { stream in
            stream.eventLoop.makeCompletedFuture {
                wrapped.set(try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                    wrappingChannelSynchronously: stream,
                    configuration: .init(backPressureStrategy: .init(lowWatermark: 2, highWatermark: 4),
                                         isOutboundHalfClosureEnabled: true)))
            }
        }.get()
        let asyncChannel = try XCTUnwrap(wrapped.get())

        try await asyncChannel.executeThenClose { inbound, outbound in
            outbound.finish()  // the (empty) request: the server starts sending
            // The scenario is "the reader stops for 2 s"; sample the sender halfway and at the end.
            try await Task.sleep(nanoseconds: 1_000_000_000)
            let sentAtOneSecond = counter.get()
            try await Task.sleep(nanoseconds: 1_000_000_000)
            let sentAtTwoSeconds = counter.get()
            let peer = try XCTUnwrap(serverStream.get())
            let senderHeld = try await peer.eventLoop.submit { peer.bufferedOutboundBytes }.get()
            let receiverHeld = try await stream.eventLoop.submit { stream.bufferedInboundBytes }.get()

            XCTAssertGreaterThan(sentAtOneSecond, 0, "the sender should have started")
            XCTAssertEqual(sentAtOneSecond, sentAtTwoSeconds, "the sender kept producing while nobody read")
            XCTAssertLessThan(sentAtTwoSeconds, size / 4, "the sender ran far ahead of a stalled reader")
            // Sender: write buffer (high watermark) + what the receiver's window let through.
            XCTAssertLessThanOrEqual(senderHeld, 512 * 1024 + Int(streamWindow) * 2 + 64 * 1024,
                                     "sender buffered \(senderHeld) bytes")
            // Receiver: at most its stream window beyond what the app's bounded buffer holds.
            XCTAssertLessThanOrEqual(receiverHeld, Int(streamWindow) * 2, "receiver buffered \(receiverHeld) bytes")

            var hash = SHA256()
            var received = 0
            for try await buffer in inbound {
                buffer.withUnsafeReadableBytes { hash.update(bufferPointer: $0) }
                received += buffer.readableBytes
            }
            XCTAssertEqual(received, size)
            XCTAssertEqual(hash.finalize(), patternDigest(seed: 0, count: size))
        }
        connection.close()
        await server.close()
    }
}

final class ManagedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func set(_ v: Int) { lock.lock(); value = v; lock.unlock() }
    func get() -> Int { lock.lock(); defer { lock.unlock() }; return value }
}
