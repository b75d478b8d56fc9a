import AHControl
import AHAPI
import AHHTTPServer
import AHStore
import Foundation

/// `GET /api/v1/executors`: the store's records and last reported facts merged with the live
/// registry (state, last heartbeat). Revoked executors are listed with state `revoked`.
public struct LiveExecutorDirectory: ExecutorDirectory {
    let store: StateStore
    let registry: ExecutorRegistry

    public init(store: StateStore, registry: ExecutorRegistry) {
        self.store = store
        self.registry = registry
    }

    public func executors() async throws -> [ExecutorView] {
        let live = registry.snapshot()
        let facts = try await store.allFacts()
        let now = Date()
        return try await store.listExecutors()
            .sorted { $0.name < $1.name }
            .map { record in
                var view: ExecutorView
                if record.isRevoked {
                    // Listed, so operators see what happened to it (and `ah connect` can say so).
                    view = ExecutorView(record: record, state: .revoked)
                } else if let entry = live[record.name] {
                    let state: ExecutorState = entry.state(at: now) == .connected ? .connected : .degraded
                    view = ExecutorView(record: record, state: state, lastSeen: entry.lastSeen)
                    view.connectedAt = ISO8601.string(from: entry.connectedAt)
                    if let beat = entry.lastHeartbeat, let at = entry.lastHeartbeatAt {
                        view.heartbeat = HeartbeatView(load: beat.load, memoryUsedBytes: beat.memoryUsedBytes,
                                                       uptimeSeconds: beat.uptimeSeconds, openTunnels: beat.openTunnels,
                                                       at: ISO8601.string(from: at))
                    }
                } else {
                    view = ExecutorView(record: record, state: .offline)
                }
                if let stored = facts[record.name] {
                    view.facts = ExecutorFactsCodec.view(of: stored.facts, reportedAt: stored.reportedAt)
                }
                return view
            }
    }
}

/// A Hello as the store keeps it (`ExecutorFacts`, its own versioned shape) and as listed.
enum ExecutorFactsCodec {
    static func facts(of hello: Hello) -> ExecutorFacts {
        ExecutorFacts(agentVersion: hello.agentVersion, os: hello.os, osVersion: hello.osVersion, arch: hello.arch,
                      cpuCount: hello.cpuCount, memoryBytes: hello.memoryBytes, sshEnabled: hello.sshEnabled,
                      sshHostKeys: hello.sshHostKeys.map { .init(algorithm: $0.algorithm, publicKey: $0.publicKey, fingerprint: $0.fingerprint) },
                      allowedPorts: hello.allowedPorts, heartbeatIntervalMillis: hello.heartbeatIntervalMillis)
    }

    static func view(of facts: ExecutorFacts, reportedAt: Date) -> ExecutorFactsView {
        ExecutorFactsView(agentVersion: facts.agentVersion, os: facts.os, osVersion: facts.osVersion, arch: facts.arch,
                          cpuCount: facts.cpuCount, memoryBytes: facts.memoryBytes, sshEnabled: facts.sshEnabled,
                          sshHostKeys: facts.sshHostKeys.map { .init(algorithm: $0.algorithm, publicKey: $0.publicKey, fingerprint: $0.fingerprint) },
                          allowedPorts: facts.allowedPorts, heartbeatIntervalMillis: facts.heartbeatIntervalMillis,
                          reportedAt: ISO8601.string(from: reportedAt))
    }
}
