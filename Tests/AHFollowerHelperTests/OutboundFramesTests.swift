@testable import AHFollowerHelper
import XCTest

/// The leader's queue of frames to a follower helper: what queued while a write ran goes out
/// as one write, in order, small frames joined, large ones alone.
final class OutboundFramesTests: XCTestCase {
    func testSmallFramesAreJoinedInOrderAndLargeOnesGoAlone() async {
        let queue = OutboundFrames()
        let small = (0..<100).map { index in [UInt8](repeating: UInt8(index), count: 1_000) }
        for frame in small { queue.append(frame) }
        let large = [UInt8](repeating: 0xEE, count: OutboundFrames.joinBelow)
        queue.append(large)
        queue.append([1, 2, 3])

        let first = await queue.next()
        XCTAssertEqual(first, small.flatMap { $0 }, "100 small frames, one write, in order")
        let second = await queue.next()
        XCTAssertEqual(second, large, "a large frame is written alone")
        let third = await queue.next()
        XCTAssertEqual(third, [1, 2, 3])
    }

    func testAJoinedWriteStopsAtItsBound() async {
        let queue = OutboundFrames()
        let frame = [UInt8](repeating: 7, count: OutboundFrames.joinBelow - 1)
        let count = OutboundFrames.maxJoined / frame.count + 2
        for _ in 0..<count { queue.append(frame) }
        var total = 0
        var writes = 0
        while total < count * frame.count, let bytes = await queue.next() {
            XCTAssertLessThanOrEqual(bytes.count, OutboundFrames.maxJoined)
            XCTAssertEqual(bytes.count % frame.count, 0, "frames are never split")
            total += bytes.count
            writes += 1
        }
        XCTAssertEqual(total, count * frame.count)
        XCTAssertEqual(writes, 2)
    }

    func testAWaitingWriterGetsTheNextFrameAndNilAfterFinish() async {
        let queue = OutboundFrames()
        async let waited = queue.next()
        // The writer may or may not be waiting yet: either way it gets this frame.
        queue.append([42])
        let got = await waited
        XCTAssertEqual(got, [42])
        async let ended = queue.next()
        queue.finish()
        let end = await ended
        XCTAssertNil(end)
        queue.append([1])
        let after = await queue.next()
        XCTAssertNil(after, "nothing is queued after finish")
    }
}
