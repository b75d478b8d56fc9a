import Foundation

extension StateTables {
    /// Facts come from the executor (bounded by the control frame size, 64 KiB); capped here
    /// again so that the state file cannot grow from one executor's reports.
    static let maxFactsBytes = 64 * 1024

    func recordFacts(name: String, facts: ExecutorFacts, now: Date) throws {
        let json = try StoredFacts.encode(facts)
        guard json.utf8.count <= Self.maxFactsBytes else {
            throw IdentityStoreError.invalidArgument("facts of \(json.utf8.count) bytes exceed \(Self.maxFactsBytes)")
        }
        try database.transaction { connection in
            try connection.execute(
                """
                INSERT INTO executor_facts (name, facts_json, reported_at) VALUES (?, ?, ?)
                ON CONFLICT (name) DO UPDATE SET facts_json = excluded.facts_json, reported_at = excluded.reported_at
                """,
                [Limits.truncated(name, 255), json, UnixMillis.from(now)])
        }
    }

    /// Every executor's last facts, by name. A row that cannot be decoded is left out and
    /// reported through `unreadable` (one bad row must not hide the whole fleet).
    func allFacts(unreadable: (String, Error) -> Void = { _, _ in }) throws -> [String: ReportedFacts] {
        let rows = try database.withConnection { connection in
            try connection.query("SELECT name, facts_json, reported_at FROM executor_facts") { row in
                (try row.string(0), try row.string(1), UnixMillis.date(try row.int64(2)))
            }
        }
        var result: [String: ReportedFacts] = [:]
        for (name, json, reportedAt) in rows {
            do {
                result[name] = ReportedFacts(facts: try StoredFacts.decode(json, name: name), reportedAt: reportedAt)
            } catch {
                unreadable(name, error)
            }
        }
        return result
    }

    /// The highest tunnel id ever handed out (rows may have been pruned since; AUTOINCREMENT's
    /// `sqlite_sequence` remembers), so new ids never repeat an old one.
    func highestTunnelID() throws -> Int64 {
        try database.withConnection { connection in
            let sequence = try connection.queryFirst("SELECT seq FROM sqlite_sequence WHERE name = 'tunnels'") {
                try $0.int64(0)
            } ?? 0
            let rows = try connection.queryFirst("SELECT COALESCE(MAX(id), 0) FROM tunnels") { try $0.int64(0) } ?? 0
            return max(sequence, rows)
        }
    }

    /// Inserts the audit row of a tunnel attempt under an id the caller allocated.
    func insertTunnel(id: Int64, _ attempt: TunnelAttempt, now: Date) throws {
        try database.transaction { connection in
            try connection.execute(
                """
                INSERT INTO tunnels (id, subject, executor_name, port, remote, started_at, ended_at, result, detail)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [id, attempt.subject.map { Limits.truncated($0, 255) }, Limits.truncated(attempt.executorName, 255),
                 attempt.port, Limits.truncated(attempt.remote, 255), UnixMillis.from(now),
                 attempt.result == "open" ? nil : UnixMillis.from(now),
                 Limits.truncated(attempt.result, 32), Limits.truncated(attempt.detail)])
        }
    }

    func tunnelEnded(id: Int64, bytesUp: Int, bytesDown: Int, result: String, detail: String, now: Date) throws {
        try database.transaction { connection in
            try connection.execute(
                "UPDATE tunnels SET ended_at = ?, bytes_up = ?, bytes_down = ?, result = ?, detail = ? WHERE id = ?",
                [UnixMillis.from(now), bytesUp, bytesDown, Limits.truncated(result, 32), Limits.truncated(detail), id])
        }
    }

    func tunnels(executorName: String?, limit: Int) throws -> [TunnelRecord] {
        let limit = min(max(limit, 0), Limits.maxHistoryRows)
        let columns = "id, subject, executor_name, port, remote, started_at, ended_at, bytes_up, bytes_down, result, detail"
        let map: (SQLiteRow) throws -> TunnelRecord = { row in
            TunnelRecord(id: try row.int64(0), subject: try row.optionalString(1), executorName: try row.string(2),
                         port: try row.int(3), remote: try row.string(4), startedAt: UnixMillis.date(try row.int64(5)),
                         endedAt: try row.optionalInt64(6).map(UnixMillis.date), bytesUp: try row.int(7),
                         bytesDown: try row.int(8), result: try row.string(9), detail: try row.string(10))
        }
        return try database.withConnection { connection in
            if let executorName {
                return try connection.query("SELECT \(columns) FROM tunnels WHERE executor_name = ? ORDER BY id DESC LIMIT ?",
                                            [executorName, limit], map)
            }
            return try connection.query("SELECT \(columns) FROM tunnels ORDER BY id DESC LIMIT ?", [limit], map)
        }
    }

    /// Deletes at most `limit` tunnel rows and `limit` history rows older than `cutoff`, oldest
    /// first, in one short transaction. The indexes on the time columns (schema version 3)
    /// keep each call proportional to what it deletes, not to the table size.
    ///
    /// A tunnel row counts by its start, and is kept while it ended after the cutoff; a row
    /// left `open` by a crash is pruned by its start time.
    func pruneAudit(before cutoff: Date, limit: Int) throws -> AuditPruneResult {
        let limit = max(limit, 0)
        guard limit > 0 else { return AuditPruneResult(tunnels: 0, history: 0) }
        let millis = UnixMillis.from(cutoff)
        return try database.transaction { connection in
            let tunnels = try connection.execute(
                """
                DELETE FROM tunnels WHERE id IN (
                    SELECT id FROM tunnels WHERE started_at < ? AND (ended_at IS NULL OR ended_at < ?)
                    ORDER BY started_at LIMIT ?)
                """, [millis, millis, limit])
            let history = try connection.execute(
                "DELETE FROM identity_history WHERE id IN (SELECT id FROM identity_history WHERE at < ? ORDER BY at LIMIT ?)",
                [millis, limit])
            return AuditPruneResult(tunnels: tunnels, history: history)
        }
    }
}
