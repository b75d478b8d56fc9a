import AHSync
import Foundation
import Logging

/// The helper's side of the sync fence: one thread applies the leader's sync messages and
/// file data in order to the workspace (`TreeWriter`), so the input thread keeps serving
/// runs and probes. What the input thread hands over is bounded (`queueLimit` bytes): past
/// it the input thread waits, which stalls the SSH channel, which stalls the leader.
///
/// The writer of a root is kept between fences (its manifest and stat cache are what make
/// the next fence cheap); a helper started afresh scans and hashes once.
final class SyncReceivers: @unchecked Sendable {
    static let queueLimit = 16 << 20
    /// Bounds on what a leader may ask (the helper refuses beyond them).
    static let maximumIgnores = 10_000
    static let maximumIgnoreLength = 4096
    static let maximumRootLength = 4096

    private enum Work {
        case message(SyncMessage, FrameSink, Logger)
        case data(HelperRawFrame, FrameSink, Logger)

        var cost: Int {
            switch self {
            case .message: return 512
            case .data(let frame, _, _): return frame.payload.count
            }
        }
    }

    private let condition = NSCondition()
    // Guarded by `condition`.
    private var queue: [Work] = []
    private var queuedBytes = 0
    private var started = false

    // Used only on the receiver thread.
    private var writers: [String: TreeWriter] = [:]
    private var session: Session?

    private struct Session {
        var sync: UInt32
        var writer: TreeWriter
        var ignores: IgnoreMatcher
        var failure: SyncError?
        /// Bytes of the current file still to come while it is being skipped (after a failure).
        var skipping: Int64 = 0
        var applied: Int64 = 0
        var acked: Int64 = 0
    }

    func handle(_ message: SyncMessage, sink: FrameSink, logger: Logger) { enqueue(.message(message, sink, logger)) }

    func data(_ frame: HelperRawFrame, sink: FrameSink, logger: Logger) { enqueue(.data(frame, sink, logger)) }

