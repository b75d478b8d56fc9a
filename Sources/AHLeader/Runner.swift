import Foundation
import Logging

/// One `followers run`: selection, launch plans, fan-out over the followers' links (or the
/// shard plan with `--command`), live output, per-host logs, and the report.
///
/// Never hung by one follower: connecting is bounded by `ssh_connect_timeout`, a command by
/// its timeout (the helper kills its process group), and a follower that stops answering
/// altogether by a watchdog at the timeout plus a grace period.
struct Runner {
    let engine: LeaderEngine
    let request: RunRequest
    let emit: @Sendable (LeaderEvent) async -> Void

    /// What the report keeps of a host's output (all of it goes to the host's log file).
    static let reportedOutputLimit = 4 << 20
    /// How long past its timeout a command may stay silent before the host is given up.
    static let watchdogGrace: Duration = .seconds(15)

    func execute() async throws -> RunReport {
        let fleet = engine.fleet
        let selected = try FleetBridge.select(fleet: fleet, hosts: request.hosts, tags: request.tags, all: request.all)
        // The fence first: a command never starts on a follower that does not hold the snapshot.
        let gate = try await FenceGate.check(engine: engine, selected: selected, skip: request.noFence, emit: emit)
        let timeout = request.timeoutSeconds.map { Duration.milliseconds(Int64($0 * 1000)) } ?? fleet.executionTimeout
        let runID = Self.runID()
        let logDirectory = engine.paths.runLogs.appendingPathComponent(runID)
        try? FileManager.default.createDirectory(at: logDirectory, withIntermediateDirectories: true,
                                                 attributes: [.posixPermissions: 0o700])
        if request.commands.isEmpty {
            var outcomes: [String: Outcome] = [:]
            await withTaskGroup(of: (String, Outcome).self) { group in
                for member in selected {
                    group.addTask {
                        if let blocked = gate.blocked[member.name] { return (member.name, blocked) }
                        var env = request.env
                        env["AH_FOLLOWER"] = member.name
                        let log = logDirectory.appendingPathComponent("\(member.name).log")
                        let outcome: Outcome
                        do {
                            let plan = try FleetBridge.launch(member: member, fleet: engine.fleet, argv: request.argv, shell: nil, env: env)
                            outcome = await runOne(member: member, plan: plan, timeout: timeout, log: log)
                        } catch {
                            outcome = Outcome.notStarted(status: .failed, error: "\(error)")
                        }
                        return (member.name, outcome)
                    }
                }
                for await (name, outcome) in group { outcomes[name] = outcome }
            }
            let hosts = selected.map { member in outcomes[member.name]!.host(member: member, os: member.os) }
            let report = RunReport(hosts: hosts, commands: nil, summary: Self.summary(hosts))
            journalSummary(report, runID: runID)
            return report
        }
        let runnable = gate.runnable(selected)
        if runnable.isEmpty { return gate.merge(RunReport(hosts: [], commands: [], summary: Self.summary([])), selected: selected) }
        return gate.merge(try await executeShards(selected: runnable, timeout: timeout, logDirectory: logDirectory, runID: runID),
                          selected: selected)
    }

    /// `--command` × N: each command once per OS, round-robin over that OS's followers, at
    /// most `concurrency` at a time per host.
    private func executeShards(selected: [LeaderMember], timeout: Duration, logDirectory: URL, runID: String) async throws -> RunReport {
        let fleet = engine.fleet
        // Followers whose OS the config does not say are asked (the connection learns it from uname).
        var members: [LeaderMember] = []
        for var member in selected {
            if member.os == nil, let link = engine.links[member.name], let connection = try? await link.connected() {
                member.os = connection.os
            }
            members.append(member)
        }
        let assignments = try FleetBridge.shards(commands: request.commands, members: members, fleet: fleet)
        let byHost = Dictionary(grouping: assignments, by: \.host)
        var results: [Int: RunReport.Command] = [:]
        await withTaskGroup(of: [(Int, RunReport.Command)].self) { group in
            for (hostName, queue) in byHost {
                guard let member = members.first(where: { $0.name == hostName }) else { continue }
                group.addTask {
                    await runQueue(member: member, queue: queue, concurrency: max(1, fleet.concurrency),
                                   timeout: timeout, logDirectory: logDirectory)
                }
            }
            for await batch in group { for (index, command) in batch { results[index] = command } }
        }
        let commands = assignments.indices.compactMap { results[$0] }
        var hosts: [RunReport.Host] = []
        for member in members where byHost[member.name] != nil {
            let mine = commands.filter { $0.host == member.name }
            let status: RunReport.Status = mine.contains { $0.status == .failed || $0.status == .timeout } ? .failed
                : mine.contains { $0.status == .unreachable } ? .unreachable : .passed
            hosts.append(RunReport.Host(
                name: member.name, os: member.os, status: status,
                exit: mine.compactMap(\.exit).first { $0 != 0 } ?? (status == .passed ? 0 : nil), signal: mine.compactMap(\.signal).first,
                stdout: mine.map(\.stdout).joined(), stderr: mine.map(\.stderr).joined(),
                durationMs: mine.map(\.durationMs).reduce(0, +),
                logFile: logDirectory.appendingPathComponent("\(member.name).log").path,
                error: mine.compactMap(\.error).first))
        }
        let report = RunReport(hosts: hosts, commands: commands, summary: Self.summary(hosts))
        journalSummary(report, runID: runID)
        return report
    }

