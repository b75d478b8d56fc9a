import Foundation

/// Why a file set given on the command line (`--fileset-data`, `--fileset-file`) cannot be
/// used. One line for exit 2 that names the source, the field and its value:
///
///     --fileset-data 'name=bin&required=maybe': field 'required' = "maybe": must be one of yes, no, true, false, 1, 0
public struct FilesetSourceError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `--fileset-data '...'` or `fileset file '/path'`.
    public var source: String
    /// The field at fault (`name`, `include[1]`, `filesets[2].required`), nil for the whole source.
    public var field: String?
    /// The offending value, rendered (strings in double quotes), when there is one.
    public var value: String?
    public var reason: String

    public init(source: String, field: String? = nil, value: String? = nil, reason: String) {
        self.source = source
        self.field = field
        self.value = value
        self.reason = reason
    }

    public var description: String {
        var text = source
        if let field {
            text += ": field '\(field)'"
            if let value { text += " = \(value)" }
        }
        return text + ": " + reason
    }
}

/// File sets from the two command-line sources of `ah agent followers slurp` (the third,
/// `--fileset NAME`, is `[filesets.NAME]` of the fleet config: `FleetConfig.fileset(named:)`).
///
/// Every source has the same five fields and the same rules: `name` (1-63 of letters,
/// digits, `-`, `_`), `include` (at least one workspace-relative path or glob), `exclude`,
/// `required` (yes/no/true/false/1/0; default no) and `dest`. Unknown fields are refused.
/// A relative `dest` is taken from `baseDirectory` (the current directory for
/// `--fileset-data`, the file's directory for `--fileset-file`, like the fleet config's
/// paths); `~/` is the user's home.
public enum FilesetSource {
    static let fields = ["dest", "exclude", "include", "name", "required"]
    /// Bigger inputs are mistakes (or attacks on the parsers): a file set is a few lines.
    public static let maximumDataLength = 64 << 10
    public static let maximumFileSize = 1 << 20

