import Foundation

/// A UTC time as ISO 8601 with whole seconds ("2026-12-03T14:26:57Z"), the shape
/// `ISO8601DateFormatter` gives, made with gmtime_r. `ISO8601DateFormatter` goes through ICU
/// and pulls about 5 MiB of its data into the leader service's resident memory, which has a
/// budget of 64 MiB at 64 followers (docs/benchmarks.md, "Fan-out").
enum UTCStamp {
    static func now() -> String { format(Date()) }

    static func format(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
            + "T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))Z"
    }

    private static func pad(_ value: Int32, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
