/// Brings a database's schema up to date, using `PRAGMA user_version` as the applied version.
///
/// Each migration runs in its own `BEGIN IMMEDIATE` transaction together with the version
/// bump (`user_version` is stored in the file header and is transactional), so a crash leaves
/// the schema at a whole version. The version is re-read inside each transaction: when two
/// processes start at once, the second finds the step already applied and skips it.
public enum Migrator {
    @discardableResult
    public static func migrate(_ database: SQLiteDatabase, with migrations: [Migration]) throws -> MigrationReport {
        try validate(migrations)
        let latest = migrations.last?.version ?? 0
        let start = try database.withConnection { try $0.userVersion() }
        guard start <= latest else {
            throw SchemaError.databaseTooNew(path: database.path, found: start, supported: latest)
        }
        var applied: [Int] = []
        for migration in migrations where migration.version > start {
            let ran = try database.transaction { connection -> Bool in
                let current = try connection.userVersion()
                if current > latest {
                    throw SchemaError.databaseTooNew(path: database.path, found: current, supported: latest)
                }
                if current >= migration.version { return false } // another process got here first
                try migration.apply(connection)
                try connection.setUserVersion(migration.version)
                return true
            }
            if ran { applied.append(migration.version) }
        }
        return MigrationReport(fromVersion: start, toVersion: latest, applied: applied)
    }

    /// Versions must be exactly 1...n in order, so `user_version` maps to one prefix of the list.
    static func validate(_ migrations: [Migration]) throws {
        for (offset, migration) in migrations.enumerated() where migration.version != offset + 1 {
            throw SchemaError.invalidMigrations(
                "migration #\(offset + 1) (\(migration.summary)) has version \(migration.version); versions must be 1, 2, 3, ... in order")
        }
    }
}
