import AHStore
import Foundation

/// What every slurp brought in, in the leader's state (`leader-KEY.sqlite`, table
/// `slurped_files`, beside the event journal's tables): one row per file placed, with the
/// host it came from, its workspace path, size, mtime, SHA-256 and where it now is — so a
/// REST consumer can later list or fetch per-host bundles. Written through the journal's
/// serial writer, so rows and events keep one order.
struct SlurpLedger {
    let journal: EventJournal

    init(journal: EventJournal) throws {
        self.journal = journal
        try journal.database.withConnection { connection in
            try connection.executeScript("""
                CREATE TABLE IF NOT EXISTS slurped_files (
                    session TEXT NOT NULL,
                    slurp_id TEXT NOT NULL,
                    fileset TEXT NOT NULL,
                    host TEXT NOT NULL,
                    path TEXT NOT NULL,
                    size INTEGER NOT NULL,
                    mtime_ns INTEGER NOT NULL,
                    sha256 TEXT NOT NULL,
                    dest TEXT NOT NULL,
                    recorded_at TEXT NOT NULL,
                    PRIMARY KEY (slurp_id, fileset, host, path)
                ) WITHOUT ROWID;
                CREATE INDEX IF NOT EXISTS slurped_files_by_session ON slurped_files (session, fileset, host);
                """)
        }
    }

    struct Row: Sendable {
        var fileset: String
        var host: String
        var path: String
        var size: Int64
        var mtimeNanos: Int64
        var sha256: String
        var dest: String
    }

    /// Queues the rows of one set/host (one transaction).
    func record(slurpID: String, rows: [Row]) {
        guard !rows.isEmpty else { return }
        let database = journal.database
        let session = journal.session
        let now = UTCStamp.nowMillis()
        journal.worker.enqueue("slurped files of \(rows[0].host)") {
            try database.transaction { connection in
                for row in rows {
                    _ = try connection.execute("""
                        INSERT OR REPLACE INTO slurped_files (session, slurp_id, fileset, host, path, size, mtime_ns, sha256, dest, recorded_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """, [session, slurpID, row.fileset, row.host, row.path, row.size, row.mtimeNanos, row.sha256, row.dest, now])
                }
            }
        }
    }

    /// Every row of this session (tests and later REST reads).
    func rows() async throws -> [Row] {
        let database = journal.database
        let session = journal.session
        return try await journal.worker.run {
            try database.withConnection { connection in
                try connection.query("""
                    SELECT fileset, host, path, size, mtime_ns, sha256, dest FROM slurped_files WHERE session = ?
                    ORDER BY fileset, host, path
                    """, [session]) { row in
                    Row(fileset: try row.string(0), host: try row.string(1), path: try row.string(2), size: try row.int64(3),
                        mtimeNanos: try row.int64(4), sha256: try row.string(5), dest: try row.string(6))
                }
            }
        }
    }
}
