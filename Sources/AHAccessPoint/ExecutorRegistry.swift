import AHControl
import AHQUIC
import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// The live view of executors: who is connected right now, what they said in Hello, when
/// they last sent a heartbeat, and whether they are leaving. Durable facts (tags, certificate
/// expiry, revocation, the last Hello) live in the store; the two are merged for
/// `GET /api/v1/executors`.
///
/// State rules: connected while heartbeats arrive within `lateFactor` × the interval the
/// executor announced (plus one second of slack); degraded when they are late, when no Hello
/// came yet, or after the executor's Goodbye; offline once the connection is gone (an idle
/// timeout at the latest).
public final class ExecutorRegistry: Sendable {
    public enum State: String, Sendable { case connected, degraded, offline }

    public struct Live: Sendable {
        public let connection: QUICConnection
        public let connectedAt: Date
        public var lastSeen: Date
        public var hello: Hello?
        public var lastHeartbeat: Heartbeat?
        public var lastHeartbeatAt: Date?
        /// Set by the executor's Goodbye: no new tunnels.
        public var leaving: String?
        public let control: ControlHandle?

        /// Computed at `now`.
        public func state(at now: Date, lateFactor: Double = ExecutorRegistry.lateFactor) -> State {
            guard let hello, leaving == nil else { return .degraded }
            let interval = Double(hello.heartbeatIntervalMillis) / 1000
            let last = lastHeartbeatAt ?? lastSeen
            return now.timeIntervalSince(last) <= interval * lateFactor + 1 ? .connected : .degraded
        }
    }

    /// Heartbeats this many intervals late make an executor degraded.
    public static let lateFactor = 2.5

    private let live = NIOLockedValueBox<[String: Live]>([:])

    public init() {}

    func connected(_ name: String, _ connection: QUICConnection, at now: Date) -> QUICConnection? {
        live.withLockedValue { map in
            let previous = map[name]?.connection
            map[name] = Live(connection: connection, connectedAt: now, lastSeen: now, control: nil)
            return previous
        }
    }

    func disconnected(_ name: String, _ connection: QUICConnection) {
        live.withLockedValue { map in
            if map[name]?.connection === connection { map[name] = nil }
        }
    }

    /// Updates the entry of `connection` (not a newer one under the same name).
    private func update(_ name: String, _ connection: QUICConnection, _ body: (inout Live) -> Void) {
        live.withLockedValue { map in
            guard var entry = map[name], entry.connection === connection else { return }
            body(&entry)
            map[name] = entry
        }
    }

    func hello(_ name: String, _ connection: QUICConnection, _ hello: Hello, control: ControlHandle, at now: Date) {
        update(name, connection) {
            $0 = Live(connection: $0.connection, connectedAt: $0.connectedAt, lastSeen: now, hello: hello,
                      lastHeartbeat: nil, lastHeartbeatAt: now, leaving: nil, control: control)
        }
    }

    func heartbeat(_ name: String, _ connection: QUICConnection, _ beat: Heartbeat, at now: Date) {
        update(name, connection) {
            $0.lastHeartbeat = beat
            $0.lastHeartbeatAt = now
            $0.lastSeen = now
        }
    }

    func leaving(_ name: String, _ connection: QUICConnection, reason: String) {
        update(name, connection) { $0.leaving = reason }
    }

    public func connection(for name: String) -> QUICConnection? {
        live.withLockedValue { $0[name]?.connection }
    }

    public func entry(for name: String) -> Live? {
        live.withLockedValue { $0[name] }
    }

    public func snapshot() -> [String: Live] {
        live.withLockedValue { $0 }
    }
}

/// What the registry keeps of a control stream: a way to ping and to say goodbye from any
/// thread (both hop to the stream's loop).
public final class ControlHandle: Sendable {
    let eventLoop: EventLoop
    private let handler: NIOLoopBound<AccessPointControlHandler>

    init(_ handler: AccessPointControlHandler, eventLoop: EventLoop) {
        self.eventLoop = eventLoop
        self.handler = NIOLoopBound(handler, eventLoop: eventLoop)
    }

    /// Round-trip time of a Ping answered by the executor.
    public func ping(timeout: TimeAmount = .seconds(5)) -> EventLoopFuture<TimeAmount> {
        eventLoop.flatSubmit {
            self.handler.value.ping(timeout: timeout)
                ?? self.eventLoop.makeFailedFuture(ControlViolation(code: 0, reason: "control stream closed"))
        }
    }

    func sayGoodbye(_ goodbye: Goodbye) {
        eventLoop.execute { self.handler.value.sayGoodbye(goodbye) }
    }
}
