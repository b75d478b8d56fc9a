@testable import AHAuth
import XCTest

final class AccessControlListTests: XCTestCase {
    private let linuxTags = ["os": "linux", "env": "dev"]

    /// alice: ssh+read on linux-1; anyone: read on env=dev; bob: exec everywhere;
    /// carol: ssh on os=linux.
    private var acl: AccessControlList {
        AccessControlList(rules: [
            .init(subject: "alice", executors: [.name("linux-1")], verbs: [.ssh, .read]),
            .init(subject: "*", executors: [.tag(key: "env", value: "dev")], verbs: [.read]),
            .init(subject: "bob", executors: [.any], verbs: [.exec]),
            .init(subject: "carol", executors: [.name("mac-1"), .tag(key: "os", value: "linux")], verbs: [.ssh]),
        ])
    }

    func testDecisionTable() {
        struct Case {
            let subject: String, role: Role, executor: String, tags: [String: String], verb: Verb, allowed: Bool
            let line: UInt
        }
        let dev = linuxTags
        let prod = ["os": "linux", "env": "prod"]
        let mac = ["os": "macos", "env": "prod"]
        let cases: [Case] = [
            // admin: everything, whatever the ACL says
            Case(subject: "root", role: .admin, executor: "linux-9", tags: prod, verb: .ssh, allowed: true, line: #line),
            Case(subject: "root", role: .admin, executor: "mac-1", tags: mac, verb: .exec, allowed: true, line: #line),
            // viewer: never ssh/exec, even where a rule would grant it
            Case(subject: "alice", role: .viewer, executor: "linux-1", tags: dev, verb: .ssh, allowed: false, line: #line),
            Case(subject: "bob", role: .viewer, executor: "linux-1", tags: dev, verb: .exec, allowed: false, line: #line),
            // viewer read: as the ACL says
            Case(subject: "alice", role: .viewer, executor: "linux-1", tags: prod, verb: .read, allowed: true, line: #line),
            Case(subject: "dave", role: .viewer, executor: "linux-2", tags: prod, verb: .read, allowed: false, line: #line),
            // operator, by name
            Case(subject: "alice", role: .operator, executor: "linux-1", tags: prod, verb: .ssh, allowed: true, line: #line),
            Case(subject: "alice", role: .operator, executor: "linux-2", tags: prod, verb: .ssh, allowed: false, line: #line),
            Case(subject: "alice", role: .operator, executor: "Linux-1", tags: prod, verb: .ssh, allowed: false, line: #line),
            // verb not listed
            Case(subject: "alice", role: .operator, executor: "linux-1", tags: prod, verb: .exec, allowed: false, line: #line),
            // subject "*" and a tag selector
            Case(subject: "dave", role: .operator, executor: "linux-2", tags: dev, verb: .read, allowed: true, line: #line),
            Case(subject: "dave", role: .operator, executor: "linux-2", tags: dev, verb: .ssh, allowed: false, line: #line),
            Case(subject: "dave", role: .operator, executor: "linux-2", tags: prod, verb: .read, allowed: false, line: #line),
            Case(subject: "dave", role: .operator, executor: "linux-2", tags: [:], verb: .read, allowed: false, line: #line),
            // "*" executors
            Case(subject: "bob", role: .operator, executor: "anything", tags: [:], verb: .exec, allowed: true, line: #line),
            Case(subject: "bob", role: .operator, executor: "anything", tags: [:], verb: .ssh, allowed: false, line: #line),
            // several selectors: name or tag
            Case(subject: "carol", role: .operator, executor: "mac-1", tags: mac, verb: .ssh, allowed: true, line: #line),
            Case(subject: "carol", role: .operator, executor: "linux-7", tags: prod, verb: .ssh, allowed: true, line: #line),
            Case(subject: "carol", role: .operator, executor: "mac-2", tags: mac, verb: .ssh, allowed: false, line: #line),
            // subjects match exactly
            Case(subject: "Alice", role: .operator, executor: "linux-1", tags: prod, verb: .ssh, allowed: false, line: #line),
            Case(subject: "*", role: .operator, executor: "linux-1", tags: prod, verb: .ssh, allowed: false, line: #line),
        ]
        for test in cases {
            let decision = acl.decide(subject: test.subject, role: test.role, executor: test.executor, tags: test.tags, verb: test.verb)
            XCTAssertEqual(decision.isAllowed, test.allowed, "\(decision)", line: test.line)
        }
    }

    func testReasonsNameSubjectExecutorVerbAndRule() {
        XCTAssertEqual(acl.decide(subject: "alice", role: .operator, executor: "linux-2", tags: [:], verb: .ssh),
                       .deny(reason: "no ACL rule grants 'ssh' on 'linux-2' to 'alice'"))
        XCTAssertEqual(acl.decide(subject: "carol", role: .operator, executor: "linux-7", tags: linuxTags, verb: .ssh),
                       .allow(reason: "ACL rule 4 grants 'ssh' on 'linux-7' to 'carol'"))
        let viewer = acl.decide(subject: "alice", role: .viewer, executor: "linux-1", tags: [:], verb: .exec)
        XCTAssertFalse(viewer.isAllowed)
        for part in ["viewer", "'exec'", "'linux-1'", "'alice'"] {
            XCTAssertTrue(viewer.reason.contains(part), viewer.reason)
        }
        let admin = acl.decide(subject: "root", role: .admin, executor: "linux-1", tags: [:], verb: .ssh)
        XCTAssertEqual(admin, .allow(reason: "role admin grants 'ssh' on 'linux-1' to 'root'"))
        XCTAssertEqual("\(admin)", "allow: role admin grants 'ssh' on 'linux-1' to 'root'")
    }

    func testUnconfiguredAllowsOperatorsButEmptyAllowsNothing() {
        let unconfigured = AccessControlList.unconfigured
        let empty = AccessControlList(rules: [])
        XCTAssertFalse(unconfigured.isConfigured)
        XCTAssertTrue(empty.isConfigured)
        XCTAssertNotEqual(unconfigured, empty)
        for verb in Verb.allCases {
            XCTAssertTrue(unconfigured.decide(subject: "alice", role: .operator, executor: "x", tags: [:], verb: verb).isAllowed)
            XCTAssertFalse(empty.decide(subject: "alice", role: .operator, executor: "x", tags: [:], verb: verb).isAllowed)
            XCTAssertTrue(empty.decide(subject: "root", role: .admin, executor: "x", tags: [:], verb: verb).isAllowed)
        }
        XCTAssertTrue(unconfigured.decide(subject: "v", role: .viewer, executor: "x", tags: [:], verb: .read).isAllowed)
        XCTAssertFalse(unconfigured.decide(subject: "v", role: .viewer, executor: "x", tags: [:], verb: .ssh).isAllowed)
        XCTAssertFalse(unconfigured.decide(subject: "v", role: .viewer, executor: "x", tags: [:], verb: .exec).isAllowed)
        XCTAssertFalse(empty.decide(subject: "v", role: .viewer, executor: "x", tags: [:], verb: .read).isAllowed)
    }

    func testNoRoleGetsMoreThanAHigherOne() {
        let executors = [("linux-1", linuxTags), ("linux-2", ["env": "prod"]), ("mac-1", [:])]
        for list in [acl, .unconfigured, AccessControlList(rules: [])] {
            for subject in ["alice", "bob", "carol", "dave"] {
                for (executor, tags) in executors {
                    for verb in Verb.allCases {
                        let decisions = Role.allCases.sorted().map {
                            list.decide(subject: subject, role: $0, executor: executor, tags: tags, verb: verb).isAllowed
                        }
                        XCTAssertEqual(decisions, decisions.sorted { !$0 && $1 }, "\(subject) \(executor) \(verb)")
                    }
                }
            }
        }
    }

    func testSelectorParsing() throws {
        XCTAssertEqual(try ExecutorSelector(parsing: "*"), .any)
        XCTAssertEqual(try ExecutorSelector(parsing: "linux-1.example_a"), .name("linux-1.example_a"))
        XCTAssertEqual(try ExecutorSelector(parsing: "tag:os=linux"), .tag(key: "os", value: "linux"))
        XCTAssertEqual(try ExecutorSelector(parsing: "tag:k=a=b"), .tag(key: "k", value: "a=b"))
        XCTAssertEqual(try ExecutorSelector(parsing: "tag:k="), .tag(key: "k", value: ""))
        XCTAssertEqual(try ExecutorSelector(parsing: String(repeating: "a", count: 63)), .name(String(repeating: "a", count: 63)))
        let refused: [(String, ExecutorSelectorError)] = [
            ("tag:os", .tagWithoutValue), ("tag:=linux", .emptyTagKey), ("", .invalidName),
            ("linux 1", .invalidName), ("a/b", .invalidName), ("..", .invalidName), ("*x", .invalidName),
            (String(repeating: "a", count: 64), .invalidName), ("tag:os=\u{7}", .controlCharacters),
            ("tag:" + String(repeating: "k", count: 257) + "=v", .tagTooLong),
        ]
        for (text, expected) in refused {
            XCTAssertThrowsError(try ExecutorSelector(parsing: text), text) { XCTAssertEqual($0 as? ExecutorSelectorError, expected, text) }
        }
        XCTAssertEqual(ExecutorSelector.tag(key: "env", value: "dev").description, "tag:env=dev")
    }

    func testVerbs() {
        XCTAssertEqual(Verb.allCases.map(\.rawValue), ["ssh", "exec", "read"])
        XCTAssertEqual(Verb.namesForHelp, "exec, read, ssh")
    }
}
