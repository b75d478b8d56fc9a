#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Flushing a batch of written files at once. Linux's syncfs(2) is a GNU extension that
/// Swift's Glibc module does not import; it is looked up at run time (no C target needed).
enum Durability {
    private typealias SyncFS = @convention(c) (Int32) -> Int32

    #if os(Linux)
    private static let syncfsFunction: SyncFS? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "syncfs") else { return nil }
        return unsafeBitCast(symbol, to: SyncFS.self)
    }()
    #endif

    /// Flushes the file system holding `fd`; non-zero when that is not possible (then the
    /// caller fsyncs each file).
    static func syncFileSystem(_ fd: Int32) -> Int32 {
        #if os(Linux)
        guard let syncfsFunction else { return -1 }
        return syncfsFunction(fd)
        #else
        return -1
        #endif
    }
}
