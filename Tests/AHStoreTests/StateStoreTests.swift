@testable import AHStore
import Foundation
import XCTest

/// `StateStore`: the worker thread, the serial writer, change notification, tunnel ids.
final class StateStoreTests: XCTestCase {
    private var fixture: StoreFixture!

    override func setUpWithError() throws {
        fixture = try StoreFixture()
    }

    override func tearDown() {
        fixture = nil
    }

    func testQueuedWritesKeepTheirOrderAndFlushAwaitsThem() async throws {
        let store = try await fixture.openStore()
        for index in 0..<300 {
            store.recordHistory(kind: .refused, name: "n\(index % 7)", spiffeID: nil, detail: "\(index)", now: at(Double(index)))
        }
        await store.flush()
        // A second connection, not the store's worker: the rows are committed, not merely
        // queued ahead of this read.
        let other = try fixture.openTables()
        defer { other.database.close() }
        let rows = try other.history(limit: 1000).reversed().map(\.detail)
        XCTAssertEqual(rows, (0..<300).map { "\($0)" }, "rows land in the order they were queued")
        await store.close()
    }

    func testCloseAppliesQueuedWritesAndLaterCallsFail() async throws {
        let store = try await fixture.openStore()
        for index in 0..<50 {
            store.recordHistory(kind: .refused, name: nil, spiffeID: nil, detail: "\(index)", now: t0)
        }
        await store.close()
        let other = try fixture.openTables()
        defer { other.database.close() }
        XCTAssertEqual(try other.history(limit: 100).count, 50)
        do {
            _ = try await store.listExecutors()
            XCTFail("a closed store answered")
        } catch {
            XCTAssertTrue(error is StateStoreClosed, "\(error)")
        }
    }

    /// Another connection holds the write lock (as `ah token create` in another process
    /// might); more writes than the cooperative pool has threads wait for it. Unrelated
    /// tasks must still run while they wait. Were SQLite called on the pool, every pool
    /// thread would sit in SQLite's busy handler and the probes would only run once the
    /// writes had given up or finished, which the assertions below catch.
    func testWritesWaitingForALockedDatabaseDoNotBlockOtherTasks() async throws {
        let options = SQLiteOptions(busyTimeout: .seconds(20), busyRetryLimit: .seconds(20))
        let store = try await fixture.openStore(options: options)
        let holder = try fixture.openDatabase(options: options)
        try holder.withConnection { try $0.execute("BEGIN IMMEDIATE") }

        let writers = ProcessInfo.processInfo.activeProcessorCount * 2 + 2
        let finished = LockedCounter()
        let started = expectation(description: "every writer task is running")
        started.expectedFulfillmentCount = writers
        let tasks = (0..<writers).map { index in
            Task {
                defer { finished.add("write") }
                started.fulfill()
                try await store.enroll(name: "w\(index)", spiffeID: try agentID("w\(index)"), publicKeySHA256: fakeHash("k\(index)"),
                                       tags: [:], certSerial: "01", certNotAfter: at(3600), now: t0)
            }
        }
        await fulfillment(of: [started], timeout: 10)
        let probes = await withTaskGroup(of: Int.self) { group in
            for value in 0..<100 { group.addTask { value } }
            return await group.reduce(0, +)
        }
        XCTAssertEqual(probes, 4950)
        XCTAssertEqual(finished["write"], 0, "no write can finish while the other connection holds the lock")

        try holder.withConnection { try $0.execute("COMMIT") }
        for task in tasks { try await task.value }
        XCTAssertEqual(finished["write"], writers)
        let listed = try await store.listExecutors().count
        XCTAssertEqual(listed, writers)
        holder.close()
        await store.close()
    }

