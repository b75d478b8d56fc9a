import AHFollowerHelper
import Foundation
import Logging

/// One `followers slurp`: the file sets (inline or from the fleet config), every selected
/// follower asked for every set through its warm helper (at most `[fleet.execution]
/// transfers` at once, default 16), each answer staged beside its destination and
/// verified, then each set moved into place in one step: `dest/` when exactly one follower
/// answered, `dest/NAME/FOLLOWER/` when several did. A follower that fails (refuses, sends
/// a file that does not verify, dies mid-way) is reported and its files are dropped; the
/// others still land.
struct Slurper {
    let engine: LeaderEngine
    let request: SlurpRequest
    let emit: @Sendable (LeaderEvent) async -> Void

    /// Silence after which the watchdog starts probing the follower's helper.
    static let idleProbeAfter: Duration = .seconds(2)
    /// Probes in a row without an answer (1 s each) before the transfer counts as lost.
    static let probeFailuresAllowed = 3
    /// The test-only corruption hook (see `SlurpFileReceiver.corruptPath`).
    static let corruptPath = ProcessInfo.processInfo.environment["AH_TEST_SLURP_CORRUPT"].flatMap { $0.isEmpty ? nil : $0 }

    struct ResolvedSet: Sendable {
        var name: String
        var include: [String]
        var exclude: [String]
        var required: Bool
        var dest: String
    }

    enum HostTransfer: Sendable {
        case answered(directory: URL, files: [SlurpFileReceiver.ReceivedFile], skipped: [SlurpSkipped])
        case failed(String, skipped: [SlurpSkipped])
        case unreachable(String)
    }

    func execute() async throws -> SlurpReport {
        let sets = try resolve()
        let selected = try FleetBridge.select(fleet: engine.fleet, hosts: request.hosts, tags: request.tags, all: request.all)
        let ledger: SlurpLedger
        do { ledger = try SlurpLedger(journal: engine.journal) } catch {
            throw LeaderFailure(exitCode: 1, "cannot prepare the slurp table in the leader's state: \(error)")
        }
        var made: [SlurpStaging] = []
        defer { made.forEach { $0.discard() } }
        for set in sets { made.append(try SlurpStaging(dest: set.dest)) }
        let stagings = made

        let pairs = sets.indices.flatMap { index in selected.map { (index, $0) } }
        var transfers: [Int: [String: HostTransfer]] = [:]
        await withTaskGroup(of: (Int, String, HostTransfer).self) { group in
            var pending = pairs[...]
            var running = 0
            while running < max(1, engine.fleet.transfers), let (index, member) = pending.popFirst() {
                running += 1
                group.addTask { (index, member.name, await transfer(set: sets[index], member: member, staging: stagings[index])) }
            }
            while let (index, host, result) = await group.next() {
                transfers[index, default: [:]][host] = result
                if let (next, member) = pending.popFirst() {
                    group.addTask { (next, member.name, await transfer(set: sets[next], member: member, staging: stagings[next])) }
                }
            }
        }

        let slurpID = Runner.runID()
        var results: [SlurpReport.FilesetResult] = []
        for (index, set) in sets.enumerated() {
            let result = finish(set: set, staging: stagings[index], order: selected.map(\.name), transfers: transfers[index] ?? [:],
                                slurpID: slurpID, ledger: ledger)
            results.append(result)
        }
        // The report says the files are recorded: make it so before answering.
        await engine.journal.flush()
        return SlurpReport(filesets: results)
    }

    /// The sets in command-line order, `--fileset NAME` looked up in the fleet config.
    private func resolve() throws -> [ResolvedSet] {
        guard !request.sets.isEmpty else {
            throw LeaderFailure.usage("no file set given (use --fileset-data DATA, --fileset NAME or --fileset-file PATH)")
        }
        var names: Set<String> = []
        var result: [ResolvedSet] = []
        for spec in request.sets {
            let set: SlurpFileset
            switch spec {
            case .inline(let inline):
                set = inline
            case .named(let name):
                guard let configured = engine.fleet.config.fileset(named: name) else {
                    let known = engine.fleet.config.filesets.map(\.name)
                    throw LeaderFailure.usage("--fileset '\(name)': the fleet config \(engine.fleet.config.file) has no [filesets.\(name)]"
                        + (known.isEmpty ? "" : " (it has: \(known.joined(separator: ", ")))"))
                }
                set = SlurpFileset(configured)
            }
            guard names.insert(set.name).inserted else {
                throw LeaderFailure.usage("the file set name '\(set.name)' is given twice (names must be unique in one slurp)")
            }
            let dest = set.dest ?? request.dest
            guard dest.hasPrefix("/") else { throw LeaderFailure.usage("file set '\(set.name)': the destination '\(dest)' is not absolute") }
            result.append(ResolvedSet(name: set.name, include: set.include, exclude: set.exclude, required: set.required, dest: dest))
        }
        return result
    }