    private func journalSummary(_ report: RunReport, runID: String) {
        engine.journal.append("summary", ["runId": .string(runID),
                                          "passed": .array(report.summary.passed.map(JSONValue.string)),
                                          "failed": .array(report.summary.failed.map(JSONValue.string)),
                                          "unreachable": .array(report.summary.unreachable.map(JSONValue.string))])
    }

    private func runQueue(member: LeaderMember, queue: [ShardAssignment], concurrency: Int, timeout: Duration,
                          logDirectory: URL) async -> [(Int, RunReport.Command)] {
        var done: [(Int, RunReport.Command)] = []
        var pending = queue[...]
        await withTaskGroup(of: (Int, RunReport.Command).self) { group in
            var running = 0
            func startNext() {
                guard let assignment = pending.popFirst() else { return }
                running += 1
                group.addTask {
                    var env = request.env
                    env["AH_FOLLOWER"] = member.name
                    env["AH_SHARD_INDEX"] = String(assignment.shardIndex)
                    env["AH_SHARD_COUNT"] = String(assignment.shardCount)
                    let log = logDirectory.appendingPathComponent("\(member.name).log")
                    let outcome: Outcome
                    do {
                        let plan = try FleetBridge.launch(member: member, fleet: engine.fleet, argv: [], shell: assignment.command, env: env)
                        outcome = await runOne(member: member, plan: plan, timeout: timeout, log: log)
                    } catch {
                        outcome = Outcome.notStarted(status: .failed, error: "\(error)")
                    }
                    return (assignment.order, RunReport.Command(
                        command: assignment.command, os: member.os ?? "unknown", host: member.name,
                        shardIndex: assignment.shardIndex, shardCount: assignment.shardCount, status: outcome.status,
                        exit: outcome.exit, signal: outcome.signal, stdout: outcome.stdout, stderr: outcome.stderr,
                        durationMs: outcome.durationMs, error: outcome.error))
                }
            }
            while running < concurrency, !pending.isEmpty { startNext() }
            while let finished = await group.next() {
                running -= 1
                done.append(finished)
                startNext()
            }
        }
        return done
    }

    /// One command on one follower. `ssh_retry`: one more attempt only when the transport
    /// failed before the command started — a started command is never run twice.
    private func runOne(member: LeaderMember, plan: LaunchPlan, timeout: Duration, log: URL) async -> Outcome {
        let link = engine.links[member.name]!
        let fleet = engine.fleet
        let logFile = OutputLog(url: log)
        let started = ContinuousClock.now
        engine.journal.append("hostStarted", ["host": .string(member.name), "os": .optional(member.os),
                                              "command": .string(plan.commandLine)])
        let outcome = await attempt(member: member, link: link, fleet: fleet, plan: plan, timeout: timeout, log: log,
                                    logFile: logFile, started: started)
        engine.journal.append("hostExited", ["host": .string(member.name), "status": .string(outcome.status.rawValue),
                                             "exit": outcome.exit.map { .int(Int($0)) } ?? .null, "signal": .optional(outcome.signal),
                                             "durationMs": .int(outcome.durationMs), "error": .optional(outcome.error)])
        return outcome
    }

    private func attempt(member: LeaderMember, link: FollowerLink, fleet: LeaderFleet, plan: LaunchPlan, timeout: Duration,
                         log: URL, logFile: OutputLog, started: ContinuousClock.Instant) async -> Outcome {
        var attempt = 0
        while true {
            attempt += 1
            let connection: FollowerLink.Connection
            do {
                connection = try await link.connected { await emit(.progress($0)) }
            } catch {
                if fleet.sshRetry, attempt == 1 {
                    await emit(.progress("\(member.name): \(error); retrying once"))
                    continue
                }
                var outcome = Outcome.notStarted(status: .unreachable, error: "\(error)")
                outcome.durationMs = Int((ContinuousClock.now - started).milliseconds)
                return outcome
            }
            var outcome = Outcome()
            outcome.logFile = log.path
            let result = await consume(connection: connection, plan: plan, timeout: timeout, host: member.name,
                                       log: logFile, into: &outcome)
            outcome.durationMs = Int((ContinuousClock.now - started).milliseconds)
            switch result {
            case .finished:
                return outcome
            case .transportFailed(let reason, let commandStarted):
                await link.discard()
                if !commandStarted, fleet.sshRetry, attempt == 1 {
                    await emit(.progress("\(member.name): \(reason); retrying once"))
                    continue
                }
                outcome.status = .unreachable
                outcome.exit = nil
                outcome.error = commandStarted
                    ? "the follower went away while the command ran (\(reason)); its result is unknown"
                    : reason
                return outcome
            case .silent:
                await link.discard()
                outcome.status = .timeout
                outcome.error = "no answer from the follower for \(timeout + Self.watchdogGrace) (timeout \(timeout))"
                return outcome
            }
        }
    }

