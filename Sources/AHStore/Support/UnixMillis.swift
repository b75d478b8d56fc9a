import Foundation

/// Timestamps are stored as INTEGER unix milliseconds: compact, sortable, timezone-free, and
/// the same in SQLite and PostgreSQL (BIGINT). Sub-millisecond precision is dropped.
enum UnixMillis {
    static func from(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
    }

    static func date(_ millis: Int64) -> Date {
        Date(timeIntervalSince1970: Double(millis) / 1000)
    }

    static func date(_ millis: Int64?) -> Date? {
        millis.map(date)
    }
}
