/// One step of the schema's history. Versions are 1, 2, 3, ... with no gaps; a migration, once
/// released, is never edited (a database that already ran it would not run the new text), so
/// changes always come as a new migration.
public struct Migration: Sendable {
    public let version: Int
    /// What the step does, for logs and errors.
    public let summary: String
    public let apply: @Sendable (SQLiteConnection) throws -> Void

    public init(version: Int, summary: String, apply: @escaping @Sendable (SQLiteConnection) throws -> Void) {
        self.version = version
        self.summary = summary
        self.apply = apply
    }

    /// A migration that is a constant SQL script.
    public init(version: Int, summary: String, sql: String) {
        self.init(version: version, summary: summary) { try $0.executeScript(sql) }
    }
}

/// What `Migrator.migrate` did.
public struct MigrationReport: Sendable, Equatable {
    /// `user_version` before: 0 for a new database.
    public let fromVersion: Int
    /// `user_version` after: the newest version the code knows.
    public let toVersion: Int
    /// The versions this call applied (empty when the schema was already current, or when
    /// another process applied them first).
    public let applied: [Int]

    public init(fromVersion: Int, toVersion: Int, applied: [Int]) {
        self.fromVersion = fromVersion
        self.toVersion = toVersion
        self.applied = applied
    }
}
