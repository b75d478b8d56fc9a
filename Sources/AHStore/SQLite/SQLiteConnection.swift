import CSQLite

/// An open `sqlite3*` handle and the statement helpers built on it.
///
/// Not `Sendable`: a connection is only reachable inside `SQLiteDatabase.withConnection` /
/// `transaction`, which hold the database's lock, so exactly one thread uses it at a time.
/// (It is also opened with `SQLITE_OPEN_FULLMUTEX`, as a second line of defence.)
public final class SQLiteConnection {
    let handle: OpaquePointer

    init(handle: OpaquePointer) {
        self.handle = handle
    }

    /// Prepares one statement. Use it directly to run the same statement many times.
    public func prepare(_ sql: String) throws -> SQLiteStatement {
        try SQLiteStatement(connection: handle, sql: sql)
    }

    /// Runs a statement that returns no rows of interest; returns the number of rows changed.
    @discardableResult
    public func execute(_ sql: String, _ bindings: [(any SQLiteBindable)?] = []) throws -> Int {
        let statement = try prepare(sql)
        try statement.bind(bindings)
        while try statement.step() {}
        return Int(sqlite3_changes(handle))
    }

    /// Runs a query and maps every row.
    public func query<T>(_ sql: String, _ bindings: [(any SQLiteBindable)?] = [],
                         _ map: (SQLiteRow) throws -> T) throws -> [T] {
        let statement = try prepare(sql)
        try statement.bind(bindings)
        var results: [T] = []
        while try statement.step() {
            results.append(try map(statement.row))
        }
        return results
    }

    /// Runs a query and maps its first row, if any (further rows are not read).
    public func queryFirst<T>(_ sql: String, _ bindings: [(any SQLiteBindable)?] = [],
                              _ map: (SQLiteRow) throws -> T) throws -> T? {
        let statement = try prepare(sql)
        try statement.bind(bindings)
        guard try statement.step() else { return nil }
        return try map(statement.row)
    }

    /// Runs a script of several statements without parameters. Only for constant SQL written
    /// in this module (schema migrations): there is no way to bind values here.
    public func executeScript(_ sql: String) throws {
        var errorMessage: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &errorMessage)
        defer { sqlite3_free(errorMessage) }
        guard rc == SQLITE_OK else {
            let message = errorMessage.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            throw SQLiteError(code: sqlite3_extended_errcode(handle), message: message, sql: sql)
        }
    }

    /// The rowid of the most recent successful INSERT on this connection.
    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// Whether a transaction is open (SQLite is not in autocommit mode).
    public var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    /// `PRAGMA user_version`: the schema version the migrations have reached.
    public func userVersion() throws -> Int {
        try queryFirst("PRAGMA user_version") { try $0.int(0) } ?? 0
    }

    public func setUserVersion(_ version: Int) throws {
        // PRAGMA values cannot be bound. `version` is an Int, so its decimal form cannot carry
        // anything but digits and a sign.
        try execute("PRAGMA user_version = \(version)")
    }

    /// `PRAGMA data_version`: changes whenever another connection (e.g. another process)
    /// has committed to the file since this connection last looked; never for our own commits.
    public func dataVersion() throws -> Int64 {
        try queryFirst("PRAGMA data_version") { try $0.int64(0) } ?? 0
    }

    /// The current journal mode in lower case, e.g. "wal".
    public func journalMode() throws -> String {
        try queryFirst("PRAGMA journal_mode") { try $0.string(0) }?.lowercased() ?? ""
    }
}
