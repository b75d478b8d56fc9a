import Foundation
import NIOCore

/// Control messages travel as frames: a 4-byte big-endian length, then that many bytes of
/// JSON. The length is checked before anything is buffered, so a peer cannot make us hold
/// more than `maxFrameSize` for one message.
public enum Frame {
    /// Hard upper bound for any control message (certificates and CSRs fit easily).
    public static let maxFrameSize = 64 * 1024

    public static func encode<T: Encodable>(_ message: T, allocator: ByteBufferAllocator = ByteBufferAllocator()) throws -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        let body = try encoder.encode(message)
        guard body.count <= maxFrameSize else { throw FrameError.tooLarge(body.count) }
        var buffer = allocator.buffer(capacity: 4 + body.count)
        buffer.writeInteger(UInt32(body.count), as: UInt32.self)
        buffer.writeBytes(body)
        return buffer
    }

    /// Takes one complete frame off the front of `buffer`, or returns nil if more bytes are
    /// needed. Throws as soon as a length over the bound is seen.
    public static func decode<T: Decodable>(_ type: T.Type, from buffer: inout ByteBuffer) throws -> T? {
        guard let body = try nextBody(from: &buffer) else { return nil }
        return try decodeBody(type, body)
    }

    /// The JSON of the next complete frame, or nil if more bytes are needed.
    public static func nextBody(from buffer: inout ByteBuffer) throws -> Data? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        guard Int(length) <= maxFrameSize else { throw FrameError.tooLarge(Int(length)) }
        guard buffer.readableBytes >= 4 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        return Data(buffer.readBytes(length: Int(length))!)
    }

    public static func decodeBody<T: Decodable>(_ type: T.Type, _ body: Data) throws -> T {
        try decodeBody(type, body, using: makeDecoder())
    }

    /// With a decoder the caller keeps (not shared across threads).
    public static func decodeBody<T: Decodable>(_ type: T.Type, _ body: Data, using decoder: JSONDecoder) throws -> T {
        do {
            return try decoder.decode(T.self, from: body)
        } catch {
            throw FrameError.malformed("\(error)")
        }
    }

    /// How every frame body is read: JSON, dates as ISO 8601.
    public static func makeDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

public enum FrameError: Error, CustomStringConvertible, Equatable {
    case tooLarge(Int)
    case malformed(String)
    case truncated

    public var description: String {
        switch self {
        case .tooLarge(let n): return "control message of \(n) bytes exceeds the \(Frame.maxFrameSize)-byte bound"
        case .malformed(let s): return "malformed control message: \(s)"
        case .truncated: return "stream ended inside a control message"
        }
    }
}
