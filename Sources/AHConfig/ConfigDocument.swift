// A parsed config file as plain Swift values, so that the fill-in logic is a pure function
// that tests can feed without TOMLKit, and TOMLKit's reference types stay in one file
// (ConfigDocument+TOML.swift).

/// One TOML value. Dates and times are kept only by type name: no option takes one, so
/// they are reported as a type error if used for an option.
public indirect enum ConfigValue: Equatable, Sendable {
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    case array([ConfigValue])
    case table([String: ConfigValue])
    case unsupported(typeName: String)

    /// "a string", "a table", … for error messages.
    public var typeDescription: String {
        switch self {
        case .string: return "a string"
        case .integer: return "an integer"
        case .float: return "a float"
        case .boolean: return "a boolean"
        case .array: return "an array"
        case .table: return "a table"
        case .unsupported(let name): return "a \(name)"
        }
    }
}

/// A config file: where it came from (for messages) and its top-level table.
public struct ConfigDocument: Equatable, Sendable {
    public var path: String
    public var root: [String: ConfigValue]

    public init(path: String, root: [String: ConfigValue]) {
        self.path = path
        self.root = root
    }

    /// The table for a command path, e.g. ["agent", "enroll"] → `[agent.enroll]`
    /// (TOML's dotted table headers nest, so this is root["agent"]["enroll"]).
    /// nil when the file has no such table or something on the way is not a table.
    public func table(forCommandPath path: [String]) -> [String: ConfigValue]? {
        var current = root
        for component in path {
            guard case .table(let next)? = current[component] else { return nil }
            current = next
        }
        return current
    }
}

/// The spelling of a section for messages: `[agent.enroll]`, or "the top level".
func sectionName(_ path: [String]) -> String {
    path.isEmpty ? "the top level" : "[\(path.joined(separator: "."))]"
}
