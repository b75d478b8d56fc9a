// The follower helper's framing (docs/protocol.md, "Follower helper protocol"): every frame
// is a 4-byte big-endian length, a 1-byte kind and a 4-byte big-endian job id, then the
// payload. Output travels as raw bytes (no base64-in-JSON), control messages as JSON.

/// What a frame carries. Kinds this build does not know are answered with an error and
/// skipped (their length is known), so a newer peer can add kinds within a major version.
public enum HelperFrameKind: UInt8, Sendable {
    /// A JSON control message (`HelperMessage`); the job id field is 0.
    case message = 0
    /// Bytes a job wrote to its stdout.
    case stdout = 1
    /// Bytes a job wrote to its stderr.
    case stderr = 2
    /// Bytes of the file a sync is sending (leader → helper; after its `sync-file`; job id = sync id).
    case syncData = 3
    /// Bytes of the file a slurp is sending (helper → leader; after its `slurp-file`).
    case slurpData = 4
}

/// One frame as it is on the wire, before its payload is interpreted.
public struct HelperRawFrame: Sendable, Equatable {
    /// The kind byte (a `HelperFrameKind` raw value, or one from a newer peer).
    public var kind: UInt8
    public var job: UInt32
    public var payload: [UInt8]

    public init(kind: UInt8, job: UInt32, payload: [UInt8]) {
        self.kind = kind
        self.job = job
        self.payload = payload
    }

    public init(kind: HelperFrameKind, job: UInt32, payload: [UInt8]) {
        self.init(kind: kind.rawValue, job: job, payload: payload)
    }
}

public enum HelperWire {
    /// The protocol major version this build speaks. Peers with another major are refused.
    public static let protocolVersion = 1
    /// Bytes after the length prefix: kind (1) + job id (4).
    public static let minimumFrameLength = 5
    /// The largest length prefix accepted (kind + job id + payload): 1 MiB.
    public static let maximumFrameLength = 1 << 20
    /// Output is read from a job's pipes in chunks of at most this size (one frame each).
    public static let outputChunkSize = 64 * 1024

    /// The bytes of one frame. The payload must fit `maximumFrameLength - 5`.
    public static func encode(kind: UInt8, job: UInt32, payload: some Collection<UInt8>) -> [UInt8] {
        let length = minimumFrameLength + payload.count
        precondition(length <= maximumFrameLength, "a follower helper frame of \(length) bytes exceeds the bound")
        var bytes = [UInt8]()
        bytes.reserveCapacity(4 + length)
        appendBigEndian(UInt32(length), to: &bytes)
        bytes.append(kind)
        appendBigEndian(job, to: &bytes)
        bytes.append(contentsOf: payload)
        return bytes
    }

    public static func encode(_ frame: HelperRawFrame) -> [UInt8] {
        encode(kind: frame.kind, job: frame.job, payload: frame.payload)
    }

    /// A control message as a frame (kind 0, job 0).
    public static func encode(_ message: HelperMessage) -> [UInt8] {
        encode(kind: HelperFrameKind.message.rawValue, job: 0, payload: message.jsonBytes())
    }

    private static func appendBigEndian(_ value: UInt32, to bytes: inout [UInt8]) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 24))
        bytes.append(UInt8(truncatingIfNeeded: value >> 16))
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }
}

/// Why a byte stream is not a valid frame sequence. Either ends the connection.
public enum HelperFrameError: Error, Equatable, CustomStringConvertible {
    case tooLarge(length: Int, limit: Int)
    case tooShort(length: Int)

    /// The `error` message code the helper sends before it closes.
    public var code: String {
        switch self {
        case .tooLarge: return "frame-too-large"
        case .tooShort: return "malformed-frame"
        }
    }

    public var description: String {
        switch self {
        case .tooLarge(let length, let limit):
            return "a follower helper frame announced \(length) bytes, more than the limit of \(limit)"
        case .tooShort(let length):
            return "a follower helper frame announced \(length) bytes, fewer than the 5 of its kind and job id"
        }
    }
}

/// Splits a byte stream into frames. An oversized length is refused as soon as its prefix
/// is seen, so nothing larger than the bound is ever buffered.
public struct HelperFrameDecoder: Sendable {
    private var buffer: [UInt8] = []
    /// Where the unread bytes of `buffer` start (consumed bytes are dropped in batches).
    private var start = 0
    private let maximumFrameLength: Int

    public init(maximumFrameLength: Int = HelperWire.maximumFrameLength) {
        self.maximumFrameLength = maximumFrameLength
    }

    /// Bytes received but not yet returned as frames.
    public var bufferedByteCount: Int { buffer.count - start }

    public mutating func append(_ bytes: some Sequence<UInt8>) {
        buffer.append(contentsOf: bytes)
    }

    /// The next complete frame, or nil until more bytes arrive. Call until nil after every
    /// `append`, so at most one chunk beyond a bounded frame is ever held.
    public mutating func next() throws(HelperFrameError) -> HelperRawFrame? {
        guard buffer.count - start >= 4 else { return nil }
        let length = Int(buffer[start]) << 24 | Int(buffer[start + 1]) << 16 | Int(buffer[start + 2]) << 8 | Int(buffer[start + 3])
        guard length <= maximumFrameLength else { throw .tooLarge(length: length, limit: maximumFrameLength) }
        guard length >= HelperWire.minimumFrameLength else { throw .tooShort(length: length) }
        guard buffer.count - start >= 4 + length else { return nil }
        let kind = buffer[start + 4]
        let job = UInt32(buffer[start + 5]) << 24 | UInt32(buffer[start + 6]) << 16 | UInt32(buffer[start + 7]) << 8 | UInt32(buffer[start + 8])
        let payload = Array(buffer[(start + 9)..<(start + 4 + length)])
        start += 4 + length
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start >= 1 << 16 && start * 2 >= buffer.count {
            // Drop what was consumed once it outweighs what is left (amortised O(1) per byte).
            buffer.removeFirst(start)
            start = 0
        }
        return HelperRawFrame(kind: kind, job: job, payload: payload)
    }
}
