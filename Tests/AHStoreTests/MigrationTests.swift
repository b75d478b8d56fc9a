import AHStore
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
        XCTAssertEqual(StateSchema.latestVersion, 2)
        XCTAssertEqual(try database.withConnection { try $0.userVersion() }, StateSchema.latestVersion)
        XCTAssertEqual(try tables(database), ["executor_facts", "executors", "identity_history", "join_tokens", "tunnels"])
    }

    func testMigrateReportsWhatItApplied() throws {
        let fixture = try StoreFixture()
        let database = try fixture.openDatabase()
        let first = try Migrator.migrate(database, with: StateSchema.migrations)
        XCTAssertEqual(first, MigrationReport(fromVersion: 0, toVersion: 2, applied: [1, 2]))
        let second = try Migrator.migrate(database, with: StateSchema.migrations)
        XCTAssertEqual(second, MigrationReport(fromVersion: 2, toVersion: 2, applied: []))
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
            let store = try fixture.openStore()
            try store.enroll(name: "node1", spiffeID: try agentID("node1"), publicKeySHA256: fakeHash("k1"), tags: [:],
                             certSerial: "01", certNotAfter: at(3600), now: t0)
            store.database.close()
        }
        let store = try fixture.openStore()
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
final class RegistryStoreTests: XCTestCase {
    func testFactsAndTunnelAudit() throws {
        let fixture = try StoreFixture()
        let store = try SQLiteIdentityStore(path: fixture.path)
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        try store.recordFacts(name: "n1", factsJSON: #"{"os":"linux"}"#, now: now)
        try store.recordFacts(name: "n1", factsJSON: #"{"os":"macos"}"#, now: now.addingTimeInterval(5))
        XCTAssertEqual(try store.allFacts()["n1"], ExecutorFacts(json: #"{"os":"macos"}"#, reportedAt: now.addingTimeInterval(5)))
        XCTAssertThrowsError(try store.recordFacts(name: "n1", factsJSON: String(repeating: "x", count: 70_000), now: now))

        let refused = try store.tunnelStarted(TunnelAttempt(subject: nil, executorName: "n1", port: 22, remote: "r",
                                                            result: "407", detail: "no token"), now: now)
        let open = try store.tunnelStarted(TunnelAttempt(subject: "alice", executorName: "n1", port: 22, remote: "r",
                                                         result: "open", detail: ""), now: now)
        try store.tunnelEnded(id: open, bytesUp: 10, bytesDown: 20, result: "closed", detail: "", now: now.addingTimeInterval(3))
        let rows = try store.tunnels(executorName: "n1", limit: 10)
        XCTAssertEqual(rows.map(\.id), [open, refused])
        XCTAssertEqual(rows[0].result, "closed")
        XCTAssertEqual(rows[0].bytesUp, 10)
        XCTAssertEqual(rows[0].bytesDown, 20)
        XCTAssertEqual(rows[0].endedAt, now.addingTimeInterval(3))
        XCTAssertEqual(rows[1].endedAt, now, "a refusal ends when it is decided")
        XCTAssertNil(rows[1].subject)
    }
}
