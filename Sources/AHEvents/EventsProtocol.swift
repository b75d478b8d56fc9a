import Foundation

/// The event uplink (docs/protocol.md, "Event streams"): a leader pushes its journal to the
/// access point on its own QUIC connection, under its executor identity, with this ALPN. A
/// connection of this ALPN is never the executor's control connection: the access point does
/// not register it, so it cannot replace or evict the executor's `ah/1` connection.
public let eventsALPN = "ah-events/1"

/// Bounds of the uplink. Everything the access point reads from a leader is checked against
/// these before it is buffered or stored.
public enum EventsLimits {
    /// One frame (a message or one event's JSON), checked on the length prefix.
    public static let maxFrameBytes = 256 * 1024
    /// Events in one batch.
    public static let maxBatchEvents = 1024
    /// Sum of one batch's event frames.
    public static let maxBatchBytes = 4 * 1024 * 1024
    /// Session ids: 1…128 bytes of letters, digits, `-`, `_`, `.`, `:`.
    public static let maxSessionBytes = 128
    /// Event type names: 1…64 bytes, a letter first, then letters, digits, `.`, `-`, `_`.
    public static let maxTypeBytes = 64
    /// `ts` of an event (RFC 3339).
    public static let maxTimestampBytes = 64

    public static func isValidSession(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= maxSessionBytes else { return false }
        return bytes.allSatisfy { isAlnum($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_")
            || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: ":") }
    }

    public static func isValidType(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, bytes.count <= maxTypeBytes, isAlpha(first) else { return false }
        return bytes.allSatisfy { isAlnum($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }
    }

    private static func isAlpha(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }

    private static func isAlnum(_ byte: UInt8) -> Bool {
        isAlpha(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}

/// Leader → access point: the first frame about a session on the stream. The answer is
/// `events-ack` with the last seq the access point holds (0: none), or `events-refused`.
public struct EventsOpen: Codable, Sendable, Equatable {
    public var version = 1
    public var type = EventsOpen.typeName
    public var session: String
    public static let typeName = "events-open"

    public init(session: String) { self.session = session }
}

/// Leader → access point: `count` event frames follow (each one event's JSON object, as
/// journaled), with consecutive seqs. Answered with `events-ack` once they are stored.
public struct EventsBatch: Codable, Sendable, Equatable {
    public var version = 1
    public var type = EventsBatch.typeName
    public var session: String
    public var count: Int
    public static let typeName = "events-batch"

    public init(session: String, count: Int) {
        self.session = session
        self.count = count
    }
}

/// Leader → access point: the session ended (the leader service stopped cleanly). Answered
/// with `events-ack`.
public struct EventsEnd: Codable, Sendable, Equatable {
    public var version = 1
    public var type = EventsEnd.typeName
    public var session: String
    public static let typeName = "events-end"

    public init(session: String) { self.session = session }
}

/// Access point → leader: every event of `session` up to `seq` is stored (durably, in its
/// state file); the leader resends from `seq + 1`.
public struct EventsAck: Codable, Sendable, Equatable {
    public var version = 1
    public var type = EventsAck.typeName
    public var session: String
    public var seq: Int64
    public static let typeName = "events-ack"

    public init(session: String, seq: Int64) {
        self.session = session
        self.seq = seq
    }
}

/// Access point → leader: the request was refused; the access point finishes the stream.
public struct EventsRefused: Codable, Sendable, Equatable, Error, CustomStringConvertible {
    public var version = 1
    public var type = EventsRefused.typeName
    public var session: String
    /// `not-owner` (another executor leads this session), `bad-request` (a malformed or
    /// out-of-bounds frame), `bad-event` (an event that is not valid; `message` names it),
    /// `gap` (the batch does not continue the stored seqs), `version`, `unavailable`.
    public var code: String
    public var message: String
    public static let typeName = "events-refused"

    public init(session: String, code: String, message: String) {
        self.session = session
        self.code = code
        self.message = message
    }

    public var description: String { "the access point refused events of session \(session) (\(code)): \(message)" }
}

/// The first two fields of every uplink message.
struct EventsHeader: Decodable {
    var version: Int
    var type: String
}