    private func enqueue(_ work: Work) {
        condition.lock()
        if !started {
            started = true
            let thread = Thread { [self] in loop() }
            thread.name = "helper sync"
            thread.start()
        }
        while queuedBytes > Self.queueLimit { condition.wait() }
        queue.append(work)
        queuedBytes += work.cost
        condition.broadcast()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while queue.isEmpty { condition.wait() }
            let batch = queue
            queue = []
            condition.unlock()
            for work in batch {
                switch work {
                case .message(let message, let sink, let logger): process(message, sink: sink, logger: logger)
                case .data(let frame, let sink, _): process(data: frame, sink: sink)
                }
                condition.lock()
                queuedBytes -= work.cost
                condition.broadcast()
                condition.unlock()
            }
        }
    }

    private func process(_ message: SyncMessage, sink: FrameSink, logger: Logger) {
        switch message {
        case .begin(let begin):
            session?.writer.abandon()
            session = nil
            do {
                let started = ContinuousClock.now
                let writer = try writer(for: begin)
                let ignores = IgnoreMatcher(patterns: begin.ignores)
                let manifest = try writer.scan(ignores: ignores)
                session = Session(sync: begin.sync, writer: writer, ignores: ignores)
                sink.send(.sync(.state(sync: begin.sync, rootHash: manifest.rootHash, entries: manifest.count)))
                logger.debug("Sync begun: tree scanned", metadata: ["sync": "\(begin.sync)", "entries": "\(manifest.count)",
                                                                    "scanMs": "\(Self.milliseconds(since: started))"])
            } catch {
                let failure = SyncError.wrap(error)
                logger.warning("Sync refused", metadata: ["sync": "\(begin.sync)", "error": "\(failure)"])
                sink.send(.sync(.failed(sync: begin.sync, code: failure.code, message: failure.description)))
            }
        case .list(let sync):
            guard let session, session.sync == sync else { return unknown(sync, sink) }
            let entries = session.writer.manifest.entries
            var index = 0
            repeat {
                let end = min(entries.count, index + SyncFlow.batch)
                sink.send(.sync(.entries(sync: sync, entries: Array(entries[index..<end]), last: end == entries.count)))
                index = end
            } while index < entries.count
        case .ops(let sync, let ops):
            guard session?.sync == sync else { return }
            account(SyncFlow.messageCost * Int64(max(1, ops.count)), sink: sink)
            guard session?.failure == nil, let writer = session?.writer else { return }
            for op in ops {
                do {
                    try writer.apply(try op.operation.get())
                } catch {
                    session?.failure = SyncError.wrap(error)
                    return
                }
            }
        case .file(let sync, let entry):
            guard session?.sync == sync else { return }
            account(SyncFlow.messageCost, sink: sink)
            guard session?.failure == nil, let writer = session?.writer else {
                session?.skipping = max(0, entry.size)
                return
            }
            do {
                try writer.beginFile(entry)
                if entry.size == 0 { try writer.finishFile() }
            } catch {
                session?.failure = SyncError.wrap(error)
                session?.skipping = max(0, entry.size)
            }
        case .commit(let sync):
            guard let current = session, current.sync == sync else { return unknown(sync, sink) }
            let started = ContinuousClock.now
            var failure = current.failure
            if failure == nil {
                do {
                    if current.writer.openFileRemaining > 0 {
                        throw SyncError(code: "bad-request", "the sync was committed with \(current.writer.openFileRemaining) bytes of a file missing")
                    }
                    try current.writer.flush()
                } catch {
                    failure = SyncError.wrap(error)
                }
            }
            if let failure {
                current.writer.abandon()
                sink.send(.sync(.failed(sync: sync, code: failure.code, message: failure.description)))
            } else {
                let manifest = current.writer.manifest
                sink.send(.sync(.done(sync: sync, rootHash: manifest.rootHash, entries: manifest.count)))
                logger.debug("Sync committed", metadata: ["sync": "\(sync)", "entries": "\(manifest.count)",
                                                          "commitMs": "\(Self.milliseconds(since: started))"])
                // The answer is out; now verify the directories written into against the disk
                // (the watcher marked them), so the next `sync-begin` lists only what changed
                // after this: the fence after a big sync does not pay for that listing.
                let verifying = ContinuousClock.now
                do {
                    _ = try current.writer.scan(ignores: current.ignores)
                    logger.debug("Sync verified", metadata: ["sync": "\(sync)", "scanMs": "\(Self.milliseconds(since: verifying))"])
                } catch {
                    // The next `sync-begin` scans again and reports the failure then.
                    logger.debug("Sync verification scan failed", metadata: ["sync": "\(sync)", "error": "\(error)"])
                }
            }
            session = nil
        case .state, .entries, .ack, .done, .failed:
            logger.debug("Ignored a sync message meant for the leader", metadata: ["type": "\(message.type)"])
        }
    }

    private func process(data frame: HelperRawFrame, sink: FrameSink) {
        guard session?.sync == frame.job else { return }
        account(Int64(frame.payload.count), sink: sink)
        if let skipping = session?.skipping, skipping > 0 {
            session?.skipping = max(0, skipping - Int64(frame.payload.count))
            return
        }
        guard session?.failure == nil, let writer = session?.writer else { return }
        do {
            try writer.writeFileData(frame.payload[...])
            if writer.openFileComplete { try writer.finishFile() }
        } catch {
            session?.failure = SyncError.wrap(error)
            session?.skipping = max(0, writer.openFileRemaining)
        }
    }

    /// Counts applied cost and acknowledges every `SyncFlow.ackEvery`.
    private func account(_ cost: Int64, sink: FrameSink) {
        guard var current = session else { return }
        current.applied += cost
        if current.applied - current.acked >= SyncFlow.ackEvery {
            current.acked = current.applied
            sink.send(.sync(.ack(sync: current.sync, applied: current.applied)))
        }
        session = current
    }

    static func milliseconds(since start: ContinuousClock.Instant) -> Double {
        let (seconds, attoseconds) = (ContinuousClock.now - start).components
        return ((Double(seconds) * 1000 + Double(attoseconds) / 1e15) * 10).rounded() / 10
    }

    private func unknown(_ sync: UInt32, _ sink: FrameSink) {
        sink.send(.sync(.failed(sync: sync, code: "unknown-sync", message: "sync \(sync) was not begun on this helper (or was replaced)")))
    }

    private func writer(for begin: SyncBegin) throws -> TreeWriter {
        guard !begin.root.isEmpty, begin.root.utf8.count <= Self.maximumRootLength, !begin.root.utf8.contains(0) else {
            throw SyncError(code: "bad-request", "the workspace '\(begin.root.prefix(200))' is empty, too long or contains NUL")
        }
        guard begin.ignores.count <= Self.maximumIgnores,
              begin.ignores.allSatisfy({ $0.utf8.count <= Self.maximumIgnoreLength && !$0.utf8.contains(0) }) else {
            throw SyncError(code: "bad-request", "more than \(Self.maximumIgnores) ignore patterns, or one longer than \(Self.maximumIgnoreLength) bytes")
        }
        var root = begin.root
        if root == "~" || root.hasPrefix("~/") {
            root = (ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()) + root.dropFirst()
        }
        guard root.hasPrefix("/") else {
            throw SyncError(code: "bad-request", "the workspace '\(root.prefix(200))' is not an absolute path (or ~/…)")
        }
        guard root != "/" else { throw SyncError.refused("the workspace cannot be the root directory /") }
        let options = TreeWriter.Options(caseInsensitive: begin.caseInsensitive ?? false, windowsNames: begin.windowsNames ?? false)
        if let existing = writers[root] {
            existing.options = options
            return existing
        }
        let writer = try TreeWriter(root: root, options: options)
        writers[root] = writer
        return writer
    }
}
