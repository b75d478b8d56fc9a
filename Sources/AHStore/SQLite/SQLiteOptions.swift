/// How a `SQLiteDatabase` is opened and how long it waits for other writers.
public struct SQLiteOptions: Sendable {
    /// How long SQLite's own busy handler (`sqlite3_busy_timeout`) sleeps and retries a locked
    /// database inside a single call before that call reports `SQLITE_BUSY`.
    public var busyTimeout: Duration
    /// How long `transaction` keeps retrying `BEGIN IMMEDIATE` and `COMMIT` that still report
    /// `SQLITE_BUSY` after the busy handler gave up. SQLite skips the busy handler in some
    /// cases (e.g. to avoid deadlock, or while another connection recovers the WAL), so the
    /// handler alone is not enough; this bound keeps a stuck peer from hanging us forever.
    public var busyRetryLimit: Duration
    /// Permission bits of the database file when this open creates it. SQLite gives the
    /// `-wal` and `-shm` files the same bits as the database file.
    public var fileMode: UInt16

    public init(busyTimeout: Duration = .seconds(5), busyRetryLimit: Duration = .seconds(10), fileMode: UInt16 = 0o600) {
        self.busyTimeout = busyTimeout
        self.busyRetryLimit = busyRetryLimit
        self.fileMode = fileMode
    }
}

extension Duration {
    /// Whole milliseconds, saturating at `Int32.max` (the unit and range of sqlite3_busy_timeout).
    var sqliteMilliseconds: Int32 {
        let (seconds, attoseconds) = components
        let ms = seconds.multipliedReportingOverflow(by: 1000)
        if ms.overflow || ms.partialValue > Int64(Int32.max) { return Int32.max }
        let total = ms.partialValue + attoseconds / 1_000_000_000_000_000
        return Int32(clamping: max(0, total))
    }

    var timeInterval: Double {
        Double(components.seconds) + Double(components.attoseconds) * 1e-18
    }
}
