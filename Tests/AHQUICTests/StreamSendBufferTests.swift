@testable import AHQUIC
import CNgtcp2
import NIOCore
import NIOEmbedded
import XCTest

/// The bookkeeping that keeps ngtcp2's pointers valid: data stays until acknowledged.
final class StreamSendBufferTests: XCTestCase {
    let loop = EmbeddedEventLoop()

    private func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

    func testDataIsHeldUntilAcknowledgedAndPromisesCompleteWhenSent() throws {
        var send = StreamSendBuffer()
        let first = loop.makePromise(of: Void.self)
        let second = loop.makePromise(of: Void.self)
        send.append(buffer(Array(repeating: 1, count: 100)), promise: first)
        send.append(buffer(Array(repeating: 2, count: 50)), promise: second)
        XCTAssertEqual(send.unsentBytes, 150)

        var vecs = [ngtcp2_vec](repeating: ngtcp2_vec(), count: 16)
        let (count, coversAll) = send.fillUnsent(&vecs)
        XCTAssertEqual(count, 2)
        XCTAssertTrue(coversAll)
        XCTAssertEqual(vecs[0].len + vecs[1].len, 150)

        var done = send.advance(by: 120)
        XCTAssertEqual(done.count, 1, "only the first write is fully handed over")
        done.forEach { $0.succeed(()) }
        XCTAssertEqual(send.unsentBytes, 30)
        XCTAssertEqual(send.heldBytes, 150, "sent but unacknowledged data is still held")

        let (rest, _) = send.fillUnsent(&vecs)
        XCTAssertEqual(rest, 1)
        XCTAssertEqual(vecs[0].len, 30)
        XCTAssertEqual(vecs[0].base.pointee, 2)

        done = send.advance(by: 30)
        XCTAssertEqual(done.count, 1)
        done.forEach { $0.succeed(()) }

        send.acknowledged(upTo: 99)
        XCTAssertEqual(send.heldBytes, 150, "a partly acknowledged chunk is kept whole")
        send.acknowledged(upTo: 100)
        XCTAssertEqual(send.heldBytes, 50)
        send.acknowledged(upTo: 150)
        XCTAssertEqual(send.heldBytes, 0)
        XCTAssertFalse(send.hasUnsentData)
    }

    func testAcknowledgementNeverPassesWhatWasSent() {
        var send = StreamSendBuffer()
        send.append(buffer([1, 2, 3, 4]), promise: nil)
        _ = send.advance(by: 2)
        send.acknowledged(upTo: 4)
        XCTAssertEqual(send.ackedOffset, 2)
        XCTAssertEqual(send.heldBytes, 4)
    }

    func testAbandonFailsPendingWritesButKeepsSentDataUntilReleased() {
        var send = StreamSendBuffer()
        let promise = loop.makePromise(of: Void.self)
        send.append(buffer([1, 2, 3]), promise: nil)
        send.append(buffer([4, 5, 6]), promise: promise)
        _ = send.advance(by: 3)
        let pending = send.abandon()
        XCTAssertEqual(pending.count, 1)
        pending.forEach { $0.fail(QUICStreamError.outputClosed) }
        XCTAssertFalse(send.hasUnsentData)
        XCTAssertGreaterThan(send.heldBytes, 0, "ngtcp2 may still point into sent data")
        XCTAssertTrue(send.releaseAll().isEmpty)
        XCTAssertEqual(send.heldBytes, 0)
    }
}
