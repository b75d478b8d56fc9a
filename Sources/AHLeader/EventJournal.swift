import AHStore
import Foundation
import Logging

/// One leader event as it is journaled and (by a later issue) delivered to the access point:
/// `type` (fenceStarted, fenceResult, hostStarted, hostLog, hostExited, summary,
/// followersCatalog, connect.path.fixed/degraded/restored), `seq` gap-free per session from
/// 1, `ts` (RFC 3339, UTC, milliseconds), `session`, and the type's own fields in `data`.
/// docs/protocol.md ("Leader events") lists every type's fields.
public struct LeaderEventRecord: Sendable, Equatable {
    public let session: String
    public let seq: Int64
    public let ts: String
    public let type: String
    /// The event as one JSON object: its fields plus `ts`, `seq`, `session`, `type`.
    public let json: String
}

/// The leader's event journal: an SQLite table in the leader's state, written through one
/// serial writer thread (`StoreWorker`), so `seq` is assigned in the order events are
/// emitted and no two events share one, across restarts of the service too.
public final class EventJournal: Sendable {
    let database: SQLiteDatabase
    let worker: StoreWorker
    let session: String
    let logger: Logger
    /// Appends not yet written, their seq assignment, the uplink's bound and the signal the
    /// uplink waits on (JournalQueue.swift).
    let queue: JournalQueue

    public init(path: String, session: String, logger: Logger) throws {
        database = try SQLiteDatabase(path: path)
        try database.withConnection { connection in
            try connection.executeScript("""
                CREATE TABLE IF NOT EXISTS events (
                    session TEXT NOT NULL,
                    seq INTEGER NOT NULL,
                    ts TEXT NOT NULL,
                    type TEXT NOT NULL,
                    data TEXT NOT NULL,
                    delivered INTEGER NOT NULL DEFAULT 0,
                    PRIMARY KEY (session, seq)
                ) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS paths (
                    follower TEXT PRIMARY KEY,
                    method TEXT NOT NULL,
                    target TEXT NOT NULL,
                    relay TEXT,
                    rtt_ms REAL NOT NULL,
                    fixed_at TEXT NOT NULL
                );
                """)
        }
        worker = StoreWorker(label: "leader journal", logger: logger)
        self.session = session
        self.logger = logger
        queue = JournalQueue(session: session, logger: logger)
    }

    /// Appends an event (queued: returns at once, order kept). `fields` must encode to a
    /// JSON object; the four envelope keys are added here. Appends made while an earlier
    /// write runs are written together in one transaction (in order), so a burst of output
    /// costs one commit, not one per chunk.
    public func append(_ type: String, _ fields: [String: JSONValue]) {
        let ts = UTCStamp.nowMillis()
        guard queue.add(type: type, ts: ts, fields: fields) else { return }
        let database = self.database
        let queue = self.queue
        worker.enqueue("events") {
            let batch = queue.take()
            guard !batch.isEmpty else { return }
            do {
                try database.transaction { connection in
                    try queue.write(batch, connection: connection)
                }
            } catch {
                queue.forgetSeq()
                throw error
            }
            queue.committed()
        }
    }

    /// Records where a follower was reached (seed stage 5: persisted path).
    public func recordPath(follower: String, _ path: PathReport) {
        let database = self.database
        let now = UTCStamp.nowMillis()
        worker.enqueue("path of \(follower)") {
            _ = try database.withConnection { connection in
                try connection.execute("""
                    INSERT INTO paths (follower, method, target, relay, rtt_ms, fixed_at) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT(follower) DO UPDATE SET method = excluded.method, target = excluded.target,
                        relay = excluded.relay, rtt_ms = excluded.rtt_ms, fixed_at = excluded.fixed_at
                    """, [follower, path.method.rawValue, path.target, path.relay, path.rttMs, now])
            }
        }
    }

    /// Events of this journal's session after `seq`, in order.
    public func events(after seq: Int64 = 0, limit: Int = 10_000) async throws -> [LeaderEventRecord] {
        let database = self.database
        let session = self.session
        return try await worker.run {
            try database.withConnection { connection in
                try connection.query("SELECT seq, ts, type, data FROM events WHERE session = ? AND seq > ? ORDER BY seq LIMIT ?",
                                     [session, seq, limit]) { row in
                    LeaderEventRecord(session: session, seq: try row.int64(0), ts: try row.string(1), type: try row.string(2),
                                      json: try row.string(3))
                }
            }
        }
    }

    public func flush() async { await worker.flush() }

    public func close() async {
        let database = self.database
        await worker.close { database.close() }
    }
}

/// A JSON value for event fields (events are built from plain values, not Codable types,
/// so a field's presence and its `null` are explicit).
public indirect enum JSONValue: Sendable, Equatable {
    case string(String)
    case number(Double)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([String: JSONValue])

    public static func int(_ value: Int) -> JSONValue { .number(Double(value)) }
    public static func optional(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }

    /// Compact JSON text with sorted keys.
    public var encoded: String {
        var out = ""
        out.reserveCapacity(128)
        encode(into: &out)
        return out
    }

    /// Appends the compact text to `out` (one growing string: encoding every event of a
    /// burst of output was most of the journal's CPU when each level built its own).
    public func encode(into out: inout String) {
        switch self {
        case .string(let text): Self.appendQuoted(text, to: &out)
        case .number(let number):
            if number.rounded() == number, abs(number) < 1e15 { out += String(Int64(number)) } else { out += "\(number)" }
        case .bool(let flag): out += flag ? "true" : "false"
        case .null: out += "null"
        case .array(let items):
            out += "["
            for (index, item) in items.enumerated() {
                if index > 0 { out += "," }
                item.encode(into: &out)
            }
            out += "]"
        case .object(let fields):
            out += "{"
            for (index, key) in fields.keys.sorted().enumerated() {
                if index > 0 { out += "," }
                Self.appendQuoted(key, to: &out)
                out += ":"
                fields[key]!.encode(into: &out)
            }
            out += "}"
        }
    }

    /// `text` as a JSON string literal (control characters escaped, non-ASCII kept).
    public static func quote(_ text: String) -> String {
        var out = ""
        appendQuoted(text, to: &out)
        return out
    }

    /// Appends `text` quoted. Text with nothing to escape (nearly all of it) is appended
    /// whole; otherwise runs between escapes are copied as UTF-8 (a byte below 0x80 is
    /// always a whole ASCII character in UTF-8, so a multi-byte character is never split).
    static func appendQuoted(_ text: String, to out: inout String) {
        out += "\""
        let utf8 = text.utf8
        guard utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) else {
            out += text
            out += "\""
            return
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count + 16)
        for byte in utf8 {
            switch byte {
            case 0x22: bytes += [0x5C, 0x22]
            case 0x5C: bytes += [0x5C, 0x5C]
            case 0x0A: bytes += [0x5C, 0x6E]
            case 0x0D: bytes += [0x5C, 0x72]
            case 0x09: bytes += [0x5C, 0x74]
            case ..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes += [0x5C, 0x75, 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            default: bytes.append(byte)
            }
        }
        out += String(decoding: bytes, as: UTF8.self)
        out += "\""
    }
}
