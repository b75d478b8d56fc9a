import Foundation

/// Where the leader's end of a connection delivers one slurp, in order: `file`, then its
/// data chunks, `fileEnd`, … and finally `end` or `lost`. Called synchronously on the
/// connection's reader: a receiver that writes each chunk before returning makes the
/// transfer run at the pace of the leader's disk (nothing piles up in memory).
public protocol SlurpReceiver: AnyObject, Sendable {
    func slurpFile(_ header: SlurpFileHeader)
    func slurpData(_ bytes: [UInt8])
    func slurpFileEnd(_ end: SlurpFileEnd)
    /// The last call for a completed (or refused, or cancelled) set.
    func slurpEnd(_ end: SlurpEnd)
    /// The last call when the connection ended first: the set is incomplete.
    func slurpLost(_ error: FollowerHelperError)
}

/// The slurps open on one `HelperClient` connection, by job id.
final class SlurpRoutes: @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock`.
    private var receivers: [UInt32: any SlurpReceiver] = [:]
    private var failure: FollowerHelperError?

    /// nil when registered, else why the slurp cannot start.
    func register(job: UInt32, _ receiver: any SlurpReceiver) -> FollowerHelperError? {
        lock.withLock {
            if let failure { return failure == .closed ? .closed : .jobLost(job: job, reason: failure.description) }
            if receivers[job] != nil { return .duplicateJob(job) }
            receivers[job] = receiver
            return nil
        }
    }

    func data(job: UInt32, _ bytes: [UInt8]) {
        lock.withLock { receivers[job] }?.slurpData(bytes)
    }

    func receive(_ message: SlurpMessage) {
        switch message {
        case .file(let header): lock.withLock { receivers[header.job] }?.slurpFile(header)
        case .fileEnd(let end): lock.withLock { receivers[end.job] }?.slurpFileEnd(end)
        case .end(let end): lock.withLock { receivers.removeValue(forKey: end.job) }?.slurpEnd(end)
        case .start, .cancel: break
        }
    }

    /// Forgets a slurp whose receiver gave up (it asked the helper to cancel).
    func remove(job: UInt32) {
        _ = lock.withLock { receivers.removeValue(forKey: job) }
    }

    /// The connection ended: every open slurp is lost.
    func failAll(_ error: FollowerHelperError) {
        let open: [(UInt32, any SlurpReceiver)] = lock.withLock {
            if failure == nil { failure = error }
            defer { receivers = [:] }
            return Array(receivers)
        }
        for (job, receiver) in open {
            receiver.slurpLost(error == .closed ? .closed : .jobLost(job: job, reason: error.description))
        }
    }
}

extension HelperClient {
    /// Asks the helper for one file set; `receiver` gets the files as they stream in and
    /// exactly one final `slurpEnd` or `slurpLost` (possibly before this returns).
    public func slurp(_ request: SlurpStart, receiver: any SlurpReceiver) {
        if let refusal = connection.slurps.register(job: request.job, receiver) {
            receiver.slurpLost(refusal)
            return
        }
        connection.send(.slurp(.start(request)))
    }

    /// Stops a slurp early: the helper ends it with `slurp-end` code `cancelled`; the
    /// receiver hears nothing more.
    public func cancelSlurp(job: UInt32) {
        connection.slurps.remove(job: job)
        connection.send(.slurp(.cancel(job: job)))
    }
}
