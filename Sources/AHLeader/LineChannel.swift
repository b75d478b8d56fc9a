import Foundation
import NIOCore

/// Reads `\n`-terminated lines from a NIOAsyncChannel's inbound byte stream, bounded by
/// `LeaderWire.maxLine` (a longer line is an error, never an unbounded buffer).
struct LineReader<Inbound: AsyncSequence> where Inbound.Element == ByteBuffer {
    private var iterator: Inbound.AsyncIterator
    private var lines = LineSplitter()
    private var ended = false

    init(_ inbound: Inbound) { iterator = inbound.makeAsyncIterator() }

    /// The next line without its newline, or nil at the end of the stream.
    mutating func next() async throws -> [UInt8]? {
        while true {
            if let line = try lines.next(ended: ended) { return line }
            if ended { return nil }
            guard let buffer = try await iterator.next() else {
                ended = true
                continue
            }
            try lines.append(buffer.readableBytesView)
        }
    }
}

/// Newline-separated messages out of a byte stream, each at most `LeaderWire.maxLine`: the
/// service's reader (above) and the client's blocking `LeaderSocket` share it.
struct LineSplitter {
    private var pending: [UInt8] = []

    /// The next whole line without its newline; nil when none is buffered. Once the stream
    /// has `ended`, a partial line left over is an error.
    mutating func next(ended: Bool) throws -> [UInt8]? {
        if let newline = pending.firstIndex(of: 0x0A) {
            let line = Array(pending[..<newline])
            pending.removeSubrange(...newline)
            return line
        }
        if ended, !pending.isEmpty { throw LineError.truncated(pending.count) }
        return nil
    }

    mutating func append(_ bytes: some Collection<UInt8>) throws {
        pending.append(contentsOf: bytes)
        if pending.count > LeaderWire.maxLine { throw LineError.tooLong(LeaderWire.maxLine) }
    }
}

enum LineError: Error, CustomStringConvertible {
    case tooLong(Int)
    case truncated(Int)

    var description: String {
        switch self {
        case .tooLong(let limit): return "a message longer than \(limit) bytes on the leader socket"
        case .truncated(let count): return "the leader socket closed in the middle of a message (\(count) bytes)"
        }
    }
}

extension NIOAsyncChannelOutboundWriter where OutboundOut == ByteBuffer {
    /// Writes one encoded line.
    func writeLine<T: Encodable>(_ value: T) async throws {
        try await write(ByteBuffer(bytes: try LeaderWire.encode(value)))
    }
}
