import AHSync
import Foundation

/// The syncs open on one `HelperClient` connection, by sync id: each gets the helper's
/// replies (`sync-state`, `sync-entries`, `sync-ack`, `sync-done`, `sync-error`) in order.
final class SyncRoutes: @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock`.
    private var open: [UInt32: AsyncThrowingStream<SyncMessage, any Error>.Continuation] = [:]
    private var failure: FollowerHelperError?

    func register(_ sync: UInt32) -> AsyncThrowingStream<SyncMessage, any Error> {
        let (stream, continuation) = AsyncThrowingStream<SyncMessage, any Error>.makeStream()
        let refusal: FollowerHelperError? = lock.withLock {
            if let failure { return failure }
            open[sync] = continuation
            return nil
        }
        if let refusal { continuation.finish(throwing: refusal) }
        return stream
    }

    func remove(_ sync: UInt32) {
        _ = lock.withLock { open.removeValue(forKey: sync) }?.finish()
    }

    func receive(_ message: SyncMessage) {
        lock.withLock { open[message.sync] }?.yield(message)
    }

    func failAll(_ error: FollowerHelperError) {
        let streams: [AsyncThrowingStream<SyncMessage, any Error>.Continuation] = lock.withLock {
            if failure == nil { failure = error }
            defer { open = [:] }
            return Array(open.values)
        }
        for stream in streams { stream.finish(throwing: error) }
    }
}

/// The leader's end of one sync on a helper connection: send messages and file data, read
/// the helper's replies. `close()` when done (late replies are then dropped).
public final class SyncConversation: Sendable {
    public let sync: UInt32
    public let replies: AsyncThrowingStream<SyncMessage, any Error>
    private let connection: ClientConnection

    init(sync: UInt32, connection: ClientConnection) {
        self.sync = sync
        self.connection = connection
        replies = connection.syncs.register(sync)
    }

    public func send(_ message: SyncMessage) {
        connection.send(.sync(message))
    }

    /// File bytes (at most `HelperWire.maximumFrameLength - 5` per call).
    public func sendData(_ bytes: ArraySlice<UInt8>) {
        connection.send(frame: HelperWire.encode(kind: HelperFrameKind.syncData.rawValue, job: sync, payload: bytes))
    }

    public func close() {
        connection.syncs.remove(sync)
    }
}

extension HelperClient {
    /// Opens a sync conversation with a new id.
    public func openSync() -> SyncConversation {
        SyncConversation(sync: makeJobID(), connection: connection)
    }
}
