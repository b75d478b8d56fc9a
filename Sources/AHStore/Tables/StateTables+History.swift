import Foundation

extension StateTables {
    func recordHistory(kind: HistoryKind, name: String?, spiffeID: String?, detail: String, now: Date) throws {
        try database.transaction { connection in
            try Self.appendHistory(connection, kind: kind, name: name, spiffeID: spiffeID, detail: detail, now: now)
        }
    }

    func history(executorName: String?, limit: Int) throws -> [HistoryEntry] {
        let limit = min(limit, Limits.maxHistoryRows)
        guard limit > 0 else { return [] }
        return try database.withConnection { connection in
            if let executorName {
                return try connection.query(
                    "SELECT \(Self.historyColumns) FROM identity_history WHERE executor_name = ? ORDER BY id DESC LIMIT ?",
                    [executorName, limit], Self.historyEntry)
            }
            return try connection.query(
                "SELECT \(Self.historyColumns) FROM identity_history ORDER BY id DESC LIMIT ?", [limit], Self.historyEntry)
        }
    }

    /// Sync overload of the protocol extension's convenience, for callers of the concrete type.
    func history(limit: Int) throws -> [HistoryEntry] {
        try history(executorName: nil, limit: limit)
    }

    /// Appends a row inside the caller's transaction, so a decision and its record commit
    /// (or roll back) together. Names and details may come from a remote peer: bounded here.
    static func appendHistory(_ connection: SQLiteConnection, kind: HistoryKind, name: String?, spiffeID: String?,
                              detail: String, now: Date) throws {
        try connection.execute(
            "INSERT INTO identity_history (at, kind, executor_name, spiffe_id, detail) VALUES (?, ?, ?, ?, ?)",
            [UnixMillis.from(now), Limits.truncated(kind.rawValue, 64), name.map { Limits.truncated($0, 255) },
             spiffeID.map { Limits.truncated($0, 2048) }, Limits.truncated(detail)])
    }

    static let historyColumns = "id, at, kind, executor_name, spiffe_id, detail"

    static func historyEntry(_ row: SQLiteRow) throws -> HistoryEntry {
        HistoryEntry(id: try row.int64(0),
                     at: UnixMillis.date(try row.int64(1)),
                     kind: HistoryKind(rawValue: try row.string(2)),
                     executorName: try row.optionalString(3),
                     spiffeID: try row.optionalString(4),
                     detail: try row.string(5))
    }
}
