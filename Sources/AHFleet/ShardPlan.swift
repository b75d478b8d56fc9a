/// One `--command` placed on one follower.
public struct ShardAssignment: Sendable, Hashable {
    /// Position in `ShardPlan.assignments` (the report's order).
    public var order: Int
    public var command: String
    /// The OS group this run belongs to (nil: followers whose OS is unknown form one group).
    public var os: FleetOS?
    /// The follower's name.
    public var host: String
    /// The command's index in the `--command` list (`AH_SHARD_INDEX`).
    public var shardIndex: Int
    /// How many commands the list has (`AH_SHARD_COUNT`).
    public var shardCount: Int

    public init(order: Int, command: String, os: FleetOS?, host: String, shardIndex: Int, shardCount: Int) {
        self.order = order
        self.command = command
        self.os = os
        self.host = host
        self.shardIndex = shardIndex
        self.shardCount = shardCount
    }
}

/// Sharding `--command`s: for each OS among the selected followers, each command runs
/// exactly once on one follower of that OS, round-robin in follower order (command i on
/// follower i mod N of that OS). So 7 commands over 3 Linux followers and 1 macOS follower
/// run 3+2+2 on Linux and all 7 on the Mac.
///
/// `assignments` lists the OS groups in the order their first follower appears, each group
/// by command index. A host's queue (`queue(for:)`) keeps the command order; the runner
/// starts at most `concurrency` of a host's queue at a time.
public struct ShardPlan: Sendable, Hashable {
    public var assignments: [ShardAssignment]
    /// Commands at once per host.
    public var concurrency: Int

    public init(assignments: [ShardAssignment], concurrency: Int) {
        self.assignments = assignments
        self.concurrency = concurrency
    }

    /// Hosts with at least one assignment, in assignment order.
    public var hosts: [String] {
        var seen = Set<String>()
        var hosts: [String] = []
        for assignment in assignments where seen.insert(assignment.host).inserted { hosts.append(assignment.host) }
        return hosts
    }

    /// The host's assignments in command order.
    public func queue(for host: String) -> [ShardAssignment] {
        assignments.filter { $0.host == host }.sorted { $0.shardIndex < $1.shardIndex }
    }

    public static func make(commands: [String], followers: [FleetMember], concurrency: Int) throws(ShardPlanError) -> ShardPlan {
        guard !commands.isEmpty else { throw ShardPlanError.noCommands }
        if let index = commands.firstIndex(where: { $0.allSatisfy(\.isWhitespace) }) {
            throw ShardPlanError.emptyCommand(index: index)
        }
        guard !followers.isEmpty else { throw ShardPlanError.noFollowers }
        guard concurrency >= 1 else { throw ShardPlanError.invalidConcurrency(concurrency) }
        var seen = Set<String>()
        for follower in followers where !seen.insert(follower.name).inserted {
            throw ShardPlanError.duplicateFollower(follower.name)
        }

        var groupOrder: [FleetOS?] = []
        var groups: [FleetOS?: [FleetMember]] = [:]
        for follower in followers {
            if groups[follower.os] == nil { groupOrder.append(follower.os) }
            groups[follower.os, default: []].append(follower)
        }
        var assignments: [ShardAssignment] = []
        for os in groupOrder {
            let members = groups[os]!
            for (index, command) in commands.enumerated() {
                assignments.append(ShardAssignment(order: assignments.count, command: command, os: os,
                                                   host: members[index % members.count].name,
                                                   shardIndex: index, shardCount: commands.count))
            }
        }
        return ShardPlan(assignments: assignments, concurrency: concurrency)
    }
}

/// Why no shard plan can be made.
public enum ShardPlanError: Error, Sendable, Hashable, CustomStringConvertible {
    case noCommands
    /// The `--command` at this index (from 0) is empty.
    case emptyCommand(index: Int)
    case noFollowers
    case invalidConcurrency(Int)
    case duplicateFollower(String)

    public var description: String {
        switch self {
        case .noCommands: "no --command to shard"
        case .emptyCommand(let index): "--command number \(index + 1) is empty"
        case .noFollowers: "no follower to run the commands on"
        case .invalidConcurrency(let value): "concurrency \(value) is invalid: at least 1 command at a time per host"
        case .duplicateFollower(let name): "follower '\(name)' is listed twice"
        }
    }
}
