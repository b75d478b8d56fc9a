import AHFollowerHelper
import AHSync
import Foundation
import Logging

/// The sync fence: a snapshot of the leader workspace, then every selected follower synced
/// to it in parallel through its helper, each within its own deadline, each proven equal by
/// the root hash its helper computed. Also time travel: moments and seek.
///
/// Per follower: `sync-begin` (the helper scans its tree: one round trip when nothing
/// changed); when its root hash is the snapshot's it is consistent; else the difference to
/// what it holds (the manifest it was last proven to hold, or its listing when its root
/// hash says otherwise) goes out — removals, directories, files from the content store (so
/// exactly the snapshot's bytes, whatever happens to the workspace meanwhile), symlinks,
/// modes — and `sync-commit` brings its new root hash.
struct Syncer {
    let engine: LeaderEngine
    let emit: @Sendable (LeaderEvent) async -> Void

    func fence(_ request: FenceRequest) async throws -> FenceReport {
        let selected = try FleetBridge.select(fleet: engine.fleet, hosts: request.hosts, tags: request.tags, all: request.all)
        let timeout = try request.timeoutSeconds.map { seconds -> Duration in
            guard seconds > 0 else { throw LeaderFailure.usage("--timeout \(seconds)s must be positive") }
            return .milliseconds(Int64(seconds * 1000))
        } ?? engine.sync.timeout
        return try await fence(selected, timeout: timeout)
    }

    func fence(_ selected: [LeaderMember], timeout: Duration) async throws -> FenceReport {
        let journal = engine.journal
        journal.append("moment", ["id": .string(Self.momentID()), "label": .string("before fence"), "snapshotId": .null])
        let scanStarted = ContinuousClock.now
        let (scan, store) = try await engine.sync.snapshot(save: false)
        let scanMs = Int((ContinuousClock.now - scanStarted).milliseconds)
        // The snapshot's manifest is written to the store while the followers sync (their
        // file contents are in the store already); the fence answers once it is saved.
        let sync = engine.sync
        let saving = Task.detached { [manifest = scan.manifest] in try sync.save(manifest, in: store) }
        let syncStarted = ContinuousClock.now
        defer {
            engine.logger.debug("Fence done", metadata: ["snapshotMs": "\(scanMs)", "followers": "\(selected.count)",
                                                         "syncMs": "\((ContinuousClock.now - syncStarted).milliseconds)"])
        }
        let snapshot = scan.manifest
        journal.append("fenceStarted", ["snapshotId": .string(snapshot.rootHash),
                                        "hosts": .array(selected.map { .string($0.name) })])
        await emit(.progress("fence \(snapshot.rootHash.prefix(19))…: \(snapshot.count) entries, "
                             + "\(scan.hashedFiles) files read in \(scanMs) ms; syncing \(selected.count) follower(s)"))
        var rows: [String: FenceReport.Host] = [:]
        let diffs = DiffMemo()
        await withTaskGroup(of: FenceReport.Host.self) { group in
            for member in selected {
                group.addTask { await fenceOne(member, snapshot: snapshot, store: store, diffs: diffs, timeout: timeout) }
            }
            for await row in group { rows[row.name] = row }
        }
        let hosts = selected.compactMap { rows[$0.name] }
        try await saving.value
        var results: [String: JSONValue] = [:]
        for host in hosts {
            var fields: [String: JSONValue] = ["state": .string(host.state.rawValue), "tookMs": .int(host.tookMs)]
            if let error = host.error { fields["error"] = .string(error) }
            results[host.name] = .object(fields)
        }
        journal.append("fenceResult", ["snapshotId": .string(snapshot.rootHash), "hosts": .object(results)])
        let consistent = hosts.filter { $0.state == .consistent }.count
        journal.append("moment", ["id": .string(Self.momentID()), "label": .string("after fence (\(consistent)/\(hosts.count) consistent)"),
                                  "snapshotId": .string(snapshot.rootHash)])
        return FenceReport(snapshotId: snapshot.rootHash, hosts: hosts, files: snapshot.entries.reduce(0) { $0 + ($1.kind == .file ? 1 : 0) },
                           bytes: snapshot.totalBytes, scanMs: scanMs)
    }

