import Foundation

/// The state file's tables as synchronous operations on one `SQLiteDatabase`.
///
/// Every call blocks its thread (disk I/O, and up to the busy timeout while another process
/// holds the write lock), so this type is internal: `StateStore` runs it only on its own
/// worker thread, never on the Swift cooperative pool. Tests reach it with `@testable`.
///
/// Every write is one `BEGIN IMMEDIATE` transaction, which takes SQLite's single write lock
/// up front: a check-then-update inside it (token uses, name ownership) cannot interleave
/// with another connection's, even from another process.
struct StateTables: Sendable {
    let database: SQLiteDatabase

    /// Uses an already opened and migrated database (see `StateDatabase.open`).
    init(database: SQLiteDatabase) {
        self.database = database
    }

    /// Opens (and migrates) the state file at `path`.
    init(path: String, options: SQLiteOptions = SQLiteOptions()) throws {
        self.init(database: try StateDatabase.open(path: path, options: options))
    }

    /// Changes when another connection (another process, e.g. `ah executors revoke`) has
    /// committed to the state file; never for this connection's own commits. Lets a watcher
    /// skip re-reading tables that nobody else touched.
    func externalChangeCounter() throws -> Int64 {
        try database.withConnection { try $0.dataVersion() }
    }
}
