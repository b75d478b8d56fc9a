import Foundation
import TOMLKit

// Reading `--config FILE`: the only place that touches TOMLKit. Every failure is a
// ConfigError naming the file (and the line for syntax errors), because `ah` turns it into
// exit 2 with that one line.

extension ConfigDocument {
    /// Reads and parses the TOML file at `path`.
    public static func load(path: String) throws(ConfigError) -> ConfigDocument {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ConfigError("config file '\(path)' does not exist")
        }
        guard !isDirectory.boolValue else { throw ConfigError("config file '\(path)' is a directory") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError("config file '\(path)' cannot be read")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError("config file '\(path)' is not UTF-8 text")
        }
        return try parse(text, path: path)
    }

    /// Parses TOML text; `path` only names the source in messages.
    public static func parse(_ text: String, path: String) throws(ConfigError) -> ConfigDocument {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            // toml++ messages are one line; keep ours one line too.
            let reason = error.description.replacingOccurrences(of: "\n", with: " ")
            throw ConfigError("config file '\(path)' is not valid TOML: line \(error.source.begin.line), "
                + "column \(error.source.begin.column): \(reason)")
        } catch {
            throw ConfigError("config file '\(path)' is not valid TOML: \(error)")
        }
        return ConfigDocument(path: path, root: convert(table))
    }

    private static func convert(_ table: TOMLTable) -> [String: ConfigValue] {
        var result: [String: ConfigValue] = [:]
        for (key, value) in table {
            result[key] = convert(value)
        }
        return result
    }

    private static func convert(_ value: TOMLValueConvertible) -> ConfigValue {
        switch value.type {
        case .string: return value.string.map(ConfigValue.string) ?? .unsupported(typeName: "string")
        case .int: return value.int.map(ConfigValue.integer) ?? .unsupported(typeName: "integer")
        case .double: return value.double.map(ConfigValue.float) ?? .unsupported(typeName: "float")
        case .bool: return value.bool.map(ConfigValue.boolean) ?? .unsupported(typeName: "boolean")
        case .array: return .array(value.array.map { $0.map(convert) } ?? [])
        case .table: return .table(value.table.map(convert) ?? [:])
        case .date, .time, .dateTime: return .unsupported(typeName: value.type.description)
        }
    }
}
