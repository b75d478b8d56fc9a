import AHSPIFFE
import Foundation

extension StateStore: ExecutorStore {
    @discardableResult
    public func enroll(name: String, spiffeID: SPIFFEID, publicKeySHA256: [UInt8], tags: [String: String],
                       certSerial: String, certNotAfter: Date, now: Date) async throws -> EnrollmentResult {
        let result = try await run {
            try $0.enroll(name: name, spiffeID: spiffeID, publicKeySHA256: publicKeySHA256, tags: tags,
                          certSerial: certSerial, certNotAfter: certNotAfter, now: now)
        }
        watchers.yield(.local(name: name))
        return result
    }

    @discardableResult
    public func redeemAndEnroll(tokenHash: [UInt8], name: String, spiffeID: SPIFFEID, publicKeySHA256: [UInt8],
                                requestedTags: [String: String], certSerial: String, certNotAfter: Date,
                                now: Date) async throws -> EnrollmentResult {
        let result = try await run {
            try $0.redeemAndEnroll(tokenHash: tokenHash, name: name, spiffeID: spiffeID, publicKeySHA256: publicKeySHA256,
                                   requestedTags: requestedTags, certSerial: certSerial, certNotAfter: certNotAfter, now: now)
        }
        watchers.yield(.local(name: name))
        return result
    }

    public func recordRenewal(name: String, certSerial: String, certNotAfter: Date,
                              publicKeySHA256: [UInt8]?, now: Date) async throws {
        try await run {
            try $0.recordRenewal(name: name, certSerial: certSerial, certNotAfter: certNotAfter,
                                 publicKeySHA256: publicKeySHA256, now: now)
        }
        watchers.yield(.local(name: name))
    }

    @discardableResult
    public func revoke(name: String, reason: String, now: Date) async throws -> Bool {
        let changed = try await run { try $0.revoke(name: name, reason: reason, now: now) }
        if changed { watchers.yield(.local(name: name)) }
        return changed
    }

    public func isRevoked(name: String) async throws -> Bool {
        try await run { try $0.isRevoked(name: name) }
    }

    public func executor(named name: String) async throws -> ExecutorRecord? {
        try await run { try $0.executor(named: name) }
    }

    public func listExecutors() async throws -> [ExecutorRecord] {
        try await run { try $0.listExecutors() }
    }

    public func touch(name: String, lastSeen: Date) {
        enqueue("last-seen of executor \(name.prefix(64))") { try $0.touch(name: name, lastSeen: lastSeen) }
    }

    public func executorChanges() -> AsyncStream<ExecutorsChange> {
        let (stream, continuation) = AsyncStream.makeStream(of: ExecutorsChange.self, bufferingPolicy: .bufferingNewest(64))
        let watchers = self.watchers
        let id = watchers.makeID()
        let interval = changeCheckInterval
        let logger = self.logger
        let poll = Task { [self] in
            do {
                // `PRAGMA data_version` on the store's own connection: it moves only when
                // another connection commits, so our own writes (reported as `.local`) and
                // idle periods cost one tiny query per interval, whatever the fleet size.
                var seen = try await run { try $0.externalChangeCounter() }
                guard !Task.isCancelled else { return }
                watchers.add(id, continuation, first: .watching)
                while !Task.isCancelled {
                    try await Task.sleep(for: interval)
                    do {
                        let version = try await run { try $0.externalChangeCounter() }
                        if version != seen {
                            seen = version
                            continuation.yield(.external)
                        }
                    } catch let error as SQLiteError {
                        logger.error("cannot check the state file for changes", metadata: ["error": "\(error)"])
                    }
                }
            } catch {
                // Closed store or cancelled watch: the stream ends.
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in
            poll.cancel()
            watchers.remove(id)
        }
        return stream
    }
}