    /// One set from one follower: connect (one retry when `ssh_retry`), stream into a fresh
    /// staging directory, verify. A transfer that loses its connection is retried once
    /// from the start (reading is idempotent); a refusal or a failed check is not.
    private func transfer(set: ResolvedSet, member: LeaderMember, staging: SlurpStaging) async -> HostTransfer {
        let link = engine.links[member.name]!
        let retry = engine.fleet.sshRetry
        var attempt = 0
        var lostBefore: String?
        while true {
            attempt += 1
            let connection: FollowerLink.Connection
            do {
                connection = try await link.connected { await emit(.progress($0)) }
            } catch {
                if retry, attempt == 1 {
                    await emit(.progress("\(member.name): \(error); retrying once"))
                    continue
                }
                if let lostBefore { return .failed("the follower went away during the transfer (\(lostBefore)); the retry could not connect: \(error)", skipped: []) }
                return .unreachable("\(error)")
            }
            let directory: URL
            do { directory = try staging.hostDirectory(member.name) } catch {
                return .failed("cannot create a staging directory in \(staging.root.path): \(error.localizedDescription)", skipped: [])
            }
            let client = connection.helper.client
            let job = client.makeJobID()
            let receiver = SlurpFileReceiver(directory: directory, corruptPath: Self.corruptPath) { client.cancelSlurp(job: job) }
            client.slurp(SlurpStart(job: job, name: set.name, include: set.include, exclude: set.exclude, root: member.workspace),
                         receiver: receiver)
            switch await watch(receiver, helper: connection.helper) {
            case .completed(let files, let skipped):
                return .answered(directory: directory, files: files, skipped: skipped)
            case .failed(let reason):
                return .failed(reason, skipped: [])
            case .lost(let reason):
                await link.discard()
                if retry, attempt == 1 {
                    lostBefore = reason
                    await emit(.progress("\(member.name): the transfer of \(set.name) was cut (\(reason)); retrying once"))
                    continue
                }
                return .failed("the follower went away during the transfer: \(reason)", skipped: [])
            }
        }
    }

    /// Waits for the set, probing the helper whenever nothing arrived for a while: a
    /// follower that died without closing anything (its tunnel cut) is found in seconds,
    /// not after SSH keepalives give up.
    private func watch(_ receiver: SlurpFileReceiver, helper: LinkHelper) async -> SlurpFileReceiver.Outcome {
        await withTaskGroup(of: SlurpFileReceiver.Outcome?.self) { group in
            group.addTask { await receiver.result() }
            group.addTask {
                var failures = 0
                while true {
                    do { try await Task.sleep(for: .seconds(1)) } catch { return nil }
                    guard ContinuousClock.now - receiver.idleSince >= Self.idleProbeAfter else {
                        failures = 0
                        continue
                    }
                    do {
                        _ = try await helper.probe(timeout: .seconds(1))
                        failures = 0
                    } catch {
                        failures += 1
                        if failures >= Self.probeFailuresAllowed {
                            receiver.abandon("no data and no answer to \(failures) probes of the follower helper")
                            return nil
                        }
                    }
                }
            }
            var outcome: SlurpFileReceiver.Outcome = .lost("the transfer ended without a result")
            while let next = await group.next() {
                if let next {
                    outcome = next
                    break
                }
            }
            group.cancelAll()
            return outcome
        }
    }

