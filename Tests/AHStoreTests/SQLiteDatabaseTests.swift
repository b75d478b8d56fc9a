@testable import AHStore
import CSQLite
import Foundation
import XCTest

final class SQLiteDatabaseTests: XCTestCase {
    func testNewFileAndItsWALAreCreatedOwnerOnly() throws {
        let fixture = try StoreFixture()
        let database = try fixture.openDatabase()
        try database.transaction { try $0.execute("CREATE TABLE t (x INTEGER)") }
        for suffix in ["", "-wal", "-shm"] {
            let attributes = try FileManager.default.attributesOfItem(atPath: fixture.path + suffix)
            let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
            XCTAssertEqual(mode & 0o777, 0o600, "mode of state.sqlite\(suffix) is \(String(mode, radix: 8))")
        }
    }

    func testConnectionIsSetUpForWALWithForeignKeys() throws {
        let fixture = try StoreFixture()
        let database = try fixture.openDatabase()
        try database.withConnection { connection in
            XCTAssertEqual(try connection.journalMode(), "wal")
            XCTAssertEqual(try connection.queryFirst("PRAGMA foreign_keys") { try $0.int64(0) }, 1)
            XCTAssertEqual(try connection.queryFirst("PRAGMA synchronous") { try $0.int64(0) }, 1, "NORMAL")
        }
        // A second connection sees the persistent WAL mode too.
        let second = try fixture.openDatabase()
        XCTAssertEqual(try second.withConnection { try $0.journalMode() }, "wal")
    }

