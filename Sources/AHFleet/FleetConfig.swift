import Foundation

/// A parsed, validated fleet config (`.agents/config.toml`, or `--fleet-config FILE`).
///
/// Top-level keys: `[fleet]` (with `[[fleet.members]]`, `[fleet.sync]`,
/// `[fleet.connectivity]`, `[fleet.execution]`) and `[filesets.NAME]`; anything else, at any
/// level, is an error. `Config/fleet.example.toml` documents every key with its default.
public struct FleetConfig: Sendable, Hashable {
    /// Where discovery looks in each directory.
    public static let relativePath = ".agents/config.toml"

    /// The file this came from.
    public var file: String
    public var settings: FleetSettings
    /// Every `[[fleet.members]]` in file order (leader and followers).
    public var members: [FleetMember]
    /// Every `[filesets.NAME]`, sorted by name.
    public var filesets: [Fileset]

    public init(file: String, settings: FleetSettings = FleetSettings(), members: [FleetMember] = [], filesets: [Fileset] = []) {
        self.file = file
        self.settings = settings
        self.members = members
        self.filesets = filesets
    }

    /// The member with `role = "leader"`; nil means the machine running `ah` is the leader.
    public var leader: FleetMember? { members.first { $0.role == .leader } }
    /// The followers in file order.
    public var followers: [FleetMember] { members.filter { $0.role == .follower } }

    public func member(named name: String) -> FleetMember? { members.first { $0.name == name } }
    public func fileset(named name: String) -> Fileset? { filesets.first { $0.name == name } }

    /// Reads and validates the file at `path` (`--fleet-config FILE`).
    public static func load(path: String, context: FleetLoadContext = .current) throws(FleetConfigError) -> FleetConfig {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw FleetConfigError(file: path, reason: "the file does not exist")
        }
        guard !isDirectory.boolValue else { throw FleetConfigError(file: path, reason: "it is a directory, not a file") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FleetConfigError(file: path, reason: "the file cannot be read")
        }
        // A fleet config is a few kilobytes; a huge file is a mistake (or an attack on the parser).
        guard data.count <= maximumFileSize else {
            throw FleetConfigError(file: path, reason: "the file is \(data.count) bytes (at most \(maximumFileSize))")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw FleetConfigError(file: path, reason: "the file is not UTF-8 text")
        }
        return try parse(text, file: path, context: context)
    }

    /// Finds `.agents/config.toml` in `directory` or the nearest parent that has one, and loads it.
    public static func discover(from directory: String, context: FleetLoadContext = .current) throws(FleetConfigError) -> FleetConfig {
        guard let path = locate(from: directory) else {
            throw FleetConfigError(file: (directory as NSString).appendingPathComponent(relativePath), reason:
                "no \(relativePath) in '\(directory)' or any parent directory (use --fleet-config FILE)")
        }
        return try load(path: path, context: context)
    }

    /// The path of the nearest `.agents/config.toml` at or above `directory`, or nil.
    public static func locate(from directory: String) -> String? {
        var current = URL(fileURLWithPath: directory, isDirectory: true).standardizedFileURL
        while true {
            let candidate = current.appendingPathComponent(relativePath)
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue {
                return candidate.path
            }
            let parent = current.deletingLastPathComponent().standardizedFileURL
            if parent.path == current.path { return nil }
            current = parent
        }
    }

    /// Parses and validates TOML text; `file` names the source in errors and is the base
    /// of relative paths.
    public static func parse(_ text: String, file: String, context: FleetLoadContext = .current) throws(FleetConfigError) -> FleetConfig {
        let root = try TOMLNode.parse(text, file: file)
        return try FleetConfigReader(file: file, context: context).read(root)
    }

    public static let maximumFileSize = 1 << 20
}

/// What the config's defaults and `~` depend on: the user running `ah`.
public struct FleetLoadContext: Sendable, Hashable {
    /// What `~` in local paths means.
    public var homeDirectory: String
    /// The default `ssh_user`.
    public var userName: String

    public init(homeDirectory: String, userName: String) {
        self.homeDirectory = homeDirectory
        self.userName = userName
    }

    /// From `HOME` (else the password database) and the login name of this process.
    public static var current: FleetLoadContext {
        let home = ProcessInfo.processInfo.environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return FleetLoadContext(homeDirectory: home, userName: NSUserName())
    }
}