    enum Consumed { case finished, transportFailed(String, commandStarted: Bool), silent }

    private func consume(connection: FollowerLink.Connection, plan: LaunchPlan, timeout: Duration, host: String,
                         log: OutputLog, into outcome: inout Outcome) async -> Consumed {
        let events = connection.helper.run(argv: plan.argv, timeout: timeout)
        let collector = OutputCollector(limit: Self.reportedOutputLimit)
        let emit = self.emit
        let journal = engine.journal
        let result: Consumed = await withTaskGroup(of: Consumed?.self) { group in
            group.addTask {
                var commandStarted = false
                do {
                    for try await event in events {
                        switch event {
                        case .started:
                            commandStarted = true
                        case .output(let stream, let bytes):
                            commandStarted = true
                            log.append(stream: stream, bytes: bytes)
                            let text = String(decoding: bytes, as: UTF8.self)
                            collector.append(stream: stream, text: text)
                            journal.append("hostLog", ["host": .string(host), "stream": .string(stream.rawValue), "text": .string(text)])
                            await emit(.output(host: host, stream: stream, text: text))
                        case .exited(let exit):
                            collector.finish(exit)
                            return .finished
                        }
                    }
                    return .transportFailed("the helper's stream ended before the command's exit was reported",
                                            commandStarted: commandStarted)
                } catch is CancellationError {
                    return nil
                } catch {
                    return .transportFailed("\(error)", commandStarted: commandStarted)
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout + Self.watchdogGrace)
                return Task.isCancelled ? nil : .silent
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? .silent
        }
        collector.fill(&outcome)
        return result
    }

    static func summary(_ hosts: [RunReport.Host]) -> RunReport.Summary {
        RunReport.Summary(passed: hosts.filter { $0.status == .passed }.map(\.name),
                          failed: hosts.filter { $0.status == .failed || $0.status == .timeout }.map(\.name),
                          unreachable: hosts.filter { $0.status == .unreachable }.map(\.name))
    }

    static func runID() -> String {
        let stamp = UTCStamp.now().replacingOccurrences(of: ":", with: "")
        return "\(stamp)-\(UUID().uuidString.prefix(8).lowercased())"
    }
}

/// What one command on one host came to.
struct Outcome: Sendable {
    var status: RunReport.Status = .passed
    var exit: Int32?
    var signal: String?
    var stdout = ""
    var stderr = ""
    var durationMs = 0
    var logFile: String?
    var error: String?

    static func notStarted(status: RunReport.Status, error: String) -> Outcome {
        var outcome = Outcome()
        outcome.status = status
        outcome.error = error
        return outcome
    }

    func host(member: LeaderMember, os: String?) -> RunReport.Host {
        RunReport.Host(name: member.name, os: os, status: status, exit: exit, signal: signal, stdout: stdout, stderr: stderr,
                       durationMs: durationMs, logFile: logFile, error: error)
    }
}

/// Output kept for the report (bounded) and the exit, filled in from the helper's events.
final class OutputCollector: @unchecked Sendable {
    private let lock = NSLock()
    private let limit: Int
    private var stdout = ""
    private var stderr = ""
    private var truncated = false
    private var exit: JobExit?

    init(limit: Int) { self.limit = limit }

    func append(stream: OutputStreamKind, text: String) {
        lock.withLock {
            guard stdout.utf8.count + stderr.utf8.count + text.utf8.count <= limit else { truncated = true; return }
            if stream == .stdout { stdout += text } else { stderr += text }
        }
    }

    func finish(_ exit: JobExit) { lock.withLock { self.exit = exit } }

    func fill(_ outcome: inout Outcome) {
        lock.withLock {
            outcome.stdout = stdout
            outcome.stderr = stderr + (truncated ? "\n[ah: output beyond \(limit >> 20) MiB is only in the log file]\n" : "")
            if let exit {
                outcome.exit = exit.code
                outcome.signal = exit.signal
                if let error = exit.error, exit.code == nil, exit.signal == nil {
                    outcome.status = .failed
                    outcome.error = "the command could not be started: \(error)"
                } else if exit.timedOut {
                    outcome.status = .timeout
                    outcome.error = "killed after the timeout (the command and everything it started)"
                } else {
                    outcome.status = exit.code == 0 ? .passed : .failed
                }
            }
        }
    }
}

/// A host's full output on disk: `[stdout] ` / `[stderr] ` chunks appended as they come.
final class OutputLog: @unchecked Sendable {
    private let lock = NSLock()
    private let handle: FileHandle?

    init(url: URL) {
        // Shards of one host share its log: append, never truncate.
        if !FileManager.default.fileExists(atPath: url.path) {
            _ = FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        handle = try? FileHandle(forWritingTo: url)
        handle?.seekToEndOfFile()
    }

    func append(stream: OutputStreamKind, bytes: [UInt8]) {
        guard stream == .stdout || stream == .stderr else { return }
        lock.withLock { handle?.write(Data(bytes)) }
    }

    deinit { try? handle?.close() }
}
