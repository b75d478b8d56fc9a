import Foundation

/// A UTC time as ISO 8601 with whole seconds ("2026-12-03T14:26:57Z"), the shape
/// `ISO8601DateFormatter` gives, made with gmtime_r. `ISO8601DateFormatter` goes through ICU
/// and pulls about 5 MiB of its data into the leader service's resident memory, which has a
/// budget of 64 MiB at 64 followers (docs/benchmarks.md, "Fan-out").
enum UTCStamp {
    static func now() -> String { format(Date()) }

    static func format(_ date: Date) -> String {
        let (parts, _) = split(date)
        return stamp(parts) + "Z"
    }

    /// With milliseconds ("2026-12-03T14:26:57.123Z"), the shape of
    /// `Date.ISO8601FormatStyle(includingFractionalSeconds: true)`, which cost the event
    /// journal several microseconds per event (bench/events).
    static func nowMillis() -> String { formatMillis(Date()) }

    static func formatMillis(_ date: Date) -> String {
        let (parts, millis) = split(date)
        return stamp(parts) + "." + pad(Int32(millis), 3) + "Z"
    }

    private static func split(_ date: Date) -> (tm, Int) {
        let totalMillis = (date.timeIntervalSince1970 * 1000).rounded(.down)
        var seconds = time_t((totalMillis / 1000).rounded(.down))
        let millis = Int(totalMillis - Double(seconds) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return (parts, millis)
    }

    private static func stamp(_ parts: tm) -> String {
        "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
            + "T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))"
    }

    private static func pad(_ value: Int32, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
