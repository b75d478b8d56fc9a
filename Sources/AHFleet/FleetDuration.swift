/// The duration syntax of the fleet config and of `--timeout`: one or more `NUMBER UNIT`
/// parts with the units `h`, `m`, `s`, `ms`, largest first, each unit at most once, no
/// spaces and no sign: `500ms`, `5s`, `10m`, `1h`, `1h30m`, `2m30s500ms`. A bare number is
/// refused because `timeout = 60` could mean seconds or minutes to different readers.
public enum FleetDuration {
    /// The longest duration accepted (about 115 days): far beyond any sensible timeout, and
    /// small enough that no arithmetic on it can overflow.
    public static let maximumMilliseconds: Int64 = 10_000_000_000

    /// Parses `text`; the error names the value and says what is wrong with it.
    public static func parse(_ text: String) throws(FleetDurationError) -> Duration {
        Duration.milliseconds(try milliseconds(text))
    }

    /// Like `parse`, in milliseconds.
    public static func milliseconds(_ text: String) throws(FleetDurationError) -> Int64 {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { throw FleetDurationError(value: text, reason: "it is empty") }
        var total: Int64 = 0
        var index = 0
        var lastRank = Int.max
        while index < bytes.count {
            let digitsStart = index
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") { index += 1 }
            guard index > digitsStart else {
                throw FleetDurationError(value: text, reason: "expected a number at '\(suffix(bytes, from: digitsStart))'")
            }
            // More than 11 digits is above the maximum in any unit; refusing early keeps Int64 safe.
            guard index - digitsStart <= 11, let number = Int64(String(decoding: bytes[digitsStart..<index], as: UTF8.self)) else {
                throw FleetDurationError(value: text, reason: "it is longer than the maximum (\(format(.milliseconds(maximumMilliseconds))))")
            }
            let unitStart = index
            while index < bytes.count, bytes[index] >= UInt8(ascii: "a"), bytes[index] <= UInt8(ascii: "z") { index += 1 }
            let unitText = String(decoding: bytes[unitStart..<index], as: UTF8.self)
            guard let unit = Unit(rawValue: unitText) else {
                let reason = !unitText.isEmpty ? "unknown unit '\(unitText)' (use h, m, s or ms)"
                    : index == bytes.count ? "a number needs a unit (h, m, s or ms)"
                    : "unexpected '\(suffix(bytes, from: index))' after a number (use h, m, s or ms)"
                throw FleetDurationError(value: text, reason: reason)
            }
            guard unit.rank < lastRank else {
                throw FleetDurationError(value: text, reason: "units must appear once each, largest first (like 1h30m)")
            }
            lastRank = unit.rank
            total += number * unit.milliseconds
            guard total <= maximumMilliseconds else {
                throw FleetDurationError(value: text, reason: "it is longer than the maximum (\(format(.milliseconds(maximumMilliseconds))))")
            }
        }
        return total
    }

    /// The shortest spelling of `duration` in this syntax (whole milliseconds; finer parts are
    /// dropped): `.seconds(90)` is `1m30s`, zero is `0s`.
    public static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        var remaining = max(0, seconds * 1000 + attoseconds / 1_000_000_000_000_000)
        guard remaining > 0 else { return "0s" }
        var text = ""
        for unit in [Unit.hours, .minutes, .seconds, .milliseconds] where remaining >= unit.milliseconds {
            text += "\(remaining / unit.milliseconds)\(unit.rawValue)"
            remaining %= unit.milliseconds
        }
        return text
    }

    private enum Unit: String {
        case hours = "h", minutes = "m", seconds = "s", milliseconds = "ms"

        var milliseconds: Int64 {
            switch self {
            case .hours: 3_600_000
            case .minutes: 60_000
            case .seconds: 1000
            case .milliseconds: 1
            }
        }

        var rank: Int {
            switch self {
            case .hours: 3
            case .minutes: 2
            case .seconds: 1
            case .milliseconds: 0
            }
        }
    }

    private static func suffix(_ bytes: [UInt8], from index: Int) -> String {
        String(decoding: bytes[index...], as: UTF8.self)
    }
}

/// A duration that does not follow `FleetDuration`'s syntax.
public struct FleetDurationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The text as given.
    public var value: String
    /// Why it was refused.
    public var reason: String

    public init(value: String, reason: String) {
        self.value = value
        self.reason = reason
    }

    public var description: String {
        "'\(value)' is not a duration like 500ms, 5s, 10m or 1h30m: \(reason)"
    }
}
