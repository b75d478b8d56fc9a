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
        let ts = Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
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
        let now = Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
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
        switch self {
        case .string(let text): return Self.quote(text)
        case .number(let number):
            if number.rounded() == number, abs(number) < 1e15 { return String(Int64(number)) }
            return "\(number)"
        case .bool(let flag): return flag ? "true" : "false"
        case .null: return "null"
        case .array(let items): return "[" + items.map(\.encoded).joined(separator: ",") + "]"
        case .object(let fields):
            return "{" + fields.keys.sorted().map { Self.quote($0) + ":" + fields[$0]!.encoded }.joined(separator: ",") + "}"
        }
    }

    /// `text` as a JSON string literal (control characters escaped, non-ASCII kept).
    public static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }
}
