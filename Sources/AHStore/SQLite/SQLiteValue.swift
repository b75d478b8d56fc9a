import Foundation

/// One value as SQLite stores it. Everything we write goes through one of these five cases,
/// so the binding code is the only place that converts Swift values to SQLite's types.
public enum SQLiteValue: Sendable, Equatable {
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
    case null
}

/// A Swift type that can be bound to a statement parameter.
///
/// Statements take their parameters as `[(any SQLiteBindable)?]`, so a call site reads
/// `["name", Int64(3), keyHash, nil]` and `nil` (or any `nil` optional) binds SQL NULL.
public protocol SQLiteBindable: Sendable {
    var sqliteValue: SQLiteValue { get }
}

extension SQLiteValue: SQLiteBindable {
    public var sqliteValue: SQLiteValue { self }
}

extension Int64: SQLiteBindable {
    public var sqliteValue: SQLiteValue { .integer(self) }
}

extension Int: SQLiteBindable {
    public var sqliteValue: SQLiteValue { .integer(Int64(self)) }
}

extension Int32: SQLiteBindable {
    public var sqliteValue: SQLiteValue { .integer(Int64(self)) }
}

/// Booleans are stored as 0/1 integers (SQLite has no boolean type).
extension Bool: SQLiteBindable {
    public var sqliteValue: SQLiteValue { .integer(self ? 1 : 0) }
}

extension Double: SQLiteBindable {
    public var sqliteValue: SQLiteValue { .real(self) }
}

extension String: SQLiteBindable {
    public var sqliteValue: SQLiteValue { .text(self) }
}

extension Array: SQLiteBindable where Element == UInt8 {
    public var sqliteValue: SQLiteValue { .blob(self) }
}

extension Data: SQLiteBindable {
    public var sqliteValue: SQLiteValue { .blob([UInt8](self)) }
}