    /// One set in URL-encoded form: `name=bin&include=dist/*&include=x&exclude=*.d&required=yes&dest=./out`
    /// (`+` is a space, `%XX` a byte of UTF-8; `include`/`exclude` repeat).
    public static func parseData(_ text: String, baseDirectory: String,
                                 context: FleetLoadContext = .current) throws(FilesetSourceError) -> Fileset {
        let source = "--fileset-data '\(text.count <= 120 ? text : String(text.prefix(117)) + "...")'"
        guard text.utf8.count <= maximumDataLength else {
            throw FilesetSourceError(source: source, reason: "is \(text.utf8.count) bytes (at most \(maximumDataLength))")
        }
        var fields = RawFields()
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = decode(parts[0]), let value = decode(parts.count == 2 ? parts[1] : "") else {
                throw FilesetSourceError(source: source, field: String(parts[0]), reason: "is not valid URL encoding (bad %XX or not UTF-8)")
            }
            guard parts.count == 2 else {
                throw FilesetSourceError(source: source, field: key, reason: "has no value (write \(key)=VALUE)")
            }
            guard fields.add(key: key, value: value) else {
                throw FilesetSourceError(source: source, field: key, value: TOMLNode.quoted(value), reason: unknownOrRepeated(key))
            }
        }
        return try fields.fileset(source: source, prefix: "", baseDirectory: baseDirectory, context: context)
    }

    /// One set or a list of sets from a TOML or JSON file (JSON when the name ends in
    /// `.json` or the text starts with `{` or `[`). Shapes, in either format: one set's fields
    /// at the top; a list of such objects (JSON array, or `[[filesets]]` in TOML, or
    /// `{"filesets": [...]}`); or `[filesets.NAME]` tables as in the fleet config.
    public static func parseFile(path: String, context: FleetLoadContext = .current) throws(FilesetSourceError) -> [Fileset] {
        let source = "fileset file '\(path)'"
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw FilesetSourceError(source: source, reason: isDirectory.boolValue ? "is a directory, not a file" : "does not exist")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FilesetSourceError(source: source, reason: "cannot be read")
        }
        guard data.count <= maximumFileSize else {
            throw FilesetSourceError(source: source, reason: "is \(data.count) bytes (at most \(maximumFileSize))")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw FilesetSourceError(source: source, reason: "is not UTF-8 text") }
        let absolute = path.hasPrefix("/") ? path : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(path)
        return try parseFile(text: text, source: source, json: isJSON(path: path, text: text),
                             baseDirectory: (absolute as NSString).deletingLastPathComponent, context: context)
    }

    /// `parseFile(path:)` on text already read (tests, and callers that got the text elsewhere).
    public static func parseFile(text: String, source: String, json: Bool, baseDirectory: String,
                                 context: FleetLoadContext = .current) throws(FilesetSourceError) -> [Fileset] {
        let root: TOMLNode
        if json {
            do {
                let decoded = try JSONDecoder().decode(JSONNode.self, from: Data(text.utf8))
                root = try node(decoded, source: source, path: "")
            } catch let error as FilesetSourceError {
                throw error
            } catch {
                throw FilesetSourceError(source: source, reason: "is not valid JSON (\(Self.describe(error)))")
            }
        } else {
            do { root = .table(try TOMLNode.parse(text, file: source)) } catch {
                throw FilesetSourceError(source: source, reason: error.reason)
            }
        }
        var sets: [Fileset] = []
        switch root {
        case .array(let items):
            sets = try list(items, source: source, prefix: "", baseDirectory: baseDirectory, context: context)
        case .table(let table):
            if table.keys.contains("filesets") {
                if let extra = table.keys.sorted().first(where: { $0 != "filesets" }) {
                    throw FilesetSourceError(source: source, field: extra, reason: "unknown field next to 'filesets' (known: filesets)")
                }
                switch table["filesets"]! {
                case .array(let items):
                    sets = try list(items, source: source, prefix: "filesets", baseDirectory: baseDirectory, context: context)
                case .table(let named):
                    // `[filesets.NAME]`: the key is the name (as in the fleet config).
                    for name in named.keys.sorted() {
                        guard case .table(var fields) = named[name]! else {
                            throw FilesetSourceError(source: source, field: "filesets.\(name)", reason: "must be a table of fields")
                        }
                        if fields["name"] != nil {
                            throw FilesetSourceError(source: source, field: "filesets.\(name).name",
                                                     reason: "the table's key is the name: leave 'name' out")
                        }
                        fields["name"] = .string(name)
                        sets.append(try fileset(fields, source: source, prefix: "filesets.\(name).", baseDirectory: baseDirectory,
                                                context: context))
                    }
                default:
                    throw FilesetSourceError(source: source, field: "filesets", reason: "must be a list of file sets or a table of them")
                }
            } else {
                sets = [try fileset(table, source: source, prefix: "", baseDirectory: baseDirectory, context: context)]
            }
        default:
            throw FilesetSourceError(source: source, reason: "must hold a file set (an object) or a list of them")
        }
        guard !sets.isEmpty else { throw FilesetSourceError(source: source, reason: "holds no file set") }
        return sets
    }

    static func isJSON(path: String, text: String) -> Bool {
        if path.lowercased().hasSuffix(".json") { return true }
        if path.lowercased().hasSuffix(".toml") { return false }
        let first = text.unicodeScalars.first { !$0.properties.isWhitespace }
        return first == "{" || first == "["
    }

    private static func list(_ items: [TOMLNode], source: String, prefix: String, baseDirectory: String,
                             context: FleetLoadContext) throws(FilesetSourceError) -> [Fileset] {
        var sets: [Fileset] = []
        for (index, item) in items.enumerated() {
            let here = "\(prefix)[\(index)]"
            guard case .table(let table) = item else {
                throw FilesetSourceError(source: source, field: here, reason: "must be a file set (an object of fields)")
            }
            sets.append(try fileset(table, source: source, prefix: here + ".", baseDirectory: baseDirectory, context: context))
        }
        return sets
    }

    private static func fileset(_ table: [String: TOMLNode], source: String, prefix: String, baseDirectory: String,
                                context: FleetLoadContext) throws(FilesetSourceError) -> Fileset {
        var fields = RawFields()
        for key in table.keys.sorted() {
            guard fields.known(key) else {
                throw FilesetSourceError(source: source, field: prefix + key, value: table[key]!.rendered, reason: unknownOrRepeated(key))
            }
            switch table[key]! {
            case .string(let value):
                _ = fields.add(key: key, value: value)
            case .array(let items) where key == "include" || key == "exclude":
                for (index, item) in items.enumerated() {
                    guard case .string(let value) = item else {
                        throw FilesetSourceError(source: source, field: "\(prefix)\(key)[\(index)]", value: item.rendered,
                                                 reason: "must be a string (a path or glob)")
                    }
                    _ = fields.add(key: key, value: value)
                }
            case .boolean(let value) where key == "required":
                _ = fields.add(key: key, value: value ? "true" : "false")
            case .integer(let value) where key == "required":
                _ = fields.add(key: key, value: String(value))
            case let other:
                let expected = key == "include" || key == "exclude" ? "a list of strings (or one string)"
                    : key == "required" ? "a boolean, or one of yes, no, true, false, 1, 0" : "a string"
                throw FilesetSourceError(source: source, field: prefix + key, value: other.rendered,
                                         reason: "must be \(expected), not \(other.typeName)")
            }
        }
        return try fields.fileset(source: source, prefix: prefix, baseDirectory: baseDirectory, context: context)
    }

    private static func unknownOrRepeated(_ key: String) -> String {
        fields.contains(key) ? "is given more than once (only include and exclude repeat)"
            : "unknown field (known: \(fields.joined(separator: ", ")))"
    }

    /// Percent-decoding of one form field (`+` is a space); nil for a bad escape or non-UTF-8.
    static func decode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"): bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
                bytes.append(high << 4 | low)
            default: bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// JSON as the TOML tree the set reader works on (`null` is no value any field takes).
    private static func node(_ value: JSONNode, source: String, path: String) throws(FilesetSourceError) -> TOMLNode {
        switch value {
        case .string(let text): return .string(text)
        case .boolean(let flag): return .boolean(flag)
        case .integer(let number): return .integer(number)
        case .float(let number): return .float(number)
        case .array(let items):
            var nodes: [TOMLNode] = []
            for (index, item) in items.enumerated() { nodes.append(try node(item, source: source, path: "\(path)[\(index)]")) }
            return .array(nodes)
        case .object(let object):
            var table: [String: TOMLNode] = [:]
            for (key, item) in object { table[key] = try node(item, source: source, path: path.isEmpty ? key : "\(path).\(key)") }
            return .table(table)
        case .null:
            throw FilesetSourceError(source: source, field: path.isEmpty ? nil : path, reason: "null is not a value any field takes")
        }
    }

    private static func describe(_ error: any Error) -> String {
        if case .dataCorrupted(let context)? = error as? DecodingError { return context.debugDescription.replacingOccurrences(of: "\n", with: " ") }
        return "\(error)".replacingOccurrences(of: "\n", with: " ")
    }
}

