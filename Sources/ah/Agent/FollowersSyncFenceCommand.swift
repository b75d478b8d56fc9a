import AHLeader
import ArgumentParser
import Foundation

/// `ah agent followers sync-fence`: snapshot the leader workspace and make every selected
/// follower hold exactly it, each within its deadline.
struct FollowersSyncFenceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync-fence",
        abstract: "Sync the followers to a snapshot of the leader workspace and prove each holds it.",
        discussion: """
            ah agent followers sync-fence [--host NAME]... [--tag KEY=VALUE]... [--all] [--timeout DURATION] [--json]
            Takes a snapshot of the leader workspace (the leader member's workspace, else the \
            directory holding .agents/config.toml; [fleet.sync] ignores apply, .git always), \
            sends each selected follower only what differs, in parallel, and compares the root \
            hash each follower computes with the snapshot id. Each follower has its own deadline \
            (--timeout, else [fleet.sync] timeout). Exit 0: every follower consistent; 1: any \
            timed out or failed (named).
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var leader: LeaderOptions

    @Option(name: .customLong("host"), help: ArgumentHelp("A follower by name; repeatable (adds hosts).", valueName: "name"))
    var hosts: [String] = []

    @Option(name: .customLong("tag"), help: ArgumentHelp("KEY=VALUE; repeatable (all must match).", valueName: "key=value"))
    var tags: [String] = []

    @Flag(help: "Every follower (the default when no selector is given).")
    var all = false

    @Option(help: ArgumentHelp("Each follower's deadline; default [fleet.sync] timeout (60s).", valueName: "duration"))
    var timeout: HumanDuration?

    @Flag(help: "Print {\"snapshotId\",\"hosts\":[...]} as JSON.")
    var json = false

    func validate() throws {
        if let timeout, timeout.seconds <= 0 { throw ValidationError("--timeout '\(timeout)' must be positive") }
    }

    func run() async throws {
        var request = FenceRequest()
        request.hosts = hosts
        request.tags = tags
        request.all = all
        request.timeoutSeconds = timeout.map { Double($0.seconds) }
        let result = try await leader.send(.syncFence(request)) { printProgress($0) }
        guard case .fence(let report) = result else { throw CLIError.failed("the leader service answered with something else") }
        try FenceOutput.finish(report, json: json)
    }
}

enum FenceOutput {
    /// Prints the report (text or JSON) and exits 1 naming the laggards when any.
    static func finish(_ report: FenceReport, json: Bool) throws {
        if json {
            printJSONDocument(report)
        } else {
            print("snapshot \(report.snapshotId)")
            let width = report.hosts.map(\.name.count).max() ?? 0
            for host in report.hosts {
                let name = host.name.padding(toLength: width, withPad: " ", startingAt: 0)
                let state = host.state.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)
                print("\(name)  \(state)  \(host.tookMs) ms" + (host.error.map { "  \($0)" } ?? ""))
            }
        }
        fflush(nil)
        let laggards = report.hosts.filter { $0.state != .consistent }
        guard !laggards.isEmpty else { return }
        let named = laggards.map { "\($0.name) (\($0.state.rawValue))" }.joined(separator: ", ")
        FileHandle.standardError.write(Data(("ah: not consistent with \(report.snapshotId): \(named); "
            + "narrow the selection (--host/--tag) to fence the others, or raise --timeout\n").utf8))
        throw ExitCode(1)
    }
}

/// `ah agent followers moments`: the session's moments (before and after each fence).
struct FollowersMomentsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "moments", abstract: "List the session's moments (before and after each fence) and their snapshots.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var leader: LeaderOptions

    @Flag(help: "Print {\"moments\":[{\"id\",\"ts\",\"label\",\"snapshotId\"}]} as JSON.")
    var json = false

    func run() async throws {
        let result = try await leader.send(.moments) { printProgress($0) }
        guard case .moments(let report) = result else {
            throw CLIError.failed("the leader service answered with something else")
        }
        if json {
            printJSONDocument(report)
            return
        }
        for moment in report.moments {
            print("\(moment.id)  \(moment.ts)  \(moment.snapshotId ?? "-")  \(moment.label)")
        }
    }
}

/// `ah agent followers seek MOMENT_ID`: restore the leader workspace to a moment's snapshot
/// (the current state saved first) and fence the followers to it.
struct FollowersSeekCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seek",
        abstract: "Restore the leader workspace to a moment's snapshot (saving the current state first), then fence.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var leader: LeaderOptions

    @Argument(help: ArgumentHelp("A moment id from `followers moments`.", valueName: "moment-id"))
    var moment: String

    @Flag(help: "Print the seek report as JSON.")
    var json = false

    func run() async throws {
        let result = try await leader.send(.seek(moment: moment)) { printProgress($0) }
        guard case .seek(let report) = result else {
            throw CLIError.failed("the leader service answered with something else")
        }
        if json {
            printJSONDocument(report)
            if report.fence.exitCode != 0 { throw ExitCode(1) }
            return
        }
        FileHandle.standardError.write(Data("ah: the previous workspace is saved as moment \(report.savedMoment) (\(report.savedSnapshotId))\n".utf8))
        try FenceOutput.finish(report.fence, json: false)
    }
}