    /// The access point used to key open tunnels by the audit row id and fall back to -1
    /// when the insert failed, so every such tunnel shared one key.
    func testFailedAuditInsertsStillGetDistinctTunnelIDs() async throws {
        let store = try await fixture.openStore()
        let other = try fixture.openDatabase()
        defer { other.close() }
        try other.withConnection {
            try $0.execute("CREATE TRIGGER refuse_audit BEFORE INSERT ON tunnels BEGIN SELECT RAISE(ABORT, 'audit refused'); END")
        }
        let attempt = TunnelAttempt(subject: "alice", executorName: "n1", port: 22, remote: "r", result: "open", detail: "")
        let first = store.tunnelStarted(attempt, now: t0)
        let second = store.tunnelStarted(attempt, now: t0)
        await store.flush()
        XCTAssertNotEqual(first, second)
        XCTAssertGreaterThan(first, 0)
        XCTAssertGreaterThan(second, 0)
        let afterFailures = try await store.tunnels(executorName: nil, limit: 10)
        XCTAssertEqual(afterFailures.count, 0, "both inserts failed")

        try other.withConnection { try $0.execute("DROP TRIGGER refuse_audit") }
        let third = store.tunnelStarted(attempt, now: t0)
        await store.flush()
        XCTAssertEqual(Set([first, second, third]).count, 3)
        let written = try await store.tunnels(executorName: nil, limit: 10)
        XCTAssertEqual(written.map(\.id), [third])
        await store.close()

        // Ids never repeat across restarts, even after the rows were pruned.
        let reopened = try await fixture.openStore()
        _ = try await reopened.pruneAudit(before: at(1_000_000_000), limit: 100)
        let fourth = reopened.tunnelStarted(attempt, now: t0)
        XCTAssertGreaterThan(fourth, third)
        await reopened.close()
    }

    func testRetentionPrunesOldRowsInBoundedBatchesAndKeepsNewOnes() async throws {
        let store = try await fixture.openStore()
        let now = at(100 * 86_400)
        let day: TimeInterval = 86_400
        @discardableResult
        func tunnel(_ detail: String, started: Date, result: String = "403") -> Int64 {
            store.tunnelStarted(TunnelAttempt(subject: nil, executorName: "n1", port: 22, remote: "r", result: result, detail: detail),
                                now: started)
        }
        for index in 0..<5 { tunnel("old\(index)", started: now.addingTimeInterval(-40 * day)) }
        tunnel("new", started: now.addingTimeInterval(-day))
        let long = tunnel("long", started: now.addingTimeInterval(-40 * day), result: "open")
        store.tunnelEnded(id: long, bytesUp: 1, bytesDown: 1, result: "closed", detail: "", now: now.addingTimeInterval(-2 * day))
        for index in 0..<5 {
            store.recordHistory(kind: .refused, name: nil, spiffeID: nil, detail: "old\(index)", now: now.addingTimeInterval(-31 * day))
        }
        store.recordHistory(kind: .refused, name: nil, spiffeID: nil, detail: "new", now: now.addingTimeInterval(-29 * day))

        var retention = AuditRetention(batchSize: 2, maxBatchesPerRound: 1)
        let bounded = try await AuditPruner.pruneRound(store: store, retention: retention, now: now)
        XCTAssertEqual(bounded, AuditPruneResult(tunnels: 2, history: 2), "one batch per round when so configured")

        retention.maxBatchesPerRound = 10
        let rest = try await AuditPruner.pruneRound(store: store, retention: retention, now: now)
        XCTAssertEqual(rest, AuditPruneResult(tunnels: 3, history: 3))
        let tunnels = try await store.tunnels(executorName: nil, limit: 100).map(\.detail).sorted()
        XCTAssertEqual(tunnels, ["", "new"], "kept: the recent refusal and the long tunnel that ended recently")
        let history = try await store.history(limit: 100).map(\.detail)
        XCTAssertEqual(history, ["new"])
        let again = try await AuditPruner.pruneRound(store: store, retention: retention, now: now)
        XCTAssertEqual(again.total, 0)
        await store.close()
    }

