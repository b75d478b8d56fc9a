import CSQLite

/// `SQLITE_TRANSIENT`: SQLite copies bound text and blobs before the call returns, so the
/// Swift buffers only need to live for the duration of the bind call. (The C macro is a cast
/// of -1 to a function pointer, which Swift cannot import.)
private var sqliteTransient: sqlite3_destructor_type {
    unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}

/// One prepared statement. It belongs to the connection that prepared it and, like the
/// connection, is only used while the owning `SQLiteDatabase`'s lock is held; it is
/// deliberately not `Sendable`.
public final class SQLiteStatement {
    private var handle: OpaquePointer?
    private let connection: OpaquePointer
    /// The SQL as written, for error messages.
    public let sql: String

    init(connection: OpaquePointer, sql: String) throws {
        self.connection = connection
        self.sql = sql
        var statement: OpaquePointer?
        var trailingText = false
        let rc = sql.withCString { text -> Int32 in
            var tail: UnsafePointer<CChar>?
            let rc = sqlite3_prepare_v2(connection, text, -1, &statement, &tail)
            // `tail` points into this buffer, so inspect it here.
            if rc == SQLITE_OK, let tail {
                trailingText = !String(cString: tail).allSatisfy(\.isWhitespace)
            }
            return rc
        }
        guard rc == SQLITE_OK else {
            sqlite3_finalize(statement)
            throw SQLiteError.last(connection, code: rc, sql: sql)
        }
        guard let statement else {
            throw SQLiteError.misuse("empty statement", sql: sql)
        }
        // Exactly one statement per prepare: SQLite would silently ignore a second one, which
        // hides mistakes (multi-statement scripts go through `executeScript`).
        guard !trailingText else {
            sqlite3_finalize(statement)
            throw SQLiteError.misuse("more than one statement in one prepare", sql: sql)
        }
        self.handle = statement
    }

    deinit {
        sqlite3_finalize(handle)
    }

    private var statement: OpaquePointer {
        get throws {
            guard let handle else { throw SQLiteError.misuse("statement already finalized", sql: sql) }
            return handle
        }
    }

    /// Number of `?` parameters the statement expects.
    public var parameterCount: Int {
        handle.map { Int(sqlite3_bind_parameter_count($0)) } ?? 0
    }

    // MARK: Binding (1-based indices, as in SQLite)

    public func bind(_ value: Int64, at index: Int32) throws {
        try check(sqlite3_bind_int64(statement, index, value))
    }

    public func bind(_ value: Double, at index: Int32) throws {
        try check(sqlite3_bind_double(statement, index, value))
    }

    public func bind(_ value: String, at index: Int32) throws {
        let statement = try statement
        // withCString gives a non-nil pointer even for "" (a nil pointer would bind NULL);
        // the explicit byte length keeps embedded NULs.
        let length = UInt64(value.utf8.count)
        try check(value.withCString { sqlite3_bind_text64(statement, index, $0, length, sqliteTransient, UInt8(SQLITE_UTF8)) })
    }

    public func bind(_ value: [UInt8], at index: Int32) throws {
        let statement = try statement
        if value.isEmpty {
            // An empty array may have no base address, and a nil pointer would bind NULL.
            try check(sqlite3_bind_zeroblob(statement, index, 0))
            return
        }
        try check(value.withUnsafeBytes { sqlite3_bind_blob64(statement, index, $0.baseAddress, UInt64($0.count), sqliteTransient) })
    }

    public func bindNull(at index: Int32) throws {
        try check(sqlite3_bind_null(statement, index))
    }

    public func bind(_ value: SQLiteValue, at index: Int32) throws {
        switch value {
        case .integer(let v): try bind(v, at: index)
        case .real(let v): try bind(v, at: index)
        case .text(let v): try bind(v, at: index)
        case .blob(let v): try bind(v, at: index)
        case .null: try bindNull(at: index)
        }
    }

    /// Binds all parameters in order; the count must match the statement's placeholders, so a
    /// forgotten or extra value is an error rather than a silent NULL.
    public func bind(_ values: [(any SQLiteBindable)?]) throws {
        guard values.count == parameterCount else {
            throw SQLiteError(code: SQLITE_RANGE,
                              message: "statement has \(parameterCount) parameters but \(values.count) values were given",
                              sql: sql)
        }
        for (offset, value) in values.enumerated() {
            try bind(value?.sqliteValue ?? .null, at: Int32(offset + 1))
        }
    }

    // MARK: Running

    /// Advances to the next row: `true` when a row is available (read it with `row`),
    /// `false` when the statement has finished.
    public func step() throws -> Bool {
        let rc = sqlite3_step(try statement)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw SQLiteError.last(connection, code: rc, sql: sql)
        }
    }

    /// The current row; valid until the next `step`, `reset` or finalization.
    public var row: SQLiteRow { SQLiteRow(statement: handle, sql: sql) }

    /// Makes the statement runnable again and clears its bindings.
    public func reset() {
        guard let handle else { return }
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    /// Releases the statement now instead of at deinit.
    public func finalize() {
        sqlite3_finalize(handle)
        handle = nil
    }

    private func check(_ rc: Int32) throws {
        guard rc == SQLITE_OK else { throw SQLiteError.last(connection, code: rc, sql: sql) }
    }
}