    func testTypedValuesRoundTrip() throws {
        let fixture = try StoreFixture()
        let database = try fixture.openDatabase()
        let text = "naïve \u{1F600} with\0nul"
        let bytes: [UInt8] = [0, 1, 2, 255]
        try database.transaction { connection in
            try connection.execute("CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, d BLOB, e TEXT, z BLOB, n TEXT, f INTEGER)")
            let stored = try connection.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                                [Int64.min, 2.5, text, bytes, Data([9, 8]), "", [UInt8](), nil, true])
            XCTAssertEqual(stored, 1)
        }
        try database.withConnection { connection in
            let row = try connection.queryFirst("SELECT i, r, s, b, d, e, z, n, f FROM t") { row in
                (try row.int64(0), try row.double(1), try row.string(2), try row.bytes(3), try row.data(4),
                 try row.string(5), try row.bytes(6), try row.optionalString(7), try row.int64(8), row.isNull(7))
            }
            let values = try XCTUnwrap(row)
            XCTAssertEqual(values.0, Int64.min)
            XCTAssertEqual(values.1, 2.5)
            XCTAssertEqual(values.2, text, "text keeps non-ASCII and embedded NUL")
            XCTAssertEqual(values.3, bytes)
            XCTAssertEqual(values.4, Data([9, 8]))
            XCTAssertEqual(values.5, "", "empty string is stored as text, not NULL")
            XCTAssertEqual(values.6, [], "empty blob is stored as a blob, not NULL")
            XCTAssertNil(values.7)
            XCTAssertEqual(values.8, 1)
            XCTAssertTrue(values.9)
        }
    }

    func testPreparedStatementCanBeReboundAndRerun() throws {
        let fixture = try StoreFixture()
        let database = try fixture.openDatabase()
        try database.transaction { connection in
            try connection.execute("CREATE TABLE t (k TEXT, v INTEGER)")
            let insert = try connection.prepare("INSERT INTO t VALUES (?, ?)")
            for index in 0..<3 {
                insert.reset()
                try insert.bind("k\(index)", at: 1)
                try insert.bind(Int64(index * 10), at: 2)
                XCTAssertFalse(try insert.step())
            }
        }
        let sum = try database.withConnection { try $0.queryFirst("SELECT SUM(v), COUNT(*) FROM t") { (try $0.int64(0), try $0.int64(1)) } }
        XCTAssertEqual(sum?.0, 30)
        XCTAssertEqual(sum?.1, 3)
    }

    func testReadingNullAsNonOptionalNamesTheColumn() throws {
        let fixture = try StoreFixture()
        let database = try fixture.openDatabase()
        XCTAssertThrowsError(try database.withConnection { try $0.queryFirst("SELECT NULL AS missing") { try $0.int64(0) } }) { error in
            let error = error as? SQLiteError
            XCTAssertEqual(error?.code, SQLITE_MISMATCH)
            XCTAssertTrue(error?.message.contains("missing") ?? false, "\(String(describing: error))")
            XCTAssertTrue(error?.message.contains("NULL") ?? false)
        }
    }

    func testErrorsCarrySQLiteMessageAndSQL() throws {
        let fixture = try StoreFixture()
        let database = try fixture.openDatabase()
        XCTAssertThrowsError(try database.withConnection { try $0.execute("SELEC 1") }) { error in
            let error = error as? SQLiteError
            XCTAssertEqual(error?.code, SQLITE_ERROR)
            XCTAssertTrue(error?.message.contains("syntax error") ?? false, "\(String(describing: error))")
            XCTAssertEqual(error?.sql, "SELEC 1")
            XCTAssertTrue(error?.description.contains("SELEC 1") ?? false)
        }
        try database.transaction { try $0.execute("CREATE TABLE u (k TEXT PRIMARY KEY)") }
        try database.transaction { try $0.execute("INSERT INTO u VALUES (?)", ["a"]) }
        XCTAssertThrowsError(try database.transaction { try $0.execute("INSERT INTO u VALUES (?)", ["a"]) }) { error in
            let error = error as? SQLiteError
            XCTAssertEqual(error?.isConstraintViolation, true)
            XCTAssertEqual(error?.extendedCode, SQLITE_CONSTRAINT | (6 << 8), "SQLITE_CONSTRAINT_PRIMARYKEY")
            XCTAssertTrue(error?.message.contains("UNIQUE") ?? false, "\(String(describing: error))")
        }
    }

    func testParameterCountMustMatch() throws {
        let fixture = try StoreFixture()
        let database = try fixture.openDatabase()
        XCTAssertThrowsError(try database.withConnection { try $0.queryFirst("SELECT ? + ?", [Int64(1)]) { try $0.int64(0) } }) { error in
            XCTAssertEqual((error as? SQLiteError)?.code, SQLITE_RANGE)
        }
        XCTAssertThrowsError(try database.withConnection { try $0.queryFirst("SELECT 1", [Int64(1)]) { try $0.int64(0) } })
    }

    func testOnlyOneStatementPerPrepare() throws {
        let fixture = try StoreFixture()
        let database = try fixture.openDatabase()
        try database.transaction { try $0.execute("CREATE TABLE t (x INTEGER)") }
        // The classic injection shape: a second statement smuggled after the first is refused.
        XCTAssertThrowsError(try database.withConnection { try $0.execute("SELECT 1; DROP TABLE t") }) { error in
            XCTAssertEqual((error as? SQLiteError)?.code, SQLITE_MISUSE)
        }
        XCTAssertEqual(try database.withConnection { try $0.queryFirst("SELECT COUNT(*) FROM t") { try $0.int64(0) } }, 0)
        // Trailing whitespace is fine.
        XCTAssertEqual(try database.withConnection { try $0.queryFirst("SELECT 7;  \n") { try $0.int64(0) } }, 7)
    }

    func testTransactionRollsBackWhenBodyThrows() throws {
        struct Boom: Error {}
        let fixture = try StoreFixture()
        let database = try fixture.openDatabase()
        try database.transaction { try $0.execute("CREATE TABLE t (x INTEGER)") }
        XCTAssertThrowsError(try database.transaction { connection in
            try connection.execute("INSERT INTO t VALUES (1)")
            throw Boom()
        }) { XCTAssertTrue($0 is Boom) }
        XCTAssertEqual(try database.withConnection { try $0.queryFirst("SELECT COUNT(*) FROM t") { try $0.int64(0) } }, 0)
        XCTAssertFalse(try database.withConnection { $0.isInTransaction })
        // The database is still usable afterwards.
        try database.transaction { try $0.execute("INSERT INTO t VALUES (2)") }
        XCTAssertEqual(try database.withConnection { try $0.queryFirst("SELECT x FROM t") { try $0.int64(0) } }, 2)
    }

    func testNestedTransactionIsAnErrorNotADeadlock() throws {
        let fixture = try StoreFixture()
        let database = try fixture.openDatabase()
        try database.transaction { try $0.execute("CREATE TABLE t (x INTEGER)") }
        XCTAssertThrowsError(try database.transaction { connection in
            try connection.execute("INSERT INTO t VALUES (1)")
            // A read through the database on the same thread sees the open transaction...
            XCTAssertEqual(try database.withConnection { try $0.queryFirst("SELECT COUNT(*) FROM t") { try $0.int64(0) } }, 1)
            // ...and a nested transaction is refused.
            try database.transaction { try $0.execute("INSERT INTO t VALUES (2)") }
        }) { error in
            XCTAssertEqual((error as? SQLiteError)?.code, SQLITE_MISUSE)
        }
        XCTAssertEqual(try database.withConnection { try $0.queryFirst("SELECT COUNT(*) FROM t") { try $0.int64(0) } }, 0)
    }

    func testClosedDatabaseRefusesUse() throws {
        let fixture = try StoreFixture()
        let database = try fixture.openDatabase()
        database.close()
        database.close()
        XCTAssertThrowsError(try database.withConnection { try $0.execute("SELECT 1") }) { error in
            XCTAssertTrue("\(error)".contains("closed"), "\(error)")
        }
    }

    func testOpeningAnUnwritableLocationFailsWithThePath() throws {
        let fixture = try StoreFixture()
        let path = fixture.directory.file("missing-dir/state.sqlite").path
        XCTAssertThrowsError(try SQLiteDatabase(path: path)) { error in
            XCTAssertTrue("\(error)".contains(path), "\(error)")
        }
    }

    func testTwoConnectionsSeeEachOthersWrites() throws {
        let fixture = try StoreFixture()
        let first = try fixture.openDatabase()
        let second = try fixture.openDatabase()
        try first.transaction { try $0.execute("CREATE TABLE t (who TEXT)") }
        try second.transaction { try $0.execute("INSERT INTO t VALUES (?)", ["second"]) }
        try first.transaction { try $0.execute("INSERT INTO t VALUES (?)", ["first"]) }
        for database in [first, second] {
            let rows = try database.withConnection { try $0.query("SELECT who FROM t ORDER BY who") { try $0.string(0) } }
            XCTAssertEqual(rows, ["first", "second"])
        }
    }

    /// Holds a write transaction on one connection (another "process") for `hold` seconds on
    /// a background thread, and returns once it has the lock. `done` is signalled at commit.
    private func holdWriteLock(_ database: SQLiteDatabase, for hold: TimeInterval, done: DispatchSemaphore) {
        let started = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            do {
                try database.transaction { connection in
                    try connection.execute("INSERT INTO t VALUES (?)", ["holder"])
                    started.signal()
                    Thread.sleep(forTimeInterval: hold)
                }
            } catch {
                XCTFail("holder failed: \(error)")
                started.signal()
            }
            done.signal()
        }
        started.wait()
    }

    func testBusyBeginIsRetriedUntilTheOtherWriterCommits() throws {
        let fixture = try StoreFixture()
        let holder = try fixture.openDatabase()
        try holder.transaction { try $0.execute("CREATE TABLE t (who TEXT)") }
        // No busy handler at all: only BusyRetry around BEGIN IMMEDIATE can make this succeed.
        let waiter = try fixture.openDatabase(options: SQLiteOptions(busyTimeout: .zero, busyRetryLimit: .seconds(10)))
        let done = DispatchSemaphore(value: 0)
        holdWriteLock(holder, for: 0.4, done: done)

        let start = Date()
        try waiter.transaction { try $0.execute("INSERT INTO t VALUES (?)", ["waiter"]) }
        let waited = Date().timeIntervalSince(start)
        done.wait()

        XCTAssertGreaterThan(waited, 0.2, "the write must have waited for the holder's commit")
        let rows = try waiter.withConnection { try $0.query("SELECT who FROM t ORDER BY rowid") { try $0.string(0) } }
        XCTAssertEqual(rows, ["holder", "waiter"])
    }

    func testBusyHandlerWaitsForTheOtherWriter() throws {
        let fixture = try StoreFixture()
        let holder = try fixture.openDatabase()
        try holder.transaction { try $0.execute("CREATE TABLE t (who TEXT)") }
        let waiter = try fixture.openDatabase() // default: 5 s busy timeout
        let done = DispatchSemaphore(value: 0)
        holdWriteLock(holder, for: 0.3, done: done)
        try waiter.transaction { try $0.execute("INSERT INTO t VALUES (?)", ["waiter"]) }
        done.wait()
        XCTAssertEqual(try holder.withConnection { try $0.queryFirst("SELECT COUNT(*) FROM t") { try $0.int64(0) } }, 2)
    }

    func testBusyRetryIsBounded() throws {
        let fixture = try StoreFixture()
        let holder = try fixture.openDatabase()
        try holder.transaction { try $0.execute("CREATE TABLE t (who TEXT)") }
        let waiter = try fixture.openDatabase(options: SQLiteOptions(busyTimeout: .milliseconds(50), busyRetryLimit: .milliseconds(150)))
        let done = DispatchSemaphore(value: 0)
        holdWriteLock(holder, for: 1.5, done: done)
        let start = Date()
        XCTAssertThrowsError(try waiter.transaction { try $0.execute("INSERT INTO t VALUES (?)", ["waiter"]) }) { error in
            let error = error as? SQLiteError
            XCTAssertEqual(error?.isBusy, true)
            XCTAssertTrue(error?.message.contains("still busy") ?? false, "\(String(describing: error))")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 1.2, "gave up near the limit, not when the holder finished")
        done.wait()
        XCTAssertEqual(try waiter.withConnection { try $0.queryFirst("SELECT COUNT(*) FROM t") { try $0.int64(0) } }, 1)
    }
}