    /// Verification is done per file as it arrives; here the set's answers are placed,
    /// reported, journaled and recorded.
    private func finish(set: ResolvedSet, staging: SlurpStaging, order: [String], transfers: [String: HostTransfer],
                        slurpID: String, ledger: SlurpLedger) -> SlurpReport.FilesetResult {
        var answered: [(host: String, directory: URL, files: [SlurpFileReceiver.ReceivedFile], skipped: [SlurpSkipped])] = []
        var hosts: [String: SlurpReport.Host] = [:]
        for host in order {
            switch transfers[host] {
            case .answered(let directory, let files, let skipped)?:
                if files.isEmpty {
                    // Matched nothing here: not an answer (skipped paths are still worth a line in the log).
                    if !skipped.isEmpty {
                        engine.logger.info("slurp: a follower matched only paths it refused",
                                           metadata: ["fileset": "\(set.name)", "host": "\(host)", "skipped": "\(skipped.count)"])
                        hosts[host] = SlurpReport.Host(name: host, status: .ok, files: [], error: nil,
                                                       skipped: skipped.map { "\($0.path): \($0.reason)" })
                    }
                } else {
                    answered.append((host, directory, files, skipped))
                }
            case .failed(let reason, let skipped)?:
                hosts[host] = SlurpReport.Host(name: host, status: .failed, files: [], error: reason,
                                               skipped: skipped.isEmpty ? nil : skipped.map { "\($0.path): \($0.reason)" })
            case .unreachable(let reason)?:
                hosts[host] = SlurpReport.Host(name: host, status: .unreachable, files: [], error: reason, skipped: nil)
            case nil:
                break
            }
        }
        let several = answered.count > 1
        let dest = staging.dest
        var placed = false
        if !answered.isEmpty {
            do {
                try staging.place(answered.map { ($0.directory, several ? "\(set.name)/\($0.host)" : "", $0.files.map(\.path)) })
                placed = true
            } catch {
                for answer in answered {
                    hosts[answer.host] = SlurpReport.Host(name: answer.host, status: .failed, files: [],
                                                          error: "the files arrived and verified but could not be moved into place: \(error)",
                                                          skipped: nil)
                }
            }
        }
        if placed {
            for answer in answered {
                let base = several ? dest.appendingPathComponent(set.name).appendingPathComponent(answer.host) : dest
                let files = answer.files.map { file in
                    SlurpReport.File(path: file.path, size: file.size, sha256: file.sha256, dest: base.appendingPathComponent(file.path).path,
                                     mtime: Self.rfc3339(nanos: file.mtimeNanos), mode: String(format: "%04o", file.mode))
                }
                hosts[answer.host] = SlurpReport.Host(name: answer.host, status: .ok, files: files, error: nil,
                                                      skipped: answer.skipped.isEmpty ? nil : answer.skipped.map { "\($0.path): \($0.reason)" })
                ledger.record(slurpID: slurpID, rows: answer.files.map { file in
                    SlurpLedger.Row(fileset: set.name, host: answer.host, path: file.path, size: file.size, mtimeNanos: file.mtimeNanos,
                                    sha256: file.sha256, dest: base.appendingPathComponent(file.path).path)
                })
            }
        }
        let reported = order.compactMap { hosts[$0] }
        let missing = !placed
        for host in reported {
            engine.journal.append("slurpResult", [
                "slurpId": .string(slurpID), "fileset": .string(set.name), "host": .string(host.name), "status": .string(host.status.rawValue),
                "files": .int(host.files.count), "bytes": .number(Double(host.files.reduce(Int64(0)) { $0 + $1.size })),
                "dest": .string(host.files.isEmpty ? dest.path : (several ? dest.appendingPathComponent(set.name).appendingPathComponent(host.name).path : dest.path)),
                "error": .optional(host.error),
            ])
        }
        if missing {
            engine.journal.append("slurpResult", ["slurpId": .string(slurpID), "fileset": .string(set.name), "host": .null,
                                                  "status": .string("missing"), "required": .bool(set.required), "files": .int(0),
                                                  "bytes": .int(0), "dest": .string(dest.path), "error": .null])
        }
        return SlurpReport.FilesetResult(name: set.name, required: set.required, dest: dest.path, hosts: reported, missing: missing)
    }

    static func rfc3339(nanos: Int64) -> String {
        UTCStamp.formatMillis(Date(timeIntervalSince1970: Double(nanos) / 1e9))
    }
}
