import AHFleet
import XCTest

/// Each command once per OS, round-robin over that OS's followers.
final class ShardPlanTests: XCTestCase {
    static func follower(_ name: String, _ os: FleetOS?) -> FleetMember { FleetMember(name: name, sshUser: "u", os: os) }

    func testSevenCommandsOverThreeLinuxAndOneMacOSFollower() throws {
        let followers = [Self.follower("l1", .linux), Self.follower("m1", .macos), Self.follower("l2", .linux),
                         Self.follower("l3", .linux)]
        let commands = (0..<7).map { "pytest shard\($0)" }
        let plan = try ShardPlan.make(commands: commands, followers: followers, concurrency: 2)
        XCTAssertEqual(plan.concurrency, 2)
        let expected: [(FleetOS, String, Int)] = [
            (.linux, "l1", 0), (.linux, "l2", 1), (.linux, "l3", 2), (.linux, "l1", 3), (.linux, "l2", 4), (.linux, "l3", 5),
            (.linux, "l1", 6),
            (.macos, "m1", 0), (.macos, "m1", 1), (.macos, "m1", 2), (.macos, "m1", 3), (.macos, "m1", 4), (.macos, "m1", 5),
            (.macos, "m1", 6),
        ]
        XCTAssertEqual(plan.assignments, expected.enumerated().map { order, item in
            ShardAssignment(order: order, command: "pytest shard\(item.2)", os: item.0, host: item.1, shardIndex: item.2, shardCount: 7)
        })
        XCTAssertEqual(plan.hosts, ["l1", "l2", "l3", "m1"])
        XCTAssertEqual(plan.queue(for: "l1").map(\.shardIndex), [0, 3, 6])
        XCTAssertEqual(plan.queue(for: "l2").map(\.shardIndex), [1, 4])
        XCTAssertEqual(plan.queue(for: "l3").map(\.shardIndex), [2, 5])
        XCTAssertEqual(plan.queue(for: "m1").map(\.shardIndex), Array(0..<7))
        // Every command exactly once per OS.
        for os in [FleetOS.linux, .macos] {
            XCTAssertEqual(plan.assignments.filter { $0.os == os }.map(\.shardIndex).sorted(), Array(0..<7))
        }
    }

    func testTable() throws {
        // followers (name:os), commands, expected hosts per command index, grouped by OS in first-seen order.
        let cases: [(followers: [FleetMember], commands: Int, expected: [[String]])] = [
            ([Self.follower("a", .linux)], 3, [["a", "a", "a"]]),
            ([Self.follower("a", .linux), Self.follower("b", .linux)], 1, [["a"]]),
            ([Self.follower("a", .linux), Self.follower("b", .linux), Self.follower("c", .linux)], 2, [["a", "b"]]),
            ([Self.follower("w", .windows), Self.follower("a", .linux), Self.follower("w2", .windows)], 3,
             [["w", "w2", "w"], ["a", "a", "a"]]),
            // Unknown OS: one group of its own.
            ([Self.follower("x", nil), Self.follower("a", .linux), Self.follower("y", nil)], 3,
             [["x", "y", "x"], ["a", "a", "a"]]),
        ]
        for (followers, count, expected) in cases {
            let commands = (0..<count).map { "cmd \($0)" }
            let plan = try ShardPlan.make(commands: commands, followers: followers, concurrency: 1)
            XCTAssertEqual(plan.assignments.map(\.host), expected.flatMap { $0 }, "\(followers.map(\.name))")
            XCTAssertEqual(plan.assignments.map(\.order), Array(plan.assignments.indices))
            XCTAssertEqual(plan.assignments.map(\.shardIndex), expected.flatMap { Array(0..<$0.count) })
            XCTAssertTrue(plan.assignments.allSatisfy { $0.shardCount == count && $0.command == "cmd \($0.shardIndex)" })
        }
    }

    func testErrors() {
        let one = [Self.follower("a", .linux)]
        let cases: [([String], [FleetMember], Int, ShardPlanError, String)] = [
            ([], one, 1, .noCommands, "no --command to shard"),
            (["a", "  "], one, 1, .emptyCommand(index: 1), "--command number 2 is empty"),
            (["a"], [], 1, .noFollowers, "no follower"),
            (["a"], one, 0, .invalidConcurrency(0), "concurrency 0 is invalid"),
            (["a"], one + one, 1, .duplicateFollower("a"), "follower 'a' is listed twice"),
        ]
        for (commands, followers, concurrency, expected, message) in cases {
            XCTAssertThrowsError(try ShardPlan.make(commands: commands, followers: followers, concurrency: concurrency)) { error in
                XCTAssertEqual(error as? ShardPlanError, expected)
                XCTAssertTrue(String(describing: error).contains(message), String(describing: error))
            }
        }
    }
}
