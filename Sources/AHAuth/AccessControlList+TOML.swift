import Foundation
import TOMLKit

// Reading `[[serve.acl]]` from the server's TOML config. Validation is strict: a typo in an
// ACL silently grants or withholds access, so every unknown key, wrong type or odd value is
// an error naming the file, the rule and the value.
//
//     [[serve.acl]]
//     subject = "alice"                      # or "*"
//     executors = ["linux-1", "tag:env=dev"] # names, "*", tag:KEY=VALUE
//     verbs = ["ssh", "read"]                # ssh, exec, read

extension AccessControlList {
    public static let maxRules = 10_000
    public static let maxSelectorsPerRule = 1_000
    public static let maxVerbsPerRule = 16
    public static let maxSubjectBytes = 256
    static let maxFileBytes = 16 * 1024 * 1024
    static let ruleKeys: Set<String> = ["subject", "executors", "verbs"]

    /// The ACL in the config file at `path`; `.unconfigured` when it has no `serve.acl`.
    public static func load(configFile path: String) throws(AccessControlListError) -> AccessControlList {
        let fail = { (reason: String) in AccessControlListError(path: path, rule: nil, reason: reason) }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw fail("does not exist") }
        guard !isDirectory.boolValue else { throw fail("is a directory") }
        guard let data = FileManager.default.contents(atPath: path) else { throw fail("cannot be read") }
        guard data.count <= maxFileBytes else { throw fail("is larger than \(maxFileBytes) bytes") }
        guard let text = String(data: data, encoding: .utf8) else { throw fail("is not UTF-8 text") }
        return try parse(toml: text, path: path)
    }

    /// Parses TOML text; `path` only names the source in messages.
    public static func parse(toml text: String, path: String) throws(AccessControlListError) -> AccessControlList {
        let fail = { (reason: String) in AccessControlListError(path: path, rule: nil, reason: reason) }
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            let reason = error.description.replacingOccurrences(of: "\n", with: " ")
            throw fail("is not valid TOML: line \(error.source.begin.line), column \(error.source.begin.column): \(reason)")
        } catch {
            throw fail("is not valid TOML: \(error)")
        }
        guard let serveValue = root["serve"] else { return .unconfigured }
        guard let serve = serveValue.table else { throw fail("'serve' must be a table") }
        guard let aclValue = serve["acl"] else { return .unconfigured }
        guard let entries = aclValue.array else {
            throw fail("'serve.acl' must be an array of tables ([[serve.acl]]), not a \(aclValue.type)")
        }
        guard entries.count <= maxRules else { throw fail("has \(entries.count) ACL rules; the limit is \(maxRules)") }
        var rules: [Rule] = []
        rules.reserveCapacity(entries.count)
        for (index, entry) in entries.enumerated() {
            rules.append(try rule(entry, number: index + 1, path: path))
        }
        return AccessControlList(rules: rules)
    }

    private static func rule(_ value: TOMLValueConvertible, number: Int, path: String) throws(AccessControlListError) -> Rule {
        let fail = { (reason: String) in AccessControlListError(path: path, rule: number, reason: reason) }
        guard let table = value.table else { throw fail("must be a table, not a \(value.type)") }
        for (key, _) in table where !ruleKeys.contains(key) {
            throw fail("unknown key \(quoted(key)) (expected \(ruleKeys.sorted().joined(separator: ", ")))")
        }

        guard let subjectValue = table["subject"] else { throw fail("'subject' is missing") }
        guard let subject = subjectValue.string else { throw fail("'subject' must be a string, not a \(subjectValue.type)") }
        guard !subject.isEmpty else { throw fail("'subject' must not be empty (use \"*\" for any subject)") }
        guard subject.utf8.count <= maxSubjectBytes else {
            throw fail("'subject' \(quoted(subject)) is longer than \(maxSubjectBytes) bytes")
        }
        guard !subject.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw fail("'subject' \(quoted(subject)) contains control characters")
        }

        let selectorTexts = try strings(table, "executors", limit: maxSelectorsPerRule, fail: fail)
        var executors: [ExecutorSelector] = []
        for text in selectorTexts {
            do {
                executors.append(try ExecutorSelector(parsing: text))
            } catch {
                throw fail("executor \(quoted(text)): \(error)")
            }
        }

        let verbTexts = try strings(table, "verbs", limit: maxVerbsPerRule, fail: fail)
        var verbs: [Verb] = []
        for text in verbTexts {
            guard let verb = Verb(rawValue: text) else {
                throw fail("unknown verb \(quoted(text)) (expected \(Verb.namesForHelp))")
            }
            if !verbs.contains(verb) { verbs.append(verb) }
        }
        return Rule(subject: subject, executors: executors, verbs: verbs)
    }

    /// A required, non-empty array of strings: an empty list grants nothing, so it is a mistake.
    private static func strings(_ table: TOMLTable, _ key: String, limit: Int,
                                fail: (String) -> AccessControlListError) throws(AccessControlListError) -> [String] {
        guard let value = table[key] else { throw fail("'\(key)' is missing") }
        guard let array = value.array else { throw fail("'\(key)' must be an array of strings, not a \(value.type)") }
        guard !array.isEmpty else { throw fail("'\(key)' must not be empty") }
        guard array.count <= limit else { throw fail("'\(key)' has \(array.count) entries; the limit is \(limit)") }
        var result: [String] = []
        for element in array {
            guard let string = element.string else {
                throw fail("'\(key)' must contain only strings, found a \(element.type) (\(element.debugDescription.prefix(80)))")
            }
            result.append(string)
        }
        return result
    }

    /// A config value for a message: quoted, printable and short.
    static func quoted(_ text: String) -> String {
        "'" + UserTokenError.printable(text, limit: 80) + "'"
    }
}
