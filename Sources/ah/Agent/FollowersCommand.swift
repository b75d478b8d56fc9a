import AHExecutor
import AHLeader
import ArgumentParser
import Foundation
import Logging

/// `ah agent followers ...`: thin clients of the leader service (one request on its Unix
/// socket; the service is started when none answers), or the service itself.
struct FollowersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "followers",
        abstract: "Leader side: list followers and run commands on them through persistent SSH sessions.",
        discussion: """
            The fleet comes from .agents/config.toml (found by walking up from the current \
            directory) or --fleet-config. The commands talk to a leader service that keeps one \
            SSH session and one `ah agent follower-helper` per follower warm between calls; it \
            is started on first use and exits after --idle-exit without requests \
            (`ah agent followers stop` ends it at once). --no-daemon runs in this process instead.
            """,
        subcommands: [FollowersListCommand.self, FollowersRunCommand.self, FollowersSessionCommand.self,
                      FollowersDaemonCommand.self, FollowersStopCommand.self,
                      FollowersSlurpCommand.self,
                      FollowersSyncFenceCommand.self, FollowersMomentsCommand.self, FollowersSeekCommand.self]
    )
}

/// Options every `followers` client command takes.
struct LeaderOptions: ParsableArguments {
    @Option(name: .customLong("fleet-config"), help: ArgumentHelp("The fleet config (default: .agents/config.toml, searched upwards from here).", valueName: "file"))
    var fleetConfig: String?

    @Flag(name: .customLong("no-daemon"), help: "Run in this process instead of through the leader service (for debugging).")
    var noDaemon = false

    @Option(name: .customLong("idle-exit"), help: ArgumentHelp("For an auto-started service: stop after this long without requests.", valueName: "duration"))
    var idleExit: HumanDuration = HumanDuration(seconds: 600)

    /// The fleet config file: the flag, else the first `.agents/config.toml` from the current
    /// directory upwards. Exit 2 naming where it looked.
    func configPath() throws -> String {
        if let fleetConfig {
            guard FileManager.default.isReadableFile(atPath: fleetConfig) else {
                throw CLIError.usage("--fleet-config '\(fleetConfig)' is not a readable file")
            }
            return URL(fileURLWithPath: fleetConfig).standardizedFileURL.path
        }
        var directory = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).standardizedFileURL
        while true {
            let candidate = directory.appendingPathComponent(".agents/config.toml").path
            if FileManager.default.isReadableFile(atPath: candidate) { return candidate }
            let parent = directory.deletingLastPathComponent()
            if parent.path == directory.path { break }
            directory = parent
        }
        throw CLIError.usage("no .agents/config.toml in \(FileManager.default.currentDirectoryPath) or above; give --fleet-config FILE")
    }

    func paths(config: String) -> LeaderPaths {
        LeaderPaths(stateDirectory: LeaderPaths.defaultStateDirectory(), fleetConfig: config, version: SystemFacts.agentVersion)
    }

    /// Sends one request to the service (starting it when needed), or answers it in-process
    /// with --no-daemon. Progress goes to stderr; `onOutput` gets live output.
    func send(_ request: LeaderRequest, onOutput: @escaping @Sendable (LeaderEvent) -> Void = { _ in }) async throws -> LeaderResult {
        let config = try configPath()
        do {
            if noDaemon {
                let logger = CLILogging.logger("ah.leader")
                let handler = try LeaderEngine.make(fleetConfig: config, paths: paths(config: config), version: SystemFacts.agentVersion,
                                                    logger: logger)
                defer { Task { await handler.shutdown() } }
                return try await handler.handle(request) { event in onOutput(event) }
            }
            let argv = [SSHConfigCommand.currentBinary(), "agent", "followers", "daemon", "--fleet-config", config,
                        "--idle-exit", "\(idleExit.seconds)s"]
            let client = LeaderClient(paths: paths(config: config), autostart: argv)
            return try await client.send(request, onEvent: onOutput)
        } catch let failure as LeaderFailure {
            switch failure.exitCode {
            case 2: throw CLIError.usage(failure.description)
            case 3: throw CLIError.unreachable(failure.description)
            default: throw CLIError.failed(failure.description)
            }
        }
    }
}

/// Writes progress lines to stderr (never stdout: that carries data and --json).
func printProgress(_ event: LeaderEvent) {
    if case .progress(let text) = event {
        FileHandle.standardError.write(Data("ah: \(text)\n".utf8))
    }
}

