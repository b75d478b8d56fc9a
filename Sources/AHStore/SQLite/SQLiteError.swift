import CSQLite

/// A failure reported by SQLite, carrying everything needed to understand it from a log line:
/// the result code, SQLite's own message and the statement that failed.
///
/// The SQL text is the statement as written in the code (values are always bound, never
/// spliced in), so it never contains secrets such as token hashes and is safe to log.
public struct SQLiteError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The extended result code (e.g. `SQLITE_BUSY_SNAPSHOT`); `code & 0xff` is the primary one.
    public let extendedCode: Int32
    /// SQLite's message (`sqlite3_errmsg`) or our own explanation when SQLite did not fail.
    public let message: String
    /// The statement being prepared or run, if any.
    public let sql: String?

    public init(code: Int32, message: String, sql: String? = nil) {
        self.extendedCode = code
        self.message = message
        self.sql = sql
    }

    /// The primary result code, e.g. `SQLITE_BUSY` for every busy variant.
    public var code: Int32 { extendedCode & 0xff }

    /// Another connection (or process) holds the lock we need; worth retrying.
    public var isBusy: Bool { code == SQLITE_BUSY || code == SQLITE_LOCKED }

    /// A UNIQUE, NOT NULL, CHECK or foreign-key constraint refused the change.
    public var isConstraintViolation: Bool { code == SQLITE_CONSTRAINT }

    public var description: String {
        let name = String(cString: sqlite3_errstr(extendedCode))
        var text = "SQLite error \(extendedCode) (\(name)): \(message)"
        if let sql {
            // Statements are short constants, but keep log lines bounded regardless.
            let limit = 400
            let shown = sql.count > limit ? String(sql.prefix(limit)) + "…" : sql
            text += " [SQL: \(shown)]"
        }
        return text
    }

    /// Builds an error from the connection's last failure.
    static func last(_ handle: OpaquePointer?, code: Int32, sql: String?) -> SQLiteError {
        let message = handle.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) }
            ?? String(cString: sqlite3_errstr(code))
        let extended = handle.map { sqlite3_extended_errcode($0) } ?? code
        // sqlite3_extended_errcode can lag behind when the call did not go through the handle
        // (e.g. a misuse detected before touching it); prefer it only when it agrees.
        return SQLiteError(code: (extended & 0xff) == (code & 0xff) ? extended : code, message: message, sql: sql)
    }

    /// A misuse detected on our side (bad column type, closed database, ...).
    static func misuse(_ message: String, sql: String? = nil) -> SQLiteError {
        SQLiteError(code: SQLITE_MISUSE, message: message, sql: sql)
    }
}
