@testable import AHHTTPServer
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// A responder whose answers the test writes: `GET /api/v1/readyz` answers 200, other paths
/// go to `route`, CONNECT to `tunnels`.
struct TestResponder: HTTPResponder {
    var tunnels: (any TunnelIngress)?
    var route: @Sendable (HTTPAPIRequest) async -> HTTPAPIResponse

    func respond(to request: HTTPAPIRequest) async -> HTTPAPIResponse {
        if request.path == "/api/v1/readyz" { return .json(["status": "ready"]) }
        return await route(request)
    }
}

/// A one-shot signal between a server task and the test: `wait` returns once `fire` was called.
final class Signal: Sendable {
    private let state = NIOLockedValueBox<(fired: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func fire() {
        let waiters = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            state.fired = true
            defer { state.waiters = [] }
            return state.waiters
        }
        waiters.forEach { $0.resume() }
    }

    var fired: Bool { state.withLockedValue { $0.fired } }

    func wait() async {
        await withCheckedContinuation { continuation in
            let now = state.withLockedValue { state -> Bool in
                if state.fired { return true }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// True if fired within `seconds`.
    func wait(seconds: Double) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask { await self.wait(); return true }
            group.addTask { try? await Task.sleep(for: .seconds(seconds)); return false }
            let first = await group.next() ?? false
            group.cancelAll()
            self.fireIfTimedOut(first)
            return first
        }
    }

    /// The waiting child task must end for the group to return: release it.
    private func fireIfTimedOut(_ fired: Bool) {
        guard !fired else { return }
        let waiters = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            defer { state.waiters = [] }
            return state.waiters
        }
        waiters.forEach { $0.resume() }
    }
}
