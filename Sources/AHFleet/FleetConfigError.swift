/// Why a fleet config cannot be used. Every error names the file, and (when one key is at
/// fault) the key's dotted path and its value as written in TOML, so the one line `ah`
/// prints for exit 2 points straight at the mistake:
///
///     fleet config '/repo/.agents/config.toml': key 'fleet.members[1].ssh_port' = 70000: must be between 1 and 65535
///
/// Member keys are spelled `fleet.members[INDEX].KEY` with INDEX counting from 0 in file order.
public struct FleetConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The config file (as given, or as found by walking up).
    public var file: String
    /// The dotted key path, nil for file-level problems (missing file, TOML syntax).
    public var key: String?
    /// The offending value rendered as TOML (strings in double quotes), when there is one.
    public var value: String?
    /// What is wrong, as a sentence fragment.
    public var reason: String

    public init(file: String, key: String? = nil, value: String? = nil, reason: String) {
        self.file = file
        self.key = key
        self.value = value
        self.reason = reason
    }

    public var description: String {
        var text = "fleet config '\(file)'"
        if let key {
            text += ": key '\(key)'"
            if let value { text += " = \(value)" }
        } else if let value {
            text += ": \(value)"
        }
        return text + ": " + reason
    }
}
