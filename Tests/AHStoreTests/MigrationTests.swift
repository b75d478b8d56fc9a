@testable import AHStore
import Foundation
import XCTest

final class MigrationTests: XCTestCase {
    private func tables(_ database: SQLiteDatabase) throws -> [String] {
        try database.withConnection { connection in
            try connection.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name") {
                try $0.string(0)
            }
        }
    }

    func testNewStateFileIsMigratedToTheLatestVersion() throws {
        let fixture = try StoreFixture()
        let database = try StateDatabase.open(path: fixture.path)
        XCTAssertEqual(StateSchema.latestVersion, 4)
        XCTAssertEqual(try database.withConnection { try $0.userVersion() }, StateSchema.latestVersion)
        XCTAssertEqual(try tables(database), ["executor_facts", "executors", "identity_history", "join_tokens", "session_events", "sessions", "tunnels"])
    }

    func testMigrateReportsWhatItApplied() throws {
        let fixture = try StoreFixture()
        let database = try fixture.openDatabase()
        let first = try Migrator.migrate(database, with: StateSchema.migrations)
        XCTAssertEqual(first, MigrationReport(fromVersion: 0, toVersion: 4, applied: [1, 2, 3, 4]))
        let second = try Migrator.migrate(database, with: StateSchema.migrations)
        XCTAssertEqual(second, MigrationReport(fromVersion: 4, toVersion: 4, applied: []))
    }

    /// A state file of the previous release (schema 2) opens as a `StateStore`: migrated to
    /// the latest (the retention indexes, then the session tables), its rows intact.
    func testAVersion2StateFileMigratesWithItsRows() async throws {
        let fixture = try StoreFixture()
        do {
            let database = try fixture.openDatabase()
            try Migrator.migrate(database, with: Array(StateSchema.migrations.prefix(2)))
            try database.transaction { connection in
                try connection.execute(
                    "INSERT INTO tunnels (subject, executor_name, port, remote, started_at, result) VALUES ('alice', 'n1', 22, 'r', 0, '403')")
                try connection.execute(
                    "INSERT INTO identity_history (at, kind, executor_name, detail) VALUES (0, 'refused', 'n1', 'bad token')")
            }
            database.close()
        }
        let store = try await fixture.openStore()
        let version = try store.tables.database.withConnection { try $0.userVersion() }
        XCTAssertEqual(version, StateSchema.latestVersion)
        let indexes = try store.tables.database.withConnection { connection in
            try connection.query("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE '%_by_%' ORDER BY name") {
                try $0.string(0)
            }
        }
        XCTAssertEqual(indexes, ["identity_history_by_executor", "identity_history_by_time", "session_events_by_type", "tunnels_by_executor",
                                 "tunnels_by_start"])
        let tunnels = try await store.tunnels(executorName: "n1", limit: 10)
        XCTAssertEqual(tunnels.map(\.subject), ["alice"])
        let next = store.tunnelStarted(TunnelAttempt(subject: nil, executorName: "n1", port: 22, remote: "r", result: "407", detail: ""),
                                       now: t0)
        XCTAssertGreaterThan(next, tunnels[0].id, "new ids continue after the old rows")
        let history = try await store.history(executorName: "n1", limit: 10)
        XCTAssertEqual(history.map(\.detail), ["bad token"])
        await store.close()
    }

    func testReopeningKeepsDataAndDoesNotRerunMigrations() throws {
        let fixture = try StoreFixture()
        let runs = LockedCounter()
        let migrations = [
            Migration(version: 1, summary: "create t") { connection in
                runs.add("v1")
                try connection.execute("CREATE TABLE t (x INTEGER)")
            },
        ]
        do {
            let database = try fixture.openDatabase()
            try Migrator.migrate(database, with: migrations)
            try database.transaction { try $0.execute("INSERT INTO t VALUES (42)") }
            database.close()
        }
        let reopened = try fixture.openDatabase()
        let report = try Migrator.migrate(reopened, with: migrations)
        XCTAssertEqual(report.applied, [])
        XCTAssertEqual(runs["v1"], 1)
        XCTAssertEqual(try reopened.withConnection { try $0.queryFirst("SELECT x FROM t") { try $0.int64(0) } }, 42)
    }

    func testReopeningTheStateFileKeepsEnrolledExecutors() throws {
        let fixture = try StoreFixture()
        do {
            let store = try fixture.openTables()
            try store.enroll(name: "node1", spiffeID: try agentID("node1"), publicKeySHA256: fakeHash("k1"), tags: [:],
                             certSerial: "01", certNotAfter: at(3600), now: t0)
            store.database.close()
        }
        let store = try fixture.openTables()
        XCTAssertEqual(try store.executor(named: "node1")?.certSerial, "01")
        XCTAssertEqual(try store.history(limit: 10).count, 1)
    }

    func testANewMigrationIsAppliedOnTopOfExistingData() throws {
        let fixture = try StoreFixture()
        let v1 = Migration(version: 1, summary: "create t", sql: "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")
        let v2 = Migration(version: 2, summary: "add y", sql: "ALTER TABLE t ADD COLUMN y TEXT NOT NULL DEFAULT 'new';")
        let database = try fixture.openDatabase()
        try Migrator.migrate(database, with: [v1])
        let report = try Migrator.migrate(database, with: [v1, v2])
        XCTAssertEqual(report, MigrationReport(fromVersion: 1, toVersion: 2, applied: [2]))
        let row = try database.withConnection { try $0.queryFirst("SELECT x, y FROM t") { (try $0.int64(0), try $0.string(1)) } }
        XCTAssertEqual(row?.0, 1)
        XCTAssertEqual(row?.1, "new")
    }

    func testADatabaseFromANewerVersionIsRefused() throws {
        let fixture = try StoreFixture()
        do {
            let database = try fixture.openDatabase()
            try database.withConnection { try $0.setUserVersion(99) }
            database.close()
        }
        XCTAssertThrowsError(try StateDatabase.open(path: fixture.path)) { error in
            XCTAssertEqual(error as? SchemaError,
                           .databaseTooNew(path: fixture.path, found: 99, supported: StateSchema.latestVersion))
            let text = "\(error)"
            XCTAssertTrue(text.contains("99") && text.contains("newer ah") && text.contains(fixture.path), text)
        }
        // Nothing was created in the newer file.
        let database = try fixture.openDatabase()
        XCTAssertEqual(try database.withConnection { try $0.userVersion() }, 99)
        XCTAssertEqual(try tables(database), [])
    }

    func testAFailingMigrationLeavesTheSchemaAtTheLastWholeVersion() throws {
        struct Broken: Error {}
        let fixture = try StoreFixture()
        let migrations = [
            Migration(version: 1, summary: "create a", sql: "CREATE TABLE a (x INTEGER);"),
            Migration(version: 2, summary: "create b then fail") { connection in
                try connection.execute("CREATE TABLE b (x INTEGER)")
                throw Broken()
            },
        ]
        let database = try fixture.openDatabase()
        XCTAssertThrowsError(try Migrator.migrate(database, with: migrations)) { XCTAssertTrue($0 is Broken) }
        XCTAssertEqual(try database.withConnection { try $0.userVersion() }, 1)
        XCTAssertEqual(try tables(database), ["a"])
    }

    func testMigrationVersionsMustBeContiguous() throws {
        let fixture = try StoreFixture()
        let database = try fixture.openDatabase()
        let migrations = [
            Migration(version: 1, summary: "one", sql: "CREATE TABLE a (x INTEGER);"),
            Migration(version: 3, summary: "three", sql: "CREATE TABLE c (x INTEGER);"),
        ]
        XCTAssertThrowsError(try Migrator.migrate(database, with: migrations)) { error in
            guard case .invalidMigrations = error as? SchemaError else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(try database.withConnection { try $0.userVersion() }, 0, "nothing applied from a bad list")
    }

    func testConcurrentFirstStartsMigrateOnce() throws {
        let fixture = try StoreFixture()
        let runs = LockedCounter()
        let migrations = [
            Migration(version: 1, summary: "create t") { connection in
                runs.add("v1")
                try connection.execute("CREATE TABLE t (x INTEGER)")
            },
        ]
        let failures = LockedCounter()
        DispatchQueue.concurrentPerform(iterations: 2) { _ in
            do {
                let database = try fixture.openDatabase()
                try Migrator.migrate(database, with: migrations)
            } catch {
                failures.add("\(error)")
                failures.add("any")
            }
        }
        XCTAssertEqual(failures["any"], 0)
        XCTAssertEqual(runs["v1"], 1)
    }
}

