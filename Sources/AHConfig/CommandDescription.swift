import Foundation

// The few fields of swift-argument-parser's `ToolInfoV0` (the JSON that every command's
// `_dumpHelp()` returns) that filling options from env and file needs. Decoding that JSON,
// rather than reflecting over property wrappers, means a command declares each option once
// and this module never has to link ArgumentParser. Unknown JSON keys are ignored, so newer
// ArgumentParser versions that add fields keep working.

/// `{"serializationVersion": 0, "command": {...}}`.
public struct ToolDescription: Codable, Sendable {
    public var command: CommandDescription

    public init(command: CommandDescription) { self.command = command }

    /// Decodes the output of `SomeCommand._dumpHelp()`.
    public static func decode(_ json: String) throws -> ToolDescription {
        try JSONDecoder().decode(ToolDescription.self, from: Data(json.utf8))
    }
}

/// One command: its name, its arguments and (for groups) its subcommands.
public struct CommandDescription: Codable, Sendable {
    public var commandName: String
    public var aliases: [String]?
    public var subcommands: [CommandDescription]?
    public var arguments: [ArgumentDescription]?

    public init(commandName: String, aliases: [String]? = nil,
                subcommands: [CommandDescription]? = nil, arguments: [ArgumentDescription]? = nil) {
        self.commandName = commandName
        self.aliases = aliases
        self.subcommands = subcommands
        self.arguments = arguments
    }

    /// The subcommand called `name` (or aliased so).
    public func subcommand(named name: String) -> CommandDescription? {
        subcommands?.first { $0.commandName == name || ($0.aliases ?? []).contains(name) }
    }
}

/// One positional argument, option or flag.
public struct ArgumentDescription: Codable, Sendable {
    public enum Kind: String, Codable, Sendable {
        case positional, option, flag
    }

    public struct Name: Codable, Sendable, Hashable {
        public enum Kind: String, Codable, Sendable {
            case long, short, longWithSingleDash
        }

        public var kind: Kind
        public var name: String

        public init(kind: Kind, name: String) {
            self.kind = kind
            self.name = name
        }

        public static func long(_ name: String) -> Name { Name(kind: .long, name: name) }
        public static func short(_ name: Character) -> Name { Name(kind: .short, name: String(name)) }
    }

    public var kind: Kind
    public var names: [Name]?
    /// Arrays (`--tag a --tag b`) and counting flags (`-v -v`).
    public var isRepeating: Bool
    public var isOptional: Bool

    public init(kind: Kind, names: [Name], isRepeating: Bool = false, isOptional: Bool = true) {
        self.kind = kind
        self.names = names
        self.isRepeating = isRepeating
        self.isOptional = isOptional
    }

    /// Long names (`--NAME`): the ones that have an `AH_NAME` variable and a `NAME` key.
    public var longNames: [String] { (names ?? []).filter { $0.kind == .long }.map(\.name) }
}
