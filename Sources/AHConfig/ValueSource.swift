/// Where a filled-in option came from, so that an error about its value (which
/// ArgumentParser reports in terms of `--NAME`) can also name the variable or the key.
public enum ValueSource: Equatable, Sendable, CustomStringConvertible {
    case environment(variable: String)
    case file(path: String, section: [String], key: String)

    public var description: String {
        switch self {
        case .environment(let variable):
            return variable
        case .file(let path, let section, let key):
            let place = section.isEmpty ? "" : " in \(sectionName(section))"
            return "key '\(key)'\(place) of config file '\(path)'"
        }
    }
}

/// One option that was not on the command line and was filled in.
public struct FilledOption: Equatable, Sendable {
    /// The long name, without dashes.
    public let name: String
    public let source: ValueSource
    /// What was inserted into argv for it (may be empty for a false flag).
    public let tokens: [String]
}

/// The outcome of `OptionFill.fill`.
public struct FillResult: Equatable, Sendable {
    /// The arguments after the command path, with the filled-in options in front.
    public var arguments: [String]
    public var filled: [FilledOption]

    /// `message` with " (from AH_X)" or " (from key 'x' … of config file 'F')" appended
    /// when it mentions `--x` and x was filled in; unchanged otherwise.
    public func explain(_ message: String) -> String {
        for option in filled where !option.tokens.isEmpty && mentions(message, option: option.name) {
            return "\(message) (from \(option.source))"
        }
        return message
    }

    /// Whether `message` contains `--name` not followed by more name characters
    /// (so that `--id` does not match `--identity`).
    private func mentions(_ message: String, option name: String) -> Bool {
        let needle = "--" + name
        var rest = Substring(message)
        while let range = rest.range(of: needle) {
            let next = rest[range.upperBound...].first
            if next.map({ !($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) ?? true { return true }
            rest = rest[range.upperBound...]
        }
        return false
    }
}
