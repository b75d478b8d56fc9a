@testable import AHAuth
import AHTestSupport
import Foundation
import XCTest

final class AccessControlListTOMLTests: XCTestCase {
    private let path = "/etc/ah/serve.toml"

    func testRulesAreRead() throws {
        let acl = try AccessControlList.parse(toml: """
            data-dir = "/var/lib/ah"

            [serve]
            http-listen = "0.0.0.0:8443"

            [[serve.acl]]
            subject = "alice"
            executors = ["linux-1", "tag:env=dev"]
            verbs = ["ssh", "read", "ssh"]

            [[serve.acl]]
            subject = "*"
            executors = ["*"]
            verbs = ["read"]
            """, path: path)
        XCTAssertTrue(acl.isConfigured)
        XCTAssertEqual(acl.rules, [
            .init(subject: "alice", executors: [.name("linux-1"), .tag(key: "env", value: "dev")], verbs: [.ssh, .read]),
            .init(subject: "*", executors: [.any], verbs: [.read]),
        ])
        XCTAssertTrue(acl.decide(subject: "alice", role: .operator, executor: "x", tags: ["env": "dev"], verb: .ssh).isAllowed)
        XCTAssertFalse(acl.decide(subject: "bob", role: .operator, executor: "linux-1", tags: [:], verb: .ssh).isAllowed)
    }

    func testInlineArraySpellingIsAccepted() throws {
        let acl = try AccessControlList.parse(toml: """
            serve.acl = [ { subject = "bob", executors = ["db-1"], verbs = ["exec"] } ]
            """, path: path)
        XCTAssertEqual(acl.rules, [.init(subject: "bob", executors: [.name("db-1")], verbs: [.exec])])
    }

    func testAbsentACLIsUnconfiguredAndEmptyIsConfigured() throws {
        for text in ["", "data-dir = \"/x\"", "[serve]\nhttp-listen = \"[::]:8443\"", "[agent]\nacl = []"] {
            XCTAssertEqual(try AccessControlList.parse(toml: text, path: path), .unconfigured, text)
        }
        let empty = try AccessControlList.parse(toml: "[serve]\nacl = []", path: path)
        XCTAssertTrue(empty.isConfigured)
        XCTAssertEqual(empty.rules, [])
    }

