#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the stat cache compares: a file whose size, mtime, ctime and inode are unchanged
/// since it was hashed is not read again.
public struct FileStat: Sendable, Hashable {
    public var size: Int64
    public var mtimeNs: Int64
    public var ctimeNs: Int64
    public var inode: UInt64
    public var mode: UInt32

    public var isDirectory: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFDIR) }
    public var isRegular: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFREG) }
    public var isSymlink: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFLNK) }
    public var isExecutable: Bool { mode & 0o111 != 0 }

    init(_ info: stat) {
        size = Int64(info.st_size)
        #if canImport(Darwin)
        mtimeNs = Int64(info.st_mtimespec.tv_sec) * 1_000_000_000 + Int64(info.st_mtimespec.tv_nsec)
        ctimeNs = Int64(info.st_ctimespec.tv_sec) * 1_000_000_000 + Int64(info.st_ctimespec.tv_nsec)
        #else
        mtimeNs = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        ctimeNs = Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec)
        #endif
        inode = UInt64(info.st_ino)
        mode = UInt32(info.st_mode)
    }

    /// lstat (never follows a symlink); nil when the path does not exist.
    public static func lstatPath(_ path: String) throws -> FileStat? {
        var info = stat()
        if lstat(path, &info) != 0 {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw SyncError.io("cannot stat \(path)", errno)
        }
        return FileStat(info)
    }

    public static func fstatDescriptor(_ fd: Int32, path: String) throws -> FileStat {
        var info = stat()
        if fstat(fd, &info) != 0 { throw SyncError.io("cannot stat \(path)", errno) }
        return FileStat(info)
    }

    /// Same file, same content as far as the stat cache can tell.
    func unchanged(from other: FileStat) -> Bool {
        size == other.size && mtimeNs == other.mtimeNs && ctimeNs == other.ctimeNs && inode == other.inode
            && isExecutable == other.isExecutable
    }

    static func nowNs() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }
}

/// A failure of the file side, as a sentence naming the path and the cause.
public struct SyncError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: String
    public var description: String

    public init(code: String, _ description: String) {
        self.code = code
        self.description = description
    }

    static func io(_ what: String, _ number: Int32) -> SyncError {
        SyncError(code: "io", "\(what): \(String(cString: strerror(number)))")
    }

    public static func refused(_ text: String) -> SyncError { SyncError(code: "refused", text) }

    /// Any error as a SyncError (most already are).
    public static func wrap(_ error: any Error) -> SyncError {
        (error as? SyncError) ?? SyncError(code: "io", "\(error)")
    }
}
