import ArgumentParser

/// Durations as operators type them: `30s`, `15m`, `1h`, `7d`, or combined (`1h30m`).
/// A bare number is refused: "10" could mean seconds or minutes, and guessing wrong for a
/// token lifetime is worse than asking.
struct HumanDuration: ExpressibleByArgument, Sendable, Equatable, CustomStringConvertible {
    let seconds: Int

    init(seconds: Int) {
        self.seconds = seconds
    }

    init?(argument: String) {
        guard let seconds = HumanDuration.parse(argument) else { return nil }
        self.seconds = seconds
    }

    /// Total seconds, or nil when the text is not a sequence of NUMBER UNIT pairs.
    static func parse(_ text: String) -> Int? {
        let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        var total = 0
        var number: Int?
        for character in text {
            if let digit = character.wholeNumberValue, character.isASCII {
                let (shifted, overflow1) = (number ?? 0).multipliedReportingOverflow(by: 10)
                let (next, overflow2) = shifted.addingReportingOverflow(digit)
                guard !overflow1, !overflow2 else { return nil }
                number = next
            } else if let factor = units[character], let value = number {
                let (scaled, overflow1) = value.multipliedReportingOverflow(by: factor)
                let (sum, overflow2) = total.addingReportingOverflow(scaled)
                guard !overflow1, !overflow2 else { return nil }
                total = sum
                number = nil
            } else {
                return nil
            }
        }
        guard number == nil, !text.isEmpty else { return nil }  // trailing number without a unit
        return total
    }

    var description: String {
        var rest = seconds
        var text = ""
        for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60)] where rest >= size {
            text += "\(rest / size)\(unit)"
            rest %= size
        }
        if rest > 0 || text.isEmpty { text += "\(rest)s" }
        return text
    }
}
