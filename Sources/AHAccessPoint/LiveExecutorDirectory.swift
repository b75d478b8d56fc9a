import AHControl
import AHHTTP
import AHStore
import Foundation

/// `GET /api/v1/executors`: the store's records and last reported facts merged with the live
/// registry (state, last heartbeat). Revoked executors are not listed.
public struct LiveExecutorDirectory: ExecutorDirectory {
    let store: SQLiteIdentityStore
    let registry: ExecutorRegistry

    public init(store: SQLiteIdentityStore, registry: ExecutorRegistry) {
        self.store = store
        self.registry = registry
    }

    public func executors() async throws -> [ExecutorView] {
        let live = registry.snapshot()
        let facts = try store.allFacts()
        let now = Date()
        return try store.listExecutors()
            .filter { !$0.isRevoked }
            .sorted { $0.name < $1.name }
            .map { record in
                var view: ExecutorView
                if let entry = live[record.name] {
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
                if let stored = facts[record.name], let hello = try? ExecutorFactsCodec.decode(stored.json) {
                    view.facts = ExecutorFactsCodec.view(of: hello, reportedAt: stored.reportedAt)
                }
                return view
            }
    }
}

/// The Hello as stored in `executor_facts` (its own JSON) and as listed.
enum ExecutorFactsCodec {
    static func encode(_ hello: Hello) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(hello), as: UTF8.self)
    }

    static func decode(_ json: String) throws -> Hello {
        try JSONDecoder().decode(Hello.self, from: Data(json.utf8))
    }

    static func view(of hello: Hello, reportedAt: Date) -> ExecutorFactsView {
        ExecutorFactsView(agentVersion: hello.agentVersion, os: hello.os, osVersion: hello.osVersion, arch: hello.arch,
                          cpuCount: hello.cpuCount, memoryBytes: hello.memoryBytes, sshEnabled: hello.sshEnabled,
                          sshHostKeys: hello.sshHostKeys.map { .init(algorithm: $0.algorithm, publicKey: $0.publicKey, fingerprint: $0.fingerprint) },
                          allowedPorts: hello.allowedPorts, heartbeatIntervalMillis: hello.heartbeatIntervalMillis,
                          reportedAt: ISO8601.string(from: reportedAt))
    }
}