    static func momentID() -> String { "m-" + UUID().uuidString.prefix(13).lowercased().replacingOccurrences(of: "-", with: "") }

    /// One follower within its deadline: a follower that does not answer is reported at the
    /// deadline (the work is abandoned), never waited for.
    private func fenceOne(_ member: LeaderMember, snapshot: Manifest, store: ContentStore, diffs: DiffMemo,
                          timeout: Duration) async -> FenceReport.Host {
        let started = ContinuousClock.now
        let engine = self.engine
        let emit = self.emit
        let work = Task { () -> FenceReport.Host in
            do {
                let root = try await FollowerSync(engine: engine, member: member, snapshot: snapshot, store: store, diffs: diffs,
                                                  emit: emit).run()
                return FenceReport.Host(name: member.name, state: .consistent, rootHash: root, tookMs: 0, error: nil)
            } catch let failure as FollowerSync.Failure {
                return FenceReport.Host(name: member.name, state: .error, rootHash: failure.rootHash, tookMs: 0, error: failure.description)
            } catch {
                return FenceReport.Host(name: member.name, state: .error, rootHash: nil, tookMs: 0, error: "\(error)")
            }
        }
        let timedOut = FenceReport.Host(name: member.name, state: .timeout, rootHash: nil, tookMs: 0,
                                        error: "no consistent answer within \(Self.format(timeout)) (the fence's deadline for this follower)")
        var host = await Deadline.race(timeout, work: { await work.value }, onTimeout: timedOut)
        if host.state == .timeout { work.cancel() }
        if host.state != .consistent { await engine.sync.record(nil, heldBy: member.name) }
        host.tookMs = Int((ContinuousClock.now - started).milliseconds)
        return host
    }

    static func format(_ duration: Duration) -> String {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return seconds == seconds.rounded() ? "\(Int(seconds))s" : String(format: "%.1fs", seconds)
    }

    // MARK: time travel

    func moments() async throws -> MomentsReport {
        var moments: [MomentsReport.Moment] = []
        var after: Int64 = 0
        while true {
            let page = try await engine.journal.events(after: after, limit: 10_000)
            guard let last = page.last else { break }
            after = last.seq
            for record in page where record.type == "moment" {
                guard let object = try? JSONSerialization.jsonObject(with: Data(record.json.utf8)) as? [String: Any],
                      let id = object["id"] as? String else { continue }
                moments.append(MomentsReport.Moment(id: id, ts: record.ts, label: object["label"] as? String ?? "",
                                                    snapshotId: object["snapshotId"] as? String))
            }
        }
        return MomentsReport(moments: moments)
    }

    /// Saves the workspace as a snapshot (a moment of its own, so nothing is lost), restores
    /// the moment's snapshot from the content store, then fences every follower to it.
    func seek(moment id: String) async throws -> SeekReport {
        guard let moment = try await moments().moments.first(where: { $0.id == id }) else {
            throw LeaderFailure.usage("no moment '\(id)' in this session (see `ah agent followers moments`)")
        }
        guard let target = moment.snapshotId else {
            throw LeaderFailure.usage("moment '\(id)' (\(moment.label)) has no snapshot; seek to a moment after a fence")
        }
        let store = try await engine.sync.contentStore()
        guard store.hasSnapshot(target) else {
            throw LeaderFailure(exitCode: 1, "the snapshot \(target) of moment '\(id)' is no longer kept in the content store")
        }
        let (saved, _) = try await engine.sync.snapshot()
        let savedMoment = Self.momentID()
        engine.journal.append("moment", ["id": .string(savedMoment), "label": .string("before seek to \(id)"),
                                         "snapshotId": .string(saved.manifest.rootHash)])
        try await engine.sync.restore(target)
        await emit(.progress("workspace restored to \(target) (moment \(id)); the previous state is moment \(savedMoment)"))
        let fence = try await fence(engine.fleet.followers, timeout: engine.sync.timeout)
        return SeekReport(moment: id, savedSnapshotId: saved.manifest.rootHash, savedMoment: savedMoment, fence: fence)
    }
}

