import Glibc
import NIOCore

/// A deterministic byte stream for transfer tests: byte `i` of stream `seed` is
/// `block[(i + seed * 7919) % block.count]`. Senders write zero-copy slices of one block;
/// receivers check every byte against the same function, so corruption, loss, duplication
/// or reordering is caught exactly, without hashing.
public struct PatternSource: Sendable {
    public static let blockSize = 64 * 1024
    private let block: ByteBuffer
    private let shift: Int

    public init(seed: Int, allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var buffer = allocator.buffer(capacity: Self.blockSize)
        for _ in 0..<(Self.blockSize / 8) {
            // xorshift64*: fast, and good enough that shifted copies never line up by accident.
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            buffer.writeInteger(state &* 0x2545_F491_4F6C_DD1D, as: UInt64.self)
        }
        self.block = buffer
        self.shift = (seed &* 7919) % Self.blockSize
    }

    /// Up to `maxLength` bytes starting at stream offset `offset` (never crosses the block end).
    public func chunk(at offset: Int, maxLength: Int) -> ByteBuffer {
        let start = (offset + shift) % Self.blockSize
        let length = min(maxLength, Self.blockSize - start)
        return block.getSlice(at: block.readerIndex + start, length: length)!
    }

    /// True when `data` equals the pattern at `offset`. Compares with memcmp: this runs for
    /// every received byte in transfer tests, including debug builds.
    public func matches(_ data: ByteBuffer, at offset: Int) -> Bool {
        var checked = 0
        let total = data.readableBytes
        return data.withUnsafeReadableBytes { received in
            while checked < total {
                let expected = chunk(at: offset + checked, maxLength: total - checked)
                let n = expected.readableBytes
                let same = expected.withUnsafeReadableBytes { memcmp($0.baseAddress!, received.baseAddress! + checked, n) == 0 }
                guard same else { return false }
                checked += n
            }
            return true
        }
    }
}
