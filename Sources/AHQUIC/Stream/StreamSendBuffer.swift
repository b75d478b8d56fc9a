import CNgtcp2
import NIOCore

/// Outbound bytes of one stream, from the first unacknowledged byte to the last byte the
/// application wrote. ngtcp2 does not copy stream data: it keeps pointers into these
/// buffers for retransmission until it reports the range acknowledged. So a chunk is only
/// dropped once `acknowledged(upTo:)` passes its end, and the ByteBuffers are never
/// mutated while held here (their storage, and so the pointers, stay put).
struct StreamSendBuffer {
    private var chunks = CircularBuffer<ByteBuffer>()
    /// Stream offset of the first byte of `chunks[0]`.
    private var chunksStart: UInt64 = 0
    /// Index into `chunks` and offset within it of the first unsent byte.
    private var cursorIndex = 0
    private var cursorOffset = 0
    private var writePromises = CircularBuffer<(end: UInt64, promise: EventLoopPromise<Void>)>()

    /// Total bytes the application has queued (the stream's end offset so far).
    private(set) var appendedOffset: UInt64 = 0
    /// Bytes handed to ngtcp2.
    private(set) var sentOffset: UInt64 = 0
    /// Bytes the peer acknowledged (contiguous from 0).
    private(set) var ackedOffset: UInt64 = 0

    var unsentBytes: Int { Int(appendedOffset - sentOffset) }
    /// Bytes held in memory: unsent plus sent-but-unacknowledged.
    var heldBytes: Int { Int(appendedOffset - chunksStart) }
    var hasUnsentData: Bool { sentOffset < appendedOffset }

    mutating func append(_ buffer: ByteBuffer, promise: EventLoopPromise<Void>?) {
        guard buffer.readableBytes > 0 else {
            // An empty write is "sent" as soon as everything before it is.
            if let promise {
                if sentOffset == appendedOffset { promise.succeed(()) } else { writePromises.append((appendedOffset, promise)) }
            }
            return
        }
        chunks.append(buffer)
        appendedOffset += UInt64(buffer.readableBytes)
        if let promise { writePromises.append((appendedOffset, promise)) }
    }

    /// Points `vecs` at unsent data, starting at the cursor. Returns how many entries were
    /// filled and whether they cover all unsent data.
    func fillUnsent(_ vecs: inout [ngtcp2_vec]) -> (count: Int, coversAll: Bool) {
        var count = 0
        var index = cursorIndex
        var offset = cursorOffset
        var covered = 0
        while count < vecs.count, index < chunks.count {
            let chunk = chunks[offset: index]
            chunk.withUnsafeReadableBytes { bytes in
                let base = bytes.baseAddress!.advanced(by: offset)
                vecs[count] = ngtcp2_vec(base: UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: UInt8.self)),
                                         len: bytes.count - offset)
                covered += bytes.count - offset
            }
            count += 1
            index += 1
            offset = 0
        }
        return (count, covered == unsentBytes)
    }

    /// ngtcp2 accepted `count` more bytes. Returns the write promises that are now complete.
    mutating func advance(by count: Int) -> [EventLoopPromise<Void>] {
        precondition(count <= unsentBytes, "ngtcp2 reported more data written than offered")
        var remaining = count
        while remaining > 0 {
            let left = chunks[offset: cursorIndex].readableBytes - cursorOffset
            if remaining >= left {
                remaining -= left
                cursorIndex += 1
                cursorOffset = 0
            } else {
                cursorOffset += remaining
                remaining = 0
            }
        }
        sentOffset += UInt64(count)
        var done: [EventLoopPromise<Void>] = []
        while let first = writePromises.first, first.end <= sentOffset {
            done.append(writePromises.removeFirst().promise)
        }
        return done
    }

    /// The peer acknowledged everything below `offset`: release fully acknowledged chunks.
    mutating func acknowledged(upTo offset: UInt64) {
        ackedOffset = max(ackedOffset, min(offset, sentOffset))
        while let first = chunks.first, chunksStart + UInt64(first.readableBytes) <= ackedOffset, cursorIndex > 0 {
            chunksStart += UInt64(first.readableBytes)
            chunks.removeFirst()
            cursorIndex -= 1
        }
    }

    /// The stream's output is dead (reset, or the peer stopped reading): nothing more will be
    /// sent. Returns pending write promises to fail. The chunks stay until `releaseAll()`
    /// because ngtcp2 may still hold pointers into data it already sent.
    mutating func abandon() -> [EventLoopPromise<Void>] {
        let promises = writePromises.map(\.promise)
        writePromises.removeAll()
        // Unsent data will never be offered; pretend it was so `hasUnsentData` is false.
        sentOffset = appendedOffset
        cursorIndex = chunks.count
        cursorOffset = 0
        return promises
    }

    /// ngtcp2 is done with the stream: free everything.
    mutating func releaseAll() -> [EventLoopPromise<Void>] {
        let promises = abandon()
        chunks.removeAll()
        chunksStart = appendedOffset
        ackedOffset = appendedOffset
        cursorIndex = 0
        return promises
    }
}
