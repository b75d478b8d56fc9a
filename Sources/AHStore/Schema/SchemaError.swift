/// Problems with a database's schema version, phrased for the operator who has to act.
public enum SchemaError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file was migrated by a newer `ah`; this one must not touch tables it does not know.
    case databaseTooNew(path: String, found: Int, supported: Int)
    /// The migration list itself is wrong (a programming error caught at open).
    case invalidMigrations(String)

    public var description: String {
        switch self {
        case let .databaseTooNew(path, found, supported):
            return "\(path) has schema version \(found), but this ah only knows versions up to \(supported); " +
                "it was written by a newer ah: upgrade ah (or restore a backup made by this version)"
        case let .invalidMigrations(reason):
            return "invalid migration list: \(reason)"
        }
    }
}
