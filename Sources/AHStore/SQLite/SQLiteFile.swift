#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CSQLite

/// Creates the database file with restrictive permissions before SQLite opens it.
///
/// SQLite creates new files with 0644 (less the umask). The state file holds token hashes and
/// the executor registry, so it is created here with `O_EXCL` and the requested mode (0600),
/// then SQLite opens the existing empty file and derives the `-wal`/`-shm` modes from it.
enum SQLiteFile {
    static func createIfMissing(_ path: String, mode: UInt16) throws {
        // In-memory and URI names are not files we should create.
        if path.isEmpty || path == ":memory:" || path.hasPrefix("file:") { return }
        let fd = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, mode_t(mode))
        if fd < 0 {
            if errno == EEXIST { return } // an existing file (or one a concurrent process just made)
            throw SQLiteError(code: SQLITE_CANTOPEN,
                              message: "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        // The umask can only remove bits; fchmod makes the mode exactly what was asked for.
        guard fchmod(fd, mode_t(mode)) == 0 else {
            throw SQLiteError(code: SQLITE_CANTOPEN,
                              message: "cannot set mode of \(path): \(String(cString: strerror(errno)))")
        }
    }
}
