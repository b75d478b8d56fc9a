import Foundation

/// Sessions and their events (migration 4), as synchronous operations on the worker thread.
extension StateTables {
    /// The session's row, created for `leader` when absent. Returns its last seq, or the
    /// owner's name when `leader` is not it.
    func openSession(_ id: String, leader: String, now: Date) throws -> EventAppendOutcome {
        try database.transaction { connection in
            try Self.ownedSession(connection, id, leader: leader, now: now)
        }
    }

    /// Stores `events` (ascending, consecutive seqs) of session `id` for `leader` in one
    /// transaction; events at or below the stored last seq are skipped (a resent batch).
    /// Returns what it did and the events newly stored.
    func appendEvents(_ id: String, leader: String, events: [StoredEvent], now: Date) throws -> (EventAppendOutcome, [StoredEvent]) {
        try database.transaction { connection in
            let owned = try Self.ownedSession(connection, id, leader: leader, now: now)
            guard case .stored(let last) = owned else { return (owned, []) }
            let fresh = events.drop(while: { $0.seq <= last })
            var expected = last + 1
            for event in fresh {
                guard event.seq == expected else { return (.gap(expected: expected, got: event.seq), []) }
                expected += 1
            }
            guard !fresh.isEmpty else { return (.stored(lastSeq: last), []) }
            let insert = try connection.prepare("INSERT INTO session_events (session, seq, type, ts, data) VALUES (?, ?, ?, ?, ?)")
            for event in fresh {
                insert.reset()
                try insert.bind([id, event.seq, event.type, event.ts, event.json])
                _ = try insert.step()
            }
            _ = try connection.execute("UPDATE sessions SET last_seq = ?, updated_at = ?, ended_at = NULL WHERE id = ?",
                                       [expected - 1, UnixMillis.from(now), id])
            return (.stored(lastSeq: expected - 1), Array(fresh))
        }
    }

    func endSession(_ id: String, leader: String, now: Date) throws -> EventAppendOutcome {
        try database.transaction { connection in
            let owned = try Self.ownedSession(connection, id, leader: leader, now: now)
            if case .stored = owned {
                let millis = UnixMillis.from(now)
                _ = try connection.execute("UPDATE sessions SET ended_at = ?, updated_at = ? WHERE id = ?", [millis, millis, id])
            }
            return owned
        }
    }

    private static func ownedSession(_ connection: SQLiteConnection, _ id: String, leader: String, now: Date) throws -> EventAppendOutcome {
        let existing = try connection.queryFirst("SELECT leader, last_seq FROM sessions WHERE id = ?", [id]) { row in
            (owner: try row.string(0), last: try row.int64(1))
        }
        if let existing {
            return existing.owner == leader ? .stored(lastSeq: existing.last) : .notOwner(leader: existing.owner)
        }
        let millis = UnixMillis.from(now)
        _ = try connection.execute("INSERT INTO sessions (id, leader, started_at, updated_at, last_seq) VALUES (?, ?, ?, ?, 0)",
                                   [id, leader, millis, millis])
        return .stored(lastSeq: 0)
    }

    func lastSeq(session id: String) throws -> Int64? {
        try database.withConnection { connection in
            try connection.queryFirst("SELECT last_seq FROM sessions WHERE id = ?", [id]) { try $0.int64(0) }
        }
    }

    func sessions() throws -> [SessionRecord] {
        try database.withConnection { connection in
            try connection.query("SELECT id, leader, started_at, updated_at, last_seq, ended_at FROM sessions ORDER BY started_at DESC, id") {
                try Self.session(row: $0)
            }
        }
    }

    func session(_ id: String) throws -> SessionRecord? {
        try database.withConnection { connection in
            try connection.queryFirst("SELECT id, leader, started_at, updated_at, last_seq, ended_at FROM sessions WHERE id = ?", [id]) {
                try Self.session(row: $0)
            }
        }
    }

    private static func session(row: SQLiteRow) throws -> SessionRecord {
        SessionRecord(id: try row.string(0), leader: try row.string(1), startedAt: UnixMillis.date(try row.int64(2)),
                      updatedAt: UnixMillis.date(try row.int64(3)), lastSeq: try row.int64(4),
                      endedAt: UnixMillis.date(try row.optionalInt64(5)))
    }

    /// Events of `session` after `seq` (ascending), of `types` when given, at most `limit`.
    func events(session: String, after seq: Int64, upTo last: Int64?, types: [String], limit: Int) throws -> [StoredEvent] {
        try database.withConnection { connection in
            var sql = "SELECT seq, type, ts, data FROM session_events WHERE session = ? AND seq > ?"
            var bindings: [(any SQLiteBindable)?] = [session, seq]
            if let last {
                sql += " AND seq <= ?"
                bindings.append(last)
            }
            if !types.isEmpty {
                sql += " AND type IN (" + types.map { _ in "?" }.joined(separator: ",") + ")"
                for type in types { bindings.append(type) }
            }
            sql += " ORDER BY seq LIMIT ?"
            bindings.append(limit)
            return try connection.query(sql, bindings) { row in
                StoredEvent(session: session, seq: try row.int64(0), type: try row.string(1), ts: try row.string(2), json: try row.string(3))
            }
        }
    }

    /// The newest events of `types` in `session`, newest first, at most `limit`.
    func latestEvents(session: String, types: [String], limit: Int) throws -> [StoredEvent] {
        try database.withConnection { connection in
            let sql = "SELECT seq, type, ts, data FROM session_events WHERE session = ? AND type IN ("
                + types.map { _ in "?" }.joined(separator: ",") + ") ORDER BY seq DESC LIMIT ?"
            var bindings: [(any SQLiteBindable)?] = [session]
            for type in types { bindings.append(type) }
            bindings.append(limit)
            return try connection.query(sql, bindings) { row in
                StoredEvent(session: session, seq: try row.int64(0), type: try row.string(1), ts: try row.string(2), json: try row.string(3))
            }
        }
    }
}
