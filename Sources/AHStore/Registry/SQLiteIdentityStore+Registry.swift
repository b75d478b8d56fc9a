import Foundation

extension SQLiteIdentityStore: RegistryStore {
    /// Facts come from the executor (bounded by the control frame size, 64 KiB); capped here
    /// again so that the state file cannot grow from one executor's reports.
    static let maxFactsBytes = 64 * 1024

    public func recordFacts(name: String, factsJSON: String, now: Date) throws {
        guard factsJSON.utf8.count <= Self.maxFactsBytes else {
            throw IdentityStoreError.invalidArgument("facts of \(factsJSON.utf8.count) bytes exceed \(Self.maxFactsBytes)")
        }
        try database.transaction { connection in
            try connection.execute(
                """
                INSERT INTO executor_facts (name, facts_json, reported_at) VALUES (?, ?, ?)
                ON CONFLICT (name) DO UPDATE SET facts_json = excluded.facts_json, reported_at = excluded.reported_at
                """,
                [Limits.truncated(name, 255), factsJSON, UnixMillis.from(now)])
        }
    }

    public func allFacts() throws -> [String: ExecutorFacts] {
        try database.withConnection { connection in
            let rows = try connection.query("SELECT name, facts_json, reported_at FROM executor_facts") { row in
                (try row.string(0), ExecutorFacts(json: try row.string(1), reportedAt: UnixMillis.date(try row.int64(2))))
            }
            return Dictionary(rows, uniquingKeysWith: { first, _ in first })
        }
    }

    public func tunnelStarted(_ attempt: TunnelAttempt, now: Date) throws -> Int64 {
        try database.transaction { connection in
            try connection.execute(
                "INSERT INTO tunnels (subject, executor_name, port, remote, started_at, ended_at, result, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [attempt.subject.map { Limits.truncated($0, 255) }, Limits.truncated(attempt.executorName, 255), attempt.port,
                 Limits.truncated(attempt.remote, 255), UnixMillis.from(now),
                 attempt.result == "open" ? nil : UnixMillis.from(now),
                 Limits.truncated(attempt.result, 32), Limits.truncated(attempt.detail)])
            return connection.lastInsertRowID
        }
    }

    public func tunnelEnded(id: Int64, bytesUp: Int, bytesDown: Int, result: String, detail: String, now: Date) throws {
        try database.transaction { connection in
            try connection.execute(
                "UPDATE tunnels SET ended_at = ?, bytes_up = ?, bytes_down = ?, result = ?, detail = ? WHERE id = ?",
                [UnixMillis.from(now), bytesUp, bytesDown, Limits.truncated(result, 32), Limits.truncated(detail), id])
        }
    }

    public func tunnels(executorName: String?, limit: Int) throws -> [TunnelRecord] {
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
}