/// The fields of one set as strings, before they are checked.
private struct RawFields {
    var single: [String: String] = [:]
    var include: [String] = []
    var exclude: [String] = []

    func known(_ key: String) -> Bool { FilesetSource.fields.contains(key) }

    /// False for an unknown field or a repeated single one.
    mutating func add(key: String, value: String) -> Bool {
        switch key {
        case "include": include.append(value)
        case "exclude": exclude.append(value)
        case "name", "required", "dest":
            guard single[key] == nil else { return false }
            single[key] = value
        default: return false
        }
        return true
    }

    func fileset(source: String, prefix: String, baseDirectory: String,
                 context: FleetLoadContext) throws(FilesetSourceError) -> Fileset {
        func failure(_ field: String, _ value: String?, _ reason: String) -> FilesetSourceError {
            FilesetSourceError(source: source, field: prefix + field, value: value.map(TOMLNode.quoted), reason: reason)
        }
        guard let name = single["name"] else { throw failure("name", nil, "is required (letters, digits, '-' and '_')") }
        if let problem = Fileset.nameProblem(name) { throw failure("name", name, problem) }
        guard !include.isEmpty else { throw failure("include", nil, "must name at least one path or glob") }
        for (key, patterns) in [("include", include), ("exclude", exclude)] {
            for (index, pattern) in patterns.enumerated() {
                if pattern.isEmpty { throw failure("\(key)[\(index)]", pattern, "must not be empty") }
                if pattern.unicodeScalars.contains(where: ASCII.isControl) {
                    throw failure("\(key)[\(index)]", pattern, "must not contain control characters")
                }
                if let problem = Fileset.patternProblem(pattern) { throw failure("\(key)[\(index)]", pattern, problem) }
            }
        }
        var required = false
        if let text = single["required"] {
            switch text.lowercased() {
            case "yes", "true", "1": required = true
            case "no", "false", "0": required = false
            default: throw failure("required", text, "must be one of yes, no, true, false, 1, 0")
            }
        }
        var dest: String?
        if let text = single["dest"] {
            if text.isEmpty || text.unicodeScalars.contains(where: ASCII.isControl) || text.utf8.contains(0) {
                throw failure("dest", text, "must be a non-empty path without control characters")
            }
            if text == "~" {
                dest = context.homeDirectory
            } else if text.hasPrefix("~/") {
                dest = (context.homeDirectory as NSString).appendingPathComponent(String(text.dropFirst(2)))
            } else if text.hasPrefix("~") {
                throw failure("dest", text, "'~user' is not supported (use ~/ or an absolute path)")
            } else {
                dest = text.hasPrefix("/") ? text : (baseDirectory as NSString).appendingPathComponent(text)
            }
            dest = dest.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        }
        return Fileset(name: name, include: include, exclude: exclude, required: required, dest: dest)
    }
}

/// Any JSON value, decoded strictly (a boolean is never taken for a number or back).
private enum JSONNode: Decodable {
    case string(String)
    case boolean(Bool)
    case integer(Int)
    case float(Double)
    case array([JSONNode])
    case object([String: JSONNode])
    case null

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null; return }
        if let value = try? container.decode(Bool.self) { self = .boolean(value); return }
        if let value = try? container.decode(Int.self) { self = .integer(value); return }
        if let value = try? container.decode(Double.self) { self = .float(value); return }
        if let value = try? container.decode(String.self) { self = .string(value); return }
        if let value = try? container.decode([JSONNode].self) { self = .array(value); return }
        self = .object(try container.decode([String: JSONNode].self))
    }
}
