import TOMLKit

/// A TOML document as plain Swift values. TOMLKit (and its C++ reference types) is touched
/// only in `parse`, so the reader and the tests work on values.
indirect enum TOMLNode: Sendable, Equatable {
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    case array([TOMLNode])
    case table([String: TOMLNode])
    /// Dates and times: valid TOML, but no fleet key takes one.
    case other(typeName: String, text: String)

    static func parse(_ text: String, file: String) throws(FleetConfigError) -> [String: TOMLNode] {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            // toml++ messages are one line; keep ours one line too.
            let reason = error.description.replacingOccurrences(of: "\n", with: " ")
            throw FleetConfigError(file: file, reason: "not valid TOML: line \(error.source.begin.line), "
                + "column \(error.source.begin.column): \(reason)")
        } catch {
            throw FleetConfigError(file: file, reason: "not valid TOML: \(error)")
        }
        return convert(table)
    }

    private static func convert(_ table: TOMLTable) -> [String: TOMLNode] {
        var result: [String: TOMLNode] = [:]
        for (key, value) in table { result[key] = convert(value) }
        return result
    }

    private static func convert(_ value: TOMLValueConvertible) -> TOMLNode {
        switch value.type {
        case .string: return value.string.map(TOMLNode.string) ?? .other(typeName: "string", text: "?")
        case .int: return value.int.map(TOMLNode.integer) ?? .other(typeName: "integer", text: "?")
        case .double: return value.double.map(TOMLNode.float) ?? .other(typeName: "float", text: "?")
        case .bool: return value.bool.map(TOMLNode.boolean) ?? .other(typeName: "boolean", text: "?")
        case .array: return .array(value.array.map { $0.map(convert) } ?? [])
        case .table: return .table(value.table.map(convert) ?? [:])
        case .date, .time, .dateTime: return .other(typeName: value.type.description, text: value.debugDescription)
        }
    }

    /// What kind of value this is, for "must be a string, not an integer".
    var typeName: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .float: "a float"
        case .boolean: "a boolean"
        case .array: "an array"
        case .table: "a table"
        case .other(let typeName, _): "a \(typeName)"
        }
    }

    /// The value as it would be written in TOML, cut to a readable length for messages.
    var rendered: String {
        let text = renderedInFull
        return text.count <= 160 ? text : String(text.prefix(157)) + "..."
    }

    private var renderedInFull: String {
        switch self {
        case .string(let value): return Self.quoted(value)
        case .integer(let value): return String(value)
        case .float(let value): return String(value)
        case .boolean(let value): return String(value)
        case .array(let items): return "[" + items.map(\.renderedInFull).joined(separator: ", ") + "]"
        case .table(let table):
            guard !table.isEmpty else { return "{}" }
            return "{ " + table.keys.sorted().map { "\(Self.renderKey($0)) = \(table[$0]!.renderedInFull)" }
                .joined(separator: ", ") + " }"
        case .other(_, let text): return text
        }
    }

    /// A TOML basic string: control characters escaped, so a message stays one line.
    static func quoted(_ value: String) -> String {
        var text = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\t": text += "\\t"
            case "\r": text += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f {
                    text += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                        + String(scalar.value, radix: 16).uppercased()
                } else {
                    text.unicodeScalars.append(scalar)
                }
            }
        }
        return text + "\""
    }

    /// A key as written in a dotted path: bare when it can be, else quoted.
    static func renderKey(_ key: String) -> String {
        let bare = !key.isEmpty && key.unicodeScalars.allSatisfy {
            ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "-" || $0 == "_"
        }
        return bare ? key : quoted(key)
    }
}
