/// The one grammar for executor names, used wherever a name enters the system: enrollment
/// (the access point refuses others), `CONNECT NAME[.suffix]:PORT`, `ah ssh-config` host
/// blocks and the fleet config's `[[fleet.members]] name`.
///
/// A name is the first DNS label of a CONNECT target and the last segment of the SPIFFE ID
/// `spiffe://TD/ah/agent/NAME`, so it must be both: 1–63 bytes of ASCII letters, digits, `-`
/// and `_`, starting with a letter or digit. Dots are not allowed: `CONNECT web.prod:22`
/// means the executor `web` with a domain suffix, so an executor named `web.prod` could
/// never be reached (and `web` could be reached by asking for it).
public enum ExecutorName {
    public static let maxLength = 63

    /// nil when `name` is valid, else a sentence naming the value and what is wrong with it.
    public static func problem(_ name: String) -> String? {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty else { return "executor name is empty" }
        guard bytes.count <= maxLength else {
            return "executor name '\(name.prefix(80))' is \(bytes.count) bytes long (at most \(maxLength))"
        }
        guard isAlphanumeric(bytes[0]) else {
            return "executor name '\(name)' must start with a letter or digit"
        }
        if let bad = bytes.first(where: { !isAlphanumeric($0) && $0 != UInt8(ascii: "-") && $0 != UInt8(ascii: "_") }) {
            let shown = bad < 0x80 ? "'\(Character(Unicode.Scalar(bad)))'" : "a non-ASCII character"
            return "executor name '\(name)' contains \(shown) (allowed: letters, digits, '-', '_')"
        }
        return nil
    }

    public static func isValid(_ name: String) -> Bool { problem(name) == nil }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
    }
}
