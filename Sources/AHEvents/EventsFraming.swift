import Foundation
import NIOCore

/// Uplink frames: a 4-byte big-endian length `n`, then `n` bytes (a JSON object). Like the
/// control stream's frames but with `EventsLimits.maxFrameBytes` as the bound (an event may
/// carry a 64 KiB output chunk, escaped), refused on the prefix before anything is buffered.
public enum EventsFraming {
    public static func frame(_ body: some Collection<UInt8>, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt32(body.count))
        buffer.writeBytes(body)
    }

    public static func encode<T: Encodable>(_ message: T, into buffer: inout ByteBuffer) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        frame(try encoder.encode(message), into: &buffer)
    }

    /// The next complete frame's bytes, or nil when more are needed.
    public static func next(from buffer: inout ByteBuffer) throws -> ByteBuffer? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        guard Int(length) <= EventsLimits.maxFrameBytes else {
            throw EventsProtocolError.frameTooLarge(Int(length))
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        return buffer.readSlice(length: Int(length))
    }
}

/// What is wrong with what a peer sent, as the `code` and sentence of an `events-refused`.
public enum EventsProtocolError: Error, CustomStringConvertible, Equatable {
    case frameTooLarge(Int)
    case malformed(String)
    case badEvent(String)
    case version(Int)

    public var code: String {
        switch self {
        case .frameTooLarge, .malformed: return "bad-request"
        case .badEvent: return "bad-event"
        case .version: return "version"
        }
    }

    public var description: String {
        switch self {
        case .frameTooLarge(let n): return "a frame of \(n) bytes exceeds the \(EventsLimits.maxFrameBytes)-byte bound"
        case .malformed(let text): return text
        case .badEvent(let text): return text
        case .version(let v): return "uplink protocol version \(v) is not supported (this side speaks 1)"
        }
    }
}
