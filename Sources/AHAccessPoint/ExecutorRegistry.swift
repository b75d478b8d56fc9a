import AHQUIC
import Foundation
import NIOConcurrencyHelpers

/// The live view of executors: who is connected right now, since when, last heard from.
/// Durable facts (tags, certificate expiry, revocation) live in the store; the two are
/// merged for `GET /api/v1/executors`.
public final class ExecutorRegistry: Sendable {
    public struct Live: Sendable {
        public let connection: QUICConnection
        public let connectedAt: Date
        public var lastSeen: Date
    }

    private let live = NIOLockedValueBox<[String: Live]>([:])

    public init() {}

    func connected(_ name: String, _ connection: QUICConnection, at now: Date) -> QUICConnection? {
        live.withLockedValue { map in
            let previous = map[name]?.connection
            map[name] = Live(connection: connection, connectedAt: now, lastSeen: now)
            return previous
        }
    }

    func disconnected(_ name: String, _ connection: QUICConnection) {
        live.withLockedValue { map in
            if map[name]?.connection === connection { map[name] = nil }
        }
    }

    func touch(_ name: String, at now: Date) {
        live.withLockedValue { $0[name]?.lastSeen = now }
    }

    public func connection(for name: String) -> QUICConnection? {
        live.withLockedValue { $0[name]?.connection }
    }

    public func snapshot() -> [String: Live] {
        live.withLockedValue { $0 }
    }
}