/// Resolves with the work's value, or with `onTimeout` at the deadline — whichever comes
/// first; the work is not awaited past the deadline (it may be stuck in a dial).
enum Deadline {
    static func race<T: Sendable>(_ timeout: Duration, work: @escaping @Sendable () async -> T, onTimeout: T) async -> T {
        let once = ResumeOnce<T>()
        let sleeper = Task {
            try? await Task.sleep(for: timeout)
            once.resume(onTimeout)
        }
        defer { sleeper.cancel() }
        return await withCheckedContinuation { continuation in
            once.set(continuation)
            Task { once.resume(await work()) }
        }
    }
}

private final class ResumeOnce<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<T, Never>?
    /// The first value, when it came before the continuation was set.
    private var early: T?
    private var done = false

    func set(_ continuation: CheckedContinuation<T, Never>) {
        let value: T? = lock.withLock {
            if let early { return early }
            self.continuation = continuation
            return nil
        }
        if let value { continuation.resume(returning: value) }
    }

    func resume(_ value: T) {
        let pending = lock.withLock { () -> CheckedContinuation<T, Never>? in
            guard !done else { return nil }
            done = true
            guard let continuation else {
                early = value
                return nil
            }
            self.continuation = nil
            return continuation
        }
        pending?.resume(returning: value)
    }
}

/// One follower's sync, start to proof.
struct FollowerSync {
    let engine: LeaderEngine
    let member: LeaderMember
    let snapshot: Manifest
    let store: ContentStore
    let diffs: DiffMemo
    let emit: @Sendable (LeaderEvent) async -> Void

    struct Failure: Error, CustomStringConvertible {
        let description: String
        var rootHash: String?
    }

    func run() async throws -> String {
        guard let workspace = member.workspace, !workspace.isEmpty else {
            throw Failure(description: "\(member.name) has no workspace in the fleet config: nothing to sync into")
        }
        let os = member.os
        let caseInsensitive = os == "macos" || os == "windows"
        if caseInsensitive, let collision = NameRules.caseCollisions(snapshot.entries.map(\.path)).first {
            throw Failure(description: "\(member.name) (\(os!)) cannot hold the snapshot: \(collision)")
        }
        if os == "windows" {
            let problems = snapshot.entries.lazy.compactMap { NameRules.windowsProblem($0.path) }.prefix(3)
            if !problems.isEmpty { throw Failure(description: "\(member.name) (windows): " + problems.joined(separator: "; ")) }
        }
        let link = engine.links[member.name]!
        let connection: FollowerLink.Connection
        do {
            connection = try await link.connected { await emit(.progress($0)) }
        } catch {
            throw Failure(description: "unreachable: \(error)")
        }
        let conversation = connection.helper.client.openSync()
        defer { conversation.close() }
        var replies = conversation.replies.makeAsyncIterator()
        do {
            return try await sync(conversation, replies: &replies, workspace: workspace, caseInsensitive: caseInsensitive,
                                  windows: os == "windows")
        } catch let failure as Failure {
            throw failure
        } catch is CancellationError {
            throw Failure(description: "cancelled at the deadline")
        } catch {
            // The connection broke under the sync: the next use reconnects.
            await link.discard()
            throw Failure(description: "the follower helper went away during the sync: \(error)")
        }
    }

    private func next(_ replies: inout AsyncThrowingStream<SyncMessage, any Error>.Iterator) async throws -> SyncMessage {
        guard let message = try await replies.next() else { throw CancellationError() }
        if case .failed(_, let code, let message) = message { throw Failure(description: "\(message) (\(code))") }
        return message
    }