struct FollowersListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the followers: OS, tags, path (direct or through the access point), RTT and health.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var leader: LeaderOptions

    @Flag(help: "Print {\"followers\":[...]} as JSON.")
    var json = false

    func run() async throws {
        let result = try await leader.send(.list) { printProgress($0) }
        guard case .list(let report) = result else { throw CLIError.failed("the leader service answered with something else") }
        if json {
            printJSONDocument(report)
            return
        }
        let header = ["NAME", "OS", "HEALTH", "PATH", "RTT", "TAGS"]
        let rows = [header] + report.followers.map { follower in
            [follower.name, follower.os ?? "?", follower.health.rawValue,
             follower.path.map { "\($0.method.rawValue) \($0.target)" } ?? "-",
             follower.path.map { String(format: "%.1f ms", $0.rttMs) } ?? "-",
             follower.tags.isEmpty ? "-" : follower.tags.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")]
        }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            print(row.enumerated().map { $0.offset == row.count - 1 ? $0.element : $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: "  "))
        }
        for follower in report.followers where follower.error != nil {
            FileHandle.standardError.write(Data("ah: \(follower.name): \(follower.error!)\n".utf8))
        }
    }
}

struct FollowersRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a command on the followers in parallel and aggregate the results.",
        discussion: """
            ah agent followers run [--host NAME]... [--tag KEY=VALUE]... [--all] [--] COMMAND [ARGS...]
            Each follower runs the command in its workspace with its own shell (bash -lc on \
            Linux, zsh -lc on macOS, PowerShell on Windows), every argument quoted for that \
            shell. Output streams live, each line prefixed with its host. With --command \
            (repeatable) the commands are sharded: for each OS among the selected followers \
            each command runs exactly once, round-robin. Exit 0: every host passed; 1: any \
            failed or timed out; 3: none failed but some were unreachable; 2: bad usage.
            """,
        aliases: [])

    @OptionGroup var global: GlobalOptions
    @OptionGroup var leader: LeaderOptions
    @OptionGroup var run: RunOptions

    /// The forwarded command is captured with its flags, so `--help` would be taken for a
    /// command: answer it as help when it comes first.
    func validate() throws {
        if ["--help", "-h", "help"].contains(run.command.first ?? "") { throw CleanExit.helpRequest(self) }
    }

    func run() async throws { try await run.execute(leader: leader) }
}

/// `followers run` and its alias `ah agent run-everywhere`.
struct RunOptions: ParsableArguments {
    @Option(name: .customLong("host"), help: ArgumentHelp("A follower by name; repeatable (adds hosts).", valueName: "name"))
    var hosts: [String] = []

    @Option(name: .customLong("tag"), help: ArgumentHelp("KEY=VALUE; repeatable (all must match).", valueName: "key=value"))
    var tags: [String] = []

    @Flag(help: "Every follower (the default when no selector is given).")
    var all = false

    @Flag(help: "Print one JSON document (hosts, commands, summary) instead of live output.")
    var json = false

    @Flag(help: "Print identical outputs once under the list of hosts that produced them.")
    var gather = false

    @Option(help: ArgumentHelp("Kill the command (and everything it started) after this long; default [fleet.execution] timeout.", valueName: "duration"))
    var timeout: HumanDuration?

    @Flag(name: .customLong("no-fence"), help: "Do not sync the followers to the leader's workspace first.")
    var noFence = false

    @Option(name: .customLong("command"), help: ArgumentHelp("A shell command to shard across the followers; repeatable.", valueName: "cmd"))
    var commands: [String] = []

    @Option(name: .customLong("env"), help: ArgumentHelp("K=V set for the command on every follower; repeatable.", valueName: "k=v"))
    var env: [String] = []

    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The command and its arguments.", valueName: "command"))
    var command: [String] = []