    /// Rows written before facts had their own shape hold the executor's Hello message.
    func testOldShapedFactsRowsStillDecode() async throws {
        let store = try await fixture.openStore()
        let raw = try fixture.openDatabase()
        defer { raw.close() }
        let oldHello = """
            {"agentVersion":"0.9.0","allowedPorts":[2222],"arch":"aarch64","cpuCount":8,"heartbeatIntervalMillis":5000,\
            "memoryBytes":17179869184,"name":"old1","os":"linux","osVersion":"Debian 12","sshEnabled":true,\
            "sshHostKeys":[{"algorithm":"ssh-ed25519","fingerprint":"SHA256:abc","publicKey":"AAAAC3Nza"}],\
            "tags":{"os":"linux"},"type":"hello","version":1}
            """
        try raw.transaction { connection in
            try connection.execute("INSERT INTO executor_facts (name, facts_json, reported_at) VALUES (?, ?, ?)",
                                   ["old1", oldHello, Int64(1_700_000_000_000)])
            try connection.execute("INSERT INTO executor_facts (name, facts_json, reported_at) VALUES (?, ?, ?)",
                                   ["future", #"{"shape":99,"facts":{}}"#, Int64(1_700_000_000_000)])
        }
        let current = ExecutorFacts(agentVersion: "1.0", os: "linux", osVersion: "6.1", arch: "x86_64", cpuCount: 2,
                                    memoryBytes: 1 << 30, sshEnabled: false, sshHostKeys: [], allowedPorts: [],
                                    heartbeatIntervalMillis: 1000)
        store.recordFacts(name: "new1", facts: current, now: t0)

        let facts = try await store.allFacts()
        XCTAssertEqual(facts["old1"], ReportedFacts(
            facts: ExecutorFacts(agentVersion: "0.9.0", os: "linux", osVersion: "Debian 12", arch: "aarch64", cpuCount: 8,
                                 memoryBytes: 17_179_869_184, sshEnabled: true,
                                 sshHostKeys: [.init(algorithm: "ssh-ed25519", publicKey: "AAAAC3Nza", fingerprint: "SHA256:abc")],
                                 allowedPorts: [2222], heartbeatIntervalMillis: 5000),
            reportedAt: t0))
        XCTAssertEqual(facts["new1"]?.facts, current)
        XCTAssertNil(facts["future"], "a shape from a newer ah is left out, not misread")
        let stored = try raw.withConnection {
            try $0.queryFirst("SELECT facts_json FROM executor_facts WHERE name = 'new1'") { try $0.string(0) }
        }
        XCTAssertTrue(stored?.hasPrefix(#"{"facts":"#) ?? false, stored ?? "nil")
        XCTAssertTrue(stored?.contains(#""shape":2"#) ?? false, stored ?? "nil")
        await store.close()
    }

    func testChangesAreReportedForOtherConnectionsAndOurOwnRevocations() async throws {
        let store = try await fixture.openStore(changeCheckInterval: .milliseconds(20))
        for name in ["node1", "node2"] {
            try await store.enroll(name: name, spiffeID: try agentID(name), publicKeySHA256: fakeHash(name), tags: [:],
                                   certSerial: "01", certNotAfter: at(3600), now: t0)
        }
        let watching = expectation(description: "watching")
        let external = expectation(description: "external change")
        let local = expectation(description: "local revocation")
        let ended = expectation(description: "stream ended")
        let stream = store.executorChanges()
        let consumer = Task {
            for await change in stream {
                switch change {
                case .watching: watching.fulfill()
                case .external: external.fulfill()
                case .local(let name): if name == "node2" { local.fulfill() }
                }
            }
            ended.fulfill()
        }
        await fulfillment(of: [watching], timeout: 10)

        // Another process revokes node1 (a second connection to the same file).
        let other = try fixture.openTables()
        XCTAssertTrue(try other.revoke(name: "node1", reason: "ah executors revoke", now: at(5)))
        other.database.close()
        await fulfillment(of: [external], timeout: 10)

        let changed = try await store.revoke(name: "node2", reason: "from this process", now: at(6))
        XCTAssertTrue(changed)
        await fulfillment(of: [local], timeout: 10)

        await store.close()
        await fulfillment(of: [ended], timeout: 10)
        consumer.cancel()
    }

    func testAQueuedWriteThatFailsDoesNotStopLaterOnes() async throws {
        let store = try await fixture.openStore()
        store.touch(name: "ghost", lastSeen: t0) // unknown executor: fails, is logged
        await store.flush()
        XCTAssertEqual(store.worker.failedWrites, 1)
        store.recordHistory(kind: .refused, name: "after", spiffeID: nil, detail: "still written", now: t0)
        await store.flush()
        XCTAssertEqual(store.worker.failedWrites, 0, "a success ends the run of failures")
        let history = try await store.history(limit: 10)
        XCTAssertEqual(history.map(\.detail), ["still written"])
        await store.close()
    }
}