/// The registry tables (migration 2): facts replace per executor, tunnel rows are completed.
final class RegistryTablesTests: XCTestCase {
    func testFactsAndTunnelAudit() async throws {
        let fixture = try StoreFixture()
        let store = try await fixture.openStore()
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        let linux = ExecutorFacts(agentVersion: "1.0", os: "linux", osVersion: "6.1", arch: "x86_64", cpuCount: 4,
                                  memoryBytes: 1 << 30, sshEnabled: true, sshHostKeys: [], allowedPorts: [], heartbeatIntervalMillis: 5000)
        var macos = linux
        macos.os = "macos"
        store.recordFacts(name: "n1", facts: linux, now: now)
        store.recordFacts(name: "n1", facts: macos, now: now.addingTimeInterval(5))
        let facts = try await store.allFacts()
        XCTAssertEqual(facts["n1"], ReportedFacts(facts: macos, reportedAt: now.addingTimeInterval(5)))
        var huge = linux
        huge.osVersion = String(repeating: "x", count: 70_000)
        XCTAssertThrowsError(try store.tables.recordFacts(name: "n1", facts: huge, now: now))

        let refused = store.tunnelStarted(TunnelAttempt(subject: nil, executorName: "n1", port: 22, remote: "r",
                                                        result: "407", detail: "no token"), now: now)
        let open = store.tunnelStarted(TunnelAttempt(subject: "alice", executorName: "n1", port: 22, remote: "r",
                                                     result: "open", detail: ""), now: now)
        store.tunnelEnded(id: open, bytesUp: 10, bytesDown: 20, result: "closed", detail: "", now: now.addingTimeInterval(3))
        let rows = try await store.tunnels(executorName: "n1", limit: 10)
        XCTAssertEqual(rows.map(\.id), [open, refused])
        XCTAssertEqual(rows[0].result, "closed")
        XCTAssertEqual(rows[0].bytesUp, 10)
        XCTAssertEqual(rows[0].bytesDown, 20)
        XCTAssertEqual(rows[0].endedAt, now.addingTimeInterval(3))
        XCTAssertEqual(rows[1].endedAt, now, "a refusal ends when it is decided")
        XCTAssertNil(rows[1].subject)
        await store.close()
    }
}
