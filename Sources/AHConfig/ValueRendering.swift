// Turning one env string or config value into the argv tokens a user would have typed.
// Shape errors are reported here, naming the variable or key and file, because after this
// point ArgumentParser would only be able to name `--NAME`.

import Foundation

enum ValueRendering {
    static let booleanHint = "use true/false, 1/0, yes/no or on/off"

    /// From `AH_NAME=text`. A repeating option takes a comma-separated list.
    static func tokens(environment text: String, variable: String, for candidate: FillCandidate) throws(ConfigError) -> [String] {
        switch candidate.kind {
        case .flag:
            guard let count = flagCount(text, repeating: candidate.isRepeating) else {
                throw ConfigError("\(variable)='\(text)' is not a boolean for --\(candidate.name) (\(booleanHint))")
            }
            return flagTokens(count: count, for: candidate)
        case .option, .positional:
            let values = candidate.isRepeating
                ? text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                : [text]
            return values.map { "--\(candidate.name)=\($0)" }
        }
    }

    /// From a config file value. A repeating option takes an array (or one value).
    static func tokens(file value: ConfigValue, source: ValueSource, for candidate: FillCandidate) throws(ConfigError) -> [String] {
        switch candidate.kind {
        case .flag:
            let text: String
            switch value {
            case .boolean(let flag): text = flag ? "true" : "false"
            case .integer(let number): text = String(number)
            case .string(let string): text = string
            default: throw ConfigError("\(source): --\(candidate.name) is a flag and needs true or false, found \(value.typeDescription)")
            }
            guard let count = flagCount(text, repeating: candidate.isRepeating) else {
                throw ConfigError("\(source): '\(text)' is not a boolean for --\(candidate.name) (\(booleanHint))")
            }
            return flagTokens(count: count, for: candidate)
        case .option, .positional:
            let values: [ConfigValue]
            if case .array(let elements) = value {
                guard candidate.isRepeating else {
                    throw ConfigError("\(source): --\(candidate.name) takes one value, found an array")
                }
                values = elements
            } else {
                values = [value]
            }
            var tokens: [String] = []
            for element in values {
                guard let text = scalarText(element) else {
                    throw ConfigError("\(source): --\(candidate.name) needs a string, number or boolean, found \(element.typeDescription)")
                }
                tokens.append("--\(candidate.name)=\(text)")
            }
            return tokens
        }
    }

    /// true/1/yes/on → 1, false/0/no/off → 0; a counting flag (`-v -v`) also takes a count.
    static func flagCount(_ text: String, repeating: Bool) -> Int? {
        switch text.lowercased() {
        case "true", "1", "yes", "on": return 1
        case "false", "0", "no", "off": return 0
        default:
            guard repeating, let count = Int(text), count >= 0 else { return nil }
            return count
        }
    }

    private static func flagTokens(count: Int, for candidate: FillCandidate) -> [String] {
        if count == 0 { return candidate.opposite.map { ["--\($0)"] } ?? [] }
        return Array(repeating: "--\(candidate.name)", count: count)
    }

    private static func scalarText(_ value: ConfigValue) -> String? {
        switch value {
        case .string(let string): return string
        case .integer(let number): return String(number)
        case .float(let number): return String(number)
        case .boolean(let flag): return flag ? "true" : "false"
        case .array, .table, .unsupported: return nil
        }
    }
}
