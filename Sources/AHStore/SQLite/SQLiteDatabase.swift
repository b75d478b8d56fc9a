import CSQLite
import Foundation

/// One SQLite connection to a database file, safe to share between threads and tasks.
///
/// Every use goes through `withConnection` or `transaction`, which hold a lock for the whole
/// call, so the `sqlite3*` handle and its statements are touched by one thread at a time.
/// The lock is recursive so that a read nested inside a transaction body on the same thread
/// sees that transaction (and a nested `transaction` fails with an error, not a deadlock).
/// Concurrency between processes is SQLite's job: WAL lets readers run beside the single
/// writer, and writers queue on the busy timeout plus `BusyRetry`.
public final class SQLiteDatabase: @unchecked Sendable {
    /// The file this database was opened from.
    public let path: String
    public let options: SQLiteOptions

    private let lock = NSRecursiveLock()
    /// nil once closed. Guarded by `lock`.
    private var connection: SQLiteConnection?

    /// Opens (creating if needed, with `options.fileMode`) the database at `path` and sets it
    /// up for concurrent use: WAL journal, foreign keys on, `synchronous=NORMAL` (durable at
    /// every checkpoint, and with WAL a crash can lose at most the last transactions, never
    /// corrupt the file), and the busy timeout.
    public init(path: String, options: SQLiteOptions = SQLiteOptions()) throws {
        self.path = path
        self.options = options
        try SQLiteFile.createIfMissing(path, mode: options.fileMode)

        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            let error = SQLiteError.last(handle, code: rc, sql: nil)
            sqlite3_close_v2(handle)
            throw SQLiteError(code: error.extendedCode, message: "cannot open \(path): \(error.message)")
        }
        sqlite3_extended_result_codes(handle, 1)
        sqlite3_busy_timeout(handle, options.busyTimeout.sqliteMilliseconds)
        let connection = SQLiteConnection(handle: handle)
        self.connection = connection
        do {
            try Self.configure(connection, options: options, path: path)
        } catch {
            close()
            throw error
        }
    }

    private static func configure(_ connection: SQLiteConnection, options: SQLiteOptions, path: String) throws {
        // Switching to WAL needs a moment of exclusive access when the file is new, which can
        // collide with another process doing the same first start.
        let mode = try BusyRetry(limit: options.busyRetryLimit).run {
            try connection.queryFirst("PRAGMA journal_mode=WAL") { try $0.string(0) }?.lowercased()
        }
        guard mode == "wal" else {
            throw SQLiteError(code: SQLITE_ERROR,
                              message: "\(path) cannot use write-ahead logging (journal mode stays \(mode ?? "unknown")); " +
                                  "WAL needs a local filesystem that supports shared memory")
        }
        try connection.execute("PRAGMA foreign_keys=ON")
        try connection.execute("PRAGMA synchronous=NORMAL")
    }

    deinit {
        if let connection { sqlite3_close_v2(connection.handle) }
    }

    /// Closes the connection. Later calls fail with "database is closed". Idempotent.
    public func close() {
        lock.lock()
        defer { lock.unlock() }
        guard let connection else { return }
        // close_v2 defers the real close until any statement a caller kept is finalized.
        sqlite3_close_v2(connection.handle)
        self.connection = nil
    }

    /// Runs `body` with exclusive use of the connection. Statements run in autocommit mode
    /// unless `body` is inside `transaction`.
    @discardableResult
    public func withConnection<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        guard let connection else { throw SQLiteError.misuse("database \(path) is closed") }
        return try body(connection)
    }

    /// Runs `body` in a write transaction: `BEGIN IMMEDIATE` (so the write lock is taken up
    /// front and the transaction can never fail half-way for lack of it), then `COMMIT`, or
    /// `ROLLBACK` if `body` or the commit throws. Both BEGIN and COMMIT are retried while the
    /// database is busy, up to `options.busyRetryLimit`.
    @discardableResult
    public func transaction<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        try withConnection { connection in
            guard !connection.isInTransaction else {
                throw SQLiteError.misuse("transaction started inside another transaction on \(path)")
            }
            let retry = BusyRetry(limit: options.busyRetryLimit)
            try retry.run { try connection.execute("BEGIN IMMEDIATE") }
            do {
                let result = try body(connection)
                // If COMMIT reports busy the transaction stays open and COMMIT may be retried.
                try retry.run { try connection.execute("COMMIT") }
                return result
            } catch {
                if connection.isInTransaction {
                    _ = try? connection.execute("ROLLBACK")
                }
                throw error
            }
        }
    }
}
