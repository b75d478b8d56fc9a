import Foundation

/// `IdentityStore` on the local SQLite state file.
///
/// Every write is one `BEGIN IMMEDIATE` transaction, which takes SQLite's single write lock
/// up front: a check-then-update inside it (token uses, name ownership) cannot interleave
/// with another connection's, even from another process. The methods are synchronous; they
/// also satisfy the protocol's `async` requirements.
public struct SQLiteIdentityStore: IdentityStore {
    public let database: SQLiteDatabase

    /// Uses an already opened and migrated database (see `StateDatabase.open`).
    public init(database: SQLiteDatabase) {
        self.database = database
    }

    /// Changes when another process has written the state file (e.g. `ah executors revoke`):
    /// lets a watcher skip re-reading tables that nobody else touched.
    public func externalChangeCounter() throws -> Int64 {
        try database.withConnection { try $0.dataVersion() }
    }

    /// Opens (and migrates) the state file at `path`.
    public init(path: String, options: SQLiteOptions = SQLiteOptions()) throws {
        self.init(database: try StateDatabase.open(path: path, options: options))
    }
}
