import CSQLite
import Foundation

/// Typed, 0-based column reads of the current row of a statement.
///
/// Non-optional reads throw when the column is NULL (or holds another type than asked for),
/// so a schema mismatch surfaces as an error naming the column instead of as a silent 0 or "".
public struct SQLiteRow {
    let statement: OpaquePointer?
    let sql: String

    public var columnCount: Int32 { statement.map { sqlite3_column_count($0) } ?? 0 }

    public func columnName(_ index: Int32) -> String {
        guard let statement, let name = sqlite3_column_name(statement, index) else { return "#\(index)" }
        return String(cString: name)
    }

    public func isNull(_ index: Int32) -> Bool {
        type(index) == SQLITE_NULL
    }

    public func int64(_ index: Int32) throws -> Int64 {
        try expect(index, SQLITE_INTEGER, "integer")
        return sqlite3_column_int64(statement, index)
    }

    public func optionalInt64(_ index: Int32) throws -> Int64? {
        isNull(index) ? nil : try int64(index)
    }

    public func int(_ index: Int32) throws -> Int {
        Int(try int64(index))
    }

    /// Integers are accepted too (SQLite may store a whole REAL as an integer).
    public func double(_ index: Int32) throws -> Double {
        let actual = type(index)
        guard actual == SQLITE_FLOAT || actual == SQLITE_INTEGER else {
            throw mismatch(index, expected: "real", actual: actual)
        }
        return sqlite3_column_double(statement, index)
    }

    public func optionalDouble(_ index: Int32) throws -> Double? {
        isNull(index) ? nil : try double(index)
    }

    public func string(_ index: Int32) throws -> String {
        try expect(index, SQLITE_TEXT, "text")
        // Read the pointer before the length, as SQLite's documentation requires.
        guard let text = sqlite3_column_text(statement, index) else { return "" }
        let count = Int(sqlite3_column_bytes(statement, index))
        return String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self)
    }

    public func optionalString(_ index: Int32) throws -> String? {
        isNull(index) ? nil : try string(index)
    }

    public func bytes(_ index: Int32) throws -> [UInt8] {
        try expect(index, SQLITE_BLOB, "blob")
        guard let blob = sqlite3_column_blob(statement, index) else { return [] } // zero-length blob
        let count = Int(sqlite3_column_bytes(statement, index))
        return [UInt8](UnsafeRawBufferPointer(start: blob, count: count))
    }

    public func optionalBytes(_ index: Int32) throws -> [UInt8]? {
        isNull(index) ? nil : try bytes(index)
    }

    public func data(_ index: Int32) throws -> Data {
        Data(try bytes(index))
    }

    /// The column as whatever SQLite holds, for generic code and diagnostics.
    public func value(_ index: Int32) throws -> SQLiteValue {
        switch type(index) {
        case SQLITE_INTEGER: return .integer(try int64(index))
        case SQLITE_FLOAT: return .real(try double(index))
        case SQLITE_TEXT: return .text(try string(index))
        case SQLITE_BLOB: return .blob(try bytes(index))
        default: return .null
        }
    }

    private func type(_ index: Int32) -> Int32 {
        guard let statement else { return SQLITE_NULL }
        return sqlite3_column_type(statement, index)
    }

    private func expect(_ index: Int32, _ expected: Int32, _ name: String) throws {
        guard statement != nil else { throw SQLiteError.misuse("no current row", sql: sql) }
        guard index >= 0, index < columnCount else {
            throw SQLiteError(code: SQLITE_RANGE, message: "column \(index) out of range (\(columnCount) columns)", sql: sql)
        }
        let actual = type(index)
        guard actual == expected else { throw mismatch(index, expected: name, actual: actual) }
    }

    private func mismatch(_ index: Int32, expected: String, actual: Int32) -> SQLiteError {
        let names = [SQLITE_INTEGER: "integer", SQLITE_FLOAT: "real", SQLITE_TEXT: "text",
                     SQLITE_BLOB: "blob", SQLITE_NULL: "NULL"]
        return SQLiteError(code: SQLITE_MISMATCH,
                           message: "column \(index) (\(columnName(index))) is \(names[actual] ?? "unknown"), expected \(expected)",
                           sql: sql)
    }
}
