import Foundation

extension StateTables {
    /// At most `limit` tunnel rows with an id below `before` (all when nil), newest first: one
    /// page of `GET /api/v1/tunnels`. Keyed on the primary key, so a page costs the same
    /// however deep it is, and rows added meanwhile do not shift later pages.
    func tunnelPage(before: Int64?, limit: Int) throws -> [TunnelRecord] {
        let limit = min(max(limit, 0), Limits.maxHistoryRows)
        let columns = "id, subject, executor_name, port, remote, started_at, ended_at, bytes_up, bytes_down, result, detail"
        return try database.withConnection { connection in
            try connection.query("SELECT \(columns) FROM tunnels WHERE id < ? ORDER BY id DESC LIMIT ?",
                                 [before ?? Int64.max, limit]) { row in
                TunnelRecord(id: try row.int64(0), subject: try row.optionalString(1), executorName: try row.string(2),
                             port: try row.int(3), remote: try row.string(4), startedAt: UnixMillis.date(try row.int64(5)),
                             endedAt: try row.optionalInt64(6).map(UnixMillis.date), bytesUp: try row.int(7),
                             bytesDown: try row.int(8), result: try row.string(9), detail: try row.string(10))
            }
        }
    }
}