    private func sync(_ conversation: SyncConversation, replies: inout AsyncThrowingStream<SyncMessage, any Error>.Iterator,
                      workspace: String, caseInsensitive: Bool, windows: Bool) async throws -> String {
        let id = conversation.sync
        // Phase durations, logged at debug level (what a slow fence spent its time on).
        var phases = PhaseClock()
        conversation.send(.begin(SyncBegin(sync: id, root: workspace, ignores: engine.sync.ignores.patterns, snapshotId: snapshot.rootHash,
                                           caseInsensitive: caseInsensitive ? true : nil, windowsNames: windows ? true : nil)))
        var theirs: String?
        while theirs == nil {
            if case .state(_, let root, _) = try await next(&replies) { theirs = root }
        }
        phases.mark("beginMs")
        if theirs == snapshot.rootHash {
            await engine.sync.record(snapshot, heldBy: member.name)
            logPhases(phases, outcome: "already consistent")
            return snapshot.rootHash
        }
        // What the follower holds: what it was last proven to hold, when its root hash says
        // so; otherwise (first fence, helper restarted, edited behind the leader's back) its listing.
        var base: Manifest
        if let held = await engine.sync.manifest(heldBy: member.name), held.rootHash == theirs {
            base = held
        } else {
            conversation.send(.list(sync: id))
            var entries: [ManifestEntry] = []
            listing: while true {
                if case .entries(_, let part, let last) = try await next(&replies) {
                    entries += part
                    if entries.count > 10_000_000 { throw Failure(description: "the follower listed more than 10,000,000 entries") }
                    if last { break listing }
                }
            }
            base = Manifest(entries: entries.filter { SyncPath.problem($0.path) == nil })
            phases.mark("listMs")
        }
        let operations = diffs.operations(from: base, to: snapshot)
        phases.mark("diffMs")
        var sent: Int64 = 0
        var acked: Int64 = 0
        var batch: [SyncOpWire] = []
        func flushBatch() {
            guard !batch.isEmpty else { return }
            conversation.send(.ops(sync: id, ops: batch))
            sent += SyncFlow.messageCost * Int64(batch.count)
            batch = []
        }
        for operation in operations {
            try Task.checkCancellation()
            guard case .file(let entry) = operation else {
                batch.append(SyncOpWire(operation))
                if batch.count >= SyncFlow.batch { flushBatch() }
                continue
            }
            flushBatch()
            conversation.send(.file(sync: id, entry: entry))
            sent += SyncFlow.messageCost
            guard entry.size > 0 else { continue }
            guard let fd = store.openObject(entry.sha256) else {
                throw Failure(description: "the content of \(entry.path) is missing from the leader's content store")
            }
            defer { close(fd) }
            var remaining = entry.size
            var buffer = [UInt8](repeating: 0, count: SyncFlow.chunk)
            while remaining > 0 {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, min($0.count, Int(remaining))) }
                guard count > 0 else { throw Failure(description: "cannot read the stored content of \(entry.path)") }
                conversation.sendData(buffer[0..<count])
                remaining -= Int64(count)
                sent += Int64(count)
                while sent - acked > SyncFlow.window {
                    if case .ack(_, let applied) = try await next(&replies) { acked = applied }
                }
            }
        }
        flushBatch()
        phases.mark("sendMs")
        conversation.send(.commit(sync: id))
        while true {
            if case .done(_, let root, _) = try await next(&replies) {
                guard root == snapshot.rootHash else {
                    throw Failure(description: "the follower's tree hashes to \(root) after the sync, not to the snapshot \(snapshot.rootHash) "
                                  + "(changed on the follower during the sync?)", rootHash: root)
                }
                await engine.sync.record(snapshot, heldBy: member.name)
                phases.mark("commitMs")
                logPhases(phases, outcome: "\(operations.count) operation(s), \(sent) bytes of cost sent")
                return root
            }
        }
    }

    private func logPhases(_ phases: PhaseClock, outcome: String) {
        var metadata: Logger.Metadata = ["follower": "\(member.name)", "outcome": "\(outcome)"]
        for (name, ms) in phases.marks { metadata[name] = "\(ms)" }
        engine.logger.debug("Follower synced", metadata: metadata)
    }
}

/// The diffs of one fence by the base they start from: followers that held the same
/// snapshot (the usual case) share one diff instead of each walking 50,000 entries.
final class DiffMemo: @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock`.
    private var made: [String: [SyncOperation]] = [:]

    func operations(from base: Manifest, to snapshot: Manifest) -> [SyncOperation] {
        lock.withLock {
            if let known = made[base.rootHash] { return known }
            let operations = ManifestDiff.operations(from: base, to: snapshot)
            made[base.rootHash] = operations
            return operations
        }
    }
}

/// Milliseconds between marks, for the debug log of a fence's phases.
struct PhaseClock {
    private var last = ContinuousClock.now
    private(set) var marks: [(String, Double)] = []

    mutating func mark(_ name: String) {
        let now = ContinuousClock.now
        marks.append((name, ((now - last).milliseconds * 10).rounded() / 10))
        last = now
    }
}