    func testValidationErrorsNameFileRuleAndValue() {
        let good = #"subject = "alice""# + "\n" + #"executors = ["linux-1"]"# + "\n" + #"verbs = ["ssh"]"#
        // Each case is a second rule after a good one, so the rule number must be 2.
        let cases: [(String, String, String)] = [
            ("unknown key", good + "\nverb = [\"ssh\"]", "unknown key 'verb'"),
            ("missing subject", #"executors = ["a"]"# + "\n" + #"verbs = ["ssh"]"#, "'subject' is missing"),
            ("subject type", #"subject = 7"# + "\n" + #"executors = ["a"]"# + "\n" + #"verbs = ["ssh"]"#, "'subject' must be a string"),
            ("empty subject", #"subject = """# + "\n" + #"executors = ["a"]"# + "\n" + #"verbs = ["ssh"]"#, "'subject' must not be empty"),
            ("long subject", #"subject = "\#(String(repeating: "s", count: 257))""# + "\n" + #"executors = ["a"]"# + "\n" + #"verbs = ["ssh"]"#,
             "longer than 256 bytes"),
            ("control subject", #"subject = "a\u0007b""# + "\n" + #"executors = ["a"]"# + "\n" + #"verbs = ["ssh"]"#,
             "'a?b' contains control characters"),
            ("executors type", #"subject = "a""# + "\n" + #"executors = "linux-1""# + "\n" + #"verbs = ["ssh"]"#,
             "'executors' must be an array of strings"),
            ("executors element type", #"subject = "a""# + "\n" + #"executors = ["a", 3]"# + "\n" + #"verbs = ["ssh"]"#,
             "'executors' must contain only strings"),
            ("no executors", #"subject = "a""# + "\n" + #"executors = []"# + "\n" + #"verbs = ["ssh"]"#,
             "'executors' must not be empty"),
            ("missing executors", #"subject = "a""# + "\n" + #"verbs = ["ssh"]"#, "'executors' is missing"),
            ("tag without =", #"subject = "a""# + "\n" + #"executors = ["tag:os"]"# + "\n" + #"verbs = ["ssh"]"#,
             "executor 'tag:os': tag selector must be tag:KEY=VALUE"),
            ("tag empty key", #"subject = "a""# + "\n" + #"executors = ["tag:=linux"]"# + "\n" + #"verbs = ["ssh"]"#,
             "executor 'tag:=linux': tag selector has an empty key"),
            ("bad name", #"subject = "a""# + "\n" + #"executors = ["linux/1"]"# + "\n" + #"verbs = ["ssh"]"#,
             "executor 'linux/1': not an executor name"),
            ("long name", #"subject = "a""# + "\n" + #"executors = ["\#(String(repeating: "n", count: 64))"]"# + "\n" + #"verbs = ["ssh"]"#,
             "executor '\(String(repeating: "n", count: 64))': not an executor name"),
            ("unknown verb", #"subject = "a""# + "\n" + #"executors = ["a"]"# + "\n" + #"verbs = ["ssh", "sudo"]"#,
             "unknown verb 'sudo' (expected exec, read, ssh)"),
            ("verb case", #"subject = "a""# + "\n" + #"executors = ["a"]"# + "\n" + #"verbs = ["SSH"]"#, "unknown verb 'SSH'"),
            ("no verbs", #"subject = "a""# + "\n" + #"executors = ["a"]"# + "\n" + #"verbs = []"#, "'verbs' must not be empty"),
            ("verbs type", #"subject = "a""# + "\n" + #"executors = ["a"]"# + "\n" + #"verbs = "ssh""#, "'verbs' must be an array of strings"),
        ]
        for (name, rule, expected) in cases {
            let text = "[[serve.acl]]\n\(good)\n\n[[serve.acl]]\n\(rule)\n"
            assertRefused(text, rule: 2, containing: expected, name)
        }
    }

    func testStructuralErrors() {
        assertRefused("serve = 3", rule: nil, containing: "'serve' must be a table", "serve scalar")
        assertRefused("[serve]\nacl = \"alice\"", rule: nil, containing: "'serve.acl' must be an array of tables", "acl string")
        assertRefused("[serve]\nacl = [\"alice\"]", rule: 1, containing: "must be a table", "acl of strings")
        assertRefused("[serve\nacl = 1", rule: nil, containing: "is not valid TOML: line 1", "syntax")
    }

    func testSizeLimits() {
        let selectors = (0...AccessControlList.maxSelectorsPerRule).map { "\"e\($0)\"" }.joined(separator: ",")
        assertRefused("[[serve.acl]]\nsubject = \"a\"\nexecutors = [\(selectors)]\nverbs = [\"ssh\"]", rule: 1,
                      containing: "'executors' has 1001 entries; the limit is 1000", "selectors")
        let rule = "{subject=\"a\",executors=[\"b\"],verbs=[\"ssh\"]}"
        let rules = Array(repeating: rule, count: AccessControlList.maxRules + 1).joined(separator: ",")
        assertRefused("serve.acl = [\(rules)]", rule: nil, containing: "10001 ACL rules; the limit is 10000", "rules")
    }

    func testLoadReadsTheFile() throws {
        let directory = try TemporaryDirectory(prefix: "ah-acl")
        let file = directory.file("ah.toml")
        try Data("[[serve.acl]]\nsubject = \"alice\"\nexecutors = [\"*\"]\nverbs = [\"read\"]\n".utf8).write(to: file)
        let acl = try AccessControlList.load(configFile: file.path)
        XCTAssertEqual(acl.rules.count, 1)
        try Data("[serve]\n".utf8).write(to: file)
        XCTAssertEqual(try AccessControlList.load(configFile: file.path), .unconfigured)
        XCTAssertThrowsError(try AccessControlList.load(configFile: directory.file("absent.toml").path)) { error in
            XCTAssertTrue("\(error)".contains("absent.toml"))
            XCTAssertTrue("\(error)".contains("does not exist"))
        }
        try Data("[[serve.acl]]\nsubject = \"\"\n".utf8).write(to: file)
        XCTAssertThrowsError(try AccessControlList.load(configFile: file.path)) { error in
            XCTAssertEqual("\(error)", "config file '\(file.path)': [[serve.acl]] rule 1: 'subject' must not be empty (use \"*\" for any subject)")
        }
    }

    private func assertRefused(_ text: String, rule: Int?, containing expected: String, _ name: String,
                               file: StaticString = #filePath, line: UInt = #line) {
        do {
            let acl = try AccessControlList.parse(toml: text, path: path)
            XCTFail("\(name): accepted \(acl.rules.count) rules", file: file, line: line)
        } catch {
            XCTAssertEqual(error.path, path, name, file: file, line: line)
            XCTAssertEqual(error.rule, rule, "\(name): \(error)", file: file, line: line)
            let message = "\(error)"
            XCTAssertTrue(message.contains(expected), "\(name): '\(message)' lacks '\(expected)'", file: file, line: line)
            XCTAssertTrue(message.hasPrefix("config file '\(path)': "), message, file: file, line: line)
            if let rule {
                XCTAssertTrue(message.contains("rule \(rule):"), message, file: file, line: line)
            }
        }
    }
}
