@testable import AHLeader
import Crypto
import Foundation
import XCTest

/// The leader's pure parts: the --json shapes of cli.md, text output, known_hosts matching.
final class LeaderUnitTests: XCTestCase {
    func testRunReportJSONHasNullsWhereCliMdSaysNull() throws {
        let host = RunReport.Host(name: "a", os: "linux", status: .unreachable, exit: nil, signal: nil, stdout: "", stderr: "",
                                  durationMs: 5, logFile: nil, error: "gone")
        let report = RunReport(hosts: [host], commands: nil, summary: .init(passed: [], failed: [], unreachable: ["a"]))
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: JSONEncoder().encode(report)) as? [String: Any])
        let first = try XCTUnwrap((json["hosts"] as? [[String: Any]])?.first)
        XCTAssertTrue(first["exit"] is NSNull, "\(first)")
        XCTAssertTrue(first["signal"] is NSNull, "\(first)")
        XCTAssertNil(json["commands"], "commands only with --command")
        XCTAssertEqual(report.exitCode, 3)
        XCTAssertEqual(report.summaryLine, "0 passed, 0 failed, 1 unreachable")

        let list = FollowersListReport(followers: [.init(name: "a", os: nil, tags: [:], path: nil, health: .unreachable, error: nil)])
        let listJSON = try XCTUnwrap(try JSONSerialization.jsonObject(with: JSONEncoder().encode(list)) as? [String: Any])
        let follower = try XCTUnwrap((listJSON["followers"] as? [[String: Any]])?.first)
        XCTAssertTrue(follower["path"] is NSNull)
        let path = PathReport(method: .accessPoint, target: "a:22", rttMs: 1.5, relay: "http://x")
        let pathJSON = String(decoding: try JSONEncoder().encode(path), as: UTF8.self)
        XCTAssertTrue(pathJSON.contains("\"method\":\"access-point\""), pathJSON)
    }

    func testExitCodesFollowCliMd() {
        func report(_ statuses: [RunReport.Status]) -> RunReport {
            RunReport(hosts: statuses.enumerated().map { RunReport.Host(name: "h\($0.offset)", os: nil, status: $0.element, exit: nil,
                                                                         signal: nil, stdout: "", stderr: "", durationMs: 0) },
                      commands: nil, summary: .init(passed: [], failed: [], unreachable: []))
        }
        XCTAssertEqual(report([.passed, .passed]).exitCode, 0)
        XCTAssertEqual(report([.passed, .failed, .unreachable]).exitCode, 1)
        XCTAssertEqual(report([.timeout]).exitCode, 1)
        XCTAssertEqual(report([.passed, .unreachable]).exitCode, 3)
    }

    func testLinePrefixerKeepsPartialLinesUntilTheirNewline() {
        var prefixer = RunOutput.LinePrefixer()
        XCTAssertEqual(prefixer.feed(host: "a", stream: .stdout, text: "one\ntw"), ["a: one"])
        XCTAssertEqual(prefixer.feed(host: "b", stream: .stderr, text: "x\n"), ["b [stderr]: x"])
        XCTAssertEqual(prefixer.feed(host: "a", stream: .stdout, text: "o\n\nthree"), ["a: two", "a: "])
        XCTAssertEqual(prefixer.finish(), ["a: three"])
    }

    func testGatherGroupsIdenticalOutputs() {
        func host(_ name: String, _ out: String) -> RunReport.Host {
            RunReport.Host(name: name, os: nil, status: .passed, exit: 0, signal: nil, stdout: out, stderr: "", durationMs: 0)
        }
        let report = RunReport(hosts: [host("c", "same\n"), host("a", "same\n"), host("b", "other\n")], commands: nil,
                               summary: .init(passed: ["a", "b", "c"], failed: [], unreachable: []))
        let text = RunOutput.gathered(report)
        XCTAssertTrue(text.contains("a,c (2)\n---------------\nsame\n"), text)
        XCTAssertTrue(text.contains("b (1)\n---------------\nother\n"), text)
        XCTAssertEqual(text.components(separatedBy: "same").count, 2, "printed once")
    }

    func testKnownHostsPlainPortAndHashedEntries() throws {
        let blob = Data((0..<51).map { UInt8($0) })
        let key = blob.base64EncodedString()
        let salt = Data((0..<20).map { UInt8($0 &* 7) })
        let hashedName = Data(HMAC<Insecure.SHA1>.authenticationCode(for: Data("hashed.example".utf8), using: SymmetricKey(data: salt)))
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kh-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        try """
            # comment
            plain.example,other ssh-ed25519 \(key)
            [port.example]:2222 ssh-ed25519 \(key)
            |1|\(salt.base64EncodedString())|\(hashedName.base64EncodedString()) ssh-ed25519 \(key)
            @revoked revoked.example ssh-ed25519 \(key)
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let expected = ExpectedHostKeys.fingerprint(ofBlob: blob)
        XCTAssertTrue(expected.hasPrefix("SHA256:") && !expected.hasSuffix("="))
        XCTAssertEqual(try ExpectedHostKeys.fromKnownHosts(path: file, host: "plain.example", port: 22), [expected])
        XCTAssertEqual(try ExpectedHostKeys.fromKnownHosts(path: file, host: "port.example", port: 2222), [expected])
        XCTAssertEqual(try ExpectedHostKeys.fromKnownHosts(path: file, host: "port.example", port: 22), [])
        XCTAssertEqual(try ExpectedHostKeys.fromKnownHosts(path: file, host: "hashed.example", port: 22), [expected])
        XCTAssertEqual(try ExpectedHostKeys.fromKnownHosts(path: file, host: "revoked.example", port: 22), [])
    }

    func testSocketNameDependsOnConfigAndVersion() {
        let state = URL(fileURLWithPath: "/tmp/s")
        let a = LeaderPaths(stateDirectory: state, fleetConfig: "/x/a.toml", version: "1.0.0")
        XCTAssertEqual(a, LeaderPaths(stateDirectory: state, fleetConfig: "/x/a.toml", version: "1.0.0"))
        XCTAssertNotEqual(a.socket, LeaderPaths(stateDirectory: state, fleetConfig: "/x/b.toml", version: "1.0.0").socket)
        XCTAssertNotEqual(a.socket, LeaderPaths(stateDirectory: state, fleetConfig: "/x/a.toml", version: "1.0.1").socket)
        let deep = LeaderPaths(stateDirectory: URL(fileURLWithPath: "/" + String(repeating: "d", count: 120)), fleetConfig: "/a", version: "1")
        XCTAssertLessThanOrEqual(deep.socket.path.utf8.count, 107)
    }
}