    func validate() throws {
        let words = argv
        if words.isEmpty == commands.isEmpty {
            throw ValidationError(words.isEmpty ? "give a command (after --) or --command" : "give either a command after -- or --command, not both")
        }
        for pair in env {
            guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
                throw ValidationError("--env '\(pair)' is not K=V")
            }
        }
        if let timeout, timeout.seconds <= 0 { throw ValidationError("--timeout '\(timeout)' must be positive") }
    }

    /// The forwarded command without a leading `--`.
    var argv: [String] { command.first == "--" ? Array(command.dropFirst()) : command }

    func execute(leader: LeaderOptions) async throws {
        var request = RunRequest()
        request.hosts = hosts
        request.tags = tags
        request.all = all
        request.argv = argv
        request.commands = commands
        request.noFence = noFence
        request.timeoutSeconds = timeout.map { Double($0.seconds) }
        for pair in env {
            let equals = pair.firstIndex(of: "=")!
            request.env[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        let live = !json && !gather
        let printer = LivePrinter()
        let result = try await leader.send(.run(request)) { event in
            if case .output(let host, let stream, let text) = event, live {
                printer.feed(host: host, stream: stream, text: text)
            } else {
                printProgress(event)
            }
        }
        guard case .run(let report) = result else { throw CLIError.failed("the leader service answered with something else") }
        if json {
            printJSONDocument(report)
        } else {
            if live { printer.finish() } else { print(RunOutput.gathered(report), terminator: "") }
            print(RunOutput.summary(report), terminator: "")
        }
        fflush(nil)
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }
}

/// Live output: whole lines with their host prefix, stdout and stderr each to its own stream.
final class LivePrinter: @unchecked Sendable {
    private let lock = NSLock()
    private var prefixer = RunOutput.LinePrefixer()

    func feed(host: String, stream: OutputStreamKind, text: String) {
        lock.withLock {
            let lines = prefixer.feed(host: host, stream: stream, text: text)
            guard !lines.isEmpty else { return }
            let joined = lines.joined(separator: "\n") + "\n"
            if stream == .stdout {
                print(joined, terminator: "")
                fflush(nil)
            } else {
                FileHandle.standardError.write(Data(joined.utf8))
            }
        }
    }

    func finish() {
        lock.withLock {
            for line in prefixer.finish() { print(line) }
        }
    }
}

struct FollowersSessionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "session", abstract: "Show the session the leader's events belong to.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var leader: LeaderOptions

    @Flag(help: "Print {\"id\",\"startedAt\",\"fleet\"} as JSON.")
    var json = false

    func run() async throws {
        guard case .session(let report) = try await leader.send(.session) else { throw CLIError.failed("unexpected answer") }
        if json { printJSONDocument(report) } else { print("session \(report.id) (fleet \(report.fleet), since \(report.startedAt))") }
    }
}

struct FollowersDaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Run the leader service (the other followers commands start it when none answers).")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var leader: LeaderOptions

    func run() async throws {
        let logger = CLILogging.logger("ah.leader")
        let config = try leader.configPath()
        let paths = leader.paths(config: config)
        let handler: any LeaderRequestHandler
        do {
            handler = try LeaderEngine.make(fleetConfig: config, paths: paths, version: SystemFacts.agentVersion, logger: logger)
        } catch let failure as LeaderFailure {
            throw failure.exitCode == 2 ? CLIError.usage(failure.description) : CLIError.failed(failure.description)
        }
        let daemon = LeaderDaemon(paths: paths, handler: handler, idleExit: .seconds(leader.idleExit.seconds), logger: logger)
        do {
            try await ServiceRunner.run([daemon], logger: logger)
        } catch let running as LeaderDaemon.AlreadyRunning {
            // Two commands auto-started a service at once: the other one serves.
            logger.info("\(running.description): exiting")
        }
    }
}

struct FollowersStopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop", abstract: "Stop the leader service: SSH sessions and helpers are closed.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var leader: LeaderOptions

    func run() async throws {
        let config = try leader.configPath()
        let client = LeaderClient(paths: leader.paths(config: config), autostart: nil)
        guard await client.isRunning() else {
            FileHandle.standardError.write(Data("ah: no leader service is running for \(config)\n".utf8))
            return
        }
        do { _ = try await client.send(.stop) { _ in } } catch let failure as LeaderFailure {
            throw CLIError.failed(failure.description)
        }
    }
}

/// `ah agent run-everywhere`: the seed's name for `followers run` (same flags, same output).
struct RunEverywhereCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run-everywhere", abstract: "Same as `ah agent followers run`.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var leader: LeaderOptions
    @OptionGroup var run: RunOptions

    /// The forwarded command is captured with its flags, so `--help` would be taken for a
    /// command: answer it as help when it comes first.
    func validate() throws {
        if ["--help", "-h", "help"].contains(run.command.first ?? "") { throw CleanExit.helpRequest(self) }
    }

    func run() async throws { try await run.execute(leader: leader) }
}

/// One JSON document on stdout (cli.md: nothing else there with --json).
func printJSONDocument<T: Encodable>(_ value: T) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    guard let data = try? encoder.encode(value) else { return }
    FileHandle.standardOutput.write(data + Data("\n".utf8))
}
