import AHFleet
import XCTest

/// `--host`, `--tag`, `--all` over the seed's fleet plus a second Linux follower.
final class FollowerSelectionTests: XCTestCase {
    static let members: [FleetMember] = [
        FleetMember(name: "linux-leader", role: .leader, sshUser: "agent", tags: ["os": "linux"]),
        FleetMember(name: "macos-dev", sshUser: "agent", os: .macos, tags: ["os": "macos", "arch": "arm64"]),
        FleetMember(name: "windows-build", sshUser: "agent", os: .windows, tags: ["os": "windows", "arch": "x64"]),
        FleetMember(name: "linux-arm", sshUser: "agent", os: .linux, tags: ["os": "linux", "arch": "arm64"]),
        // OS only from the `os` key: `--tag os=linux` still finds it.
        FleetMember(name: "linux-x64", sshUser: "agent", os: .linux, tags: ["arch": "x64", "pool": "a=b"]),
    ]
    static let config = FleetConfig(file: "/repo/.agents/config.toml", members: members)

    func testSelections() throws {
        let followers = ["macos-dev", "windows-build", "linux-arm", "linux-x64"]
        let cases: [(hosts: [String], tags: [String], all: Bool, expected: [String])] = [
            ([], [], false, followers),
            ([], [], true, followers),
            ([], ["os=windows"], false, ["windows-build"]),
            ([], ["os=linux"], false, ["linux-arm", "linux-x64"]),
            ([], ["arch=arm64"], false, ["macos-dev", "linux-arm"]),
            ([], ["os=macos", "arch=arm64"], false, ["macos-dev"]),
            ([], ["os=linux", "arch=x64"], false, ["linux-x64"]),
            ([], ["pool=a=b"], false, ["linux-x64"]),
            (["macos-dev"], [], false, ["macos-dev"]),
            (["linux-x64", "macos-dev"], [], false, ["macos-dev", "linux-x64"]),
            (["macos-dev", "macos-dev"], [], false, ["macos-dev"]),
            // Hosts are added to what the tags matched.
            (["windows-build"], ["os=linux"], false, ["windows-build", "linux-arm", "linux-x64"]),
            (["linux-arm"], ["os=linux"], false, ["linux-arm", "linux-x64"]),
            (["macos-dev"], ["os=windows"], true, followers),
        ]
        for (hosts, tags, all, expected) in cases {
            let selection = FollowerSelection(hosts: hosts, tags: tags, all: all)
            XCTAssertEqual(try selection.select(from: Self.config).map(\.name), expected, "\(selection)")
        }
    }

    func testErrorsNameTheSelector() {
        let cases: [(hosts: [String], tags: [String], all: Bool, error: SelectionError, message: String)] = [
            (["mac"], [], false, .unknownHost("mac", known: ["macos-dev", "windows-build", "linux-arm", "linux-x64"]),
             "unknown host 'mac': no follower of that name (followers: macos-dev, windows-build, linux-arm, linux-x64)"),
            (["macos-dev", "nope"], ["os=linux"], false, .unknownHost("nope", known: ["macos-dev", "windows-build", "linux-arm", "linux-x64"]),
             "unknown host 'nope'"),
            (["nope"], [], true, .unknownHost("nope", known: ["macos-dev", "windows-build", "linux-arm", "linux-x64"]), "'nope'"),
            (["linux-leader"], [], false, .notAFollower("linux-leader"), "host 'linux-leader' is the fleet's leader, not a follower"),
            ([], ["os"], false, .invalidTag("os"), "invalid tag 'os': expected KEY=VALUE"),
            ([], ["=linux"], false, .invalidTag("=linux"), "invalid tag '=linux'"),
            ([], ["os="], false, .invalidTag("os="), "invalid tag 'os='"),
            ([], ["os=linux", "arch"], true, .invalidTag("arch"), "invalid tag 'arch'"),
            ([], ["os=solaris"], false, .noMatch(tags: ["os=solaris"]), "no follower matches --tag os=solaris"),
            ([], ["os=macos", "arch=x64"], false, .noMatch(tags: ["os=macos", "arch=x64"]),
             "no follower matches --tag os=macos --tag arch=x64"),
            // Tags that match nothing are an error even when hosts were named too.
            (["macos-dev"], ["os=solaris"], false, .noMatch(tags: ["os=solaris"]), "--tag os=solaris"),
        ]
        for (hosts, tags, all, expected, message) in cases {
            let selection = FollowerSelection(hosts: hosts, tags: tags, all: all)
            XCTAssertThrowsError(try selection.select(from: Self.config), "\(selection)") { error in
                XCTAssertEqual(error as? SelectionError, expected)
                XCTAssertTrue(String(describing: error).contains(message), String(describing: error))
            }
        }
    }

    func testAFleetWithoutFollowers() {
        let config = FleetConfig(file: "/repo/.agents/config.toml", members: [Self.members[0]])
        XCTAssertThrowsError(try FollowerSelection().select(from: config)) { error in
            XCTAssertEqual(error as? SelectionError, .noFollowers(source: "/repo/.agents/config.toml"))
            XCTAssertEqual(String(describing: error), "the fleet in '/repo/.agents/config.toml' has no followers")
        }
    }

    func testParseTag() {
        XCTAssertEqual(FollowerSelection.parseTag("os=linux").map { [$0.key, $0.value] }, ["os", "linux"])
        XCTAssertEqual(FollowerSelection.parseTag("k=v=w").map { [$0.key, $0.value] }, ["k", "v=w"])
        XCTAssertNil(FollowerSelection.parseTag("k"))
        XCTAssertNil(FollowerSelection.parseTag(""))
    }
}
