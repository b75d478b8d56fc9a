/// Opens the access point's state file and brings its schema up to date; every store
/// (see `StateStore`) shares the returned database.
public enum StateDatabase {
    public static func open(path: String, options: SQLiteOptions = SQLiteOptions()) throws -> SQLiteDatabase {
        let database = try SQLiteDatabase(path: path, options: options)
        do {
            try Migrator.migrate(database, with: StateSchema.migrations)
        } catch {
            database.close()
            throw error
        }
        return database
    }
}
