import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// While the leader service runs, inotify (Linux) marks the directories in which anything
/// changed, so the next scan lists only those and takes the rest from the last scan: a fence
/// after one edit does not walk the tree. Correctness never depends on it: until the first
/// full scan, after a queue overflow (`IN_Q_OVERFLOW`), a moved directory, or when a watch
/// cannot be added (the `max_user_watches` limit), `take()` answers nil and the scanner walks
/// everything. Elsewhere than Linux it always answers nil.
public final class DirtyWatcher: @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock`.
    private var paths: [Int32: String] = [:]
    private var dirty: Set<String> = []
    /// Directories created or moved in since the last scan: their whole subtree is listed
    /// (paths under them may have existed before with other contents).
    private var fresh: Set<String> = []
    private var needsFullScan = true
    private var broken = false
    private let fd: Int32
    private let root: String

    /// nil when inotify is not available.
    public init?(root: String) {
        #if os(Linux)
        // Non-blocking, read only in `take()`: the kernel queues an event before the system
        // call that caused it returns, so draining the queue at the start of a scan sees every
        // change made before it (no reader thread that could lag behind).
        let fd = inotify_init1(Int32(IN_CLOEXEC) | Int32(IN_NONBLOCK))
        guard fd >= 0 else { return nil }
        self.fd = fd
        self.root = root
        #else
        return nil
        #endif
    }

    /// The directories changed since the last call, or nil when the whole tree must be walked.
    /// Either way the slate is clean afterwards (changes from now on count for the next call).
    public func take() -> Changes? {
        lock.withLock {
            #if os(Linux)
            drain()
            #endif
            defer {
                dirty = []
                fresh = []
                needsFullScan = false
            }
            return needsFullScan || broken ? nil : Changes(dirty: dirty, fresh: fresh)
        }
    }

    public struct Changes: Sendable {
        /// Directories something changed in.
        public var dirty: Set<String>
        /// Directories created or moved in: list everything below them.
        public var fresh: Set<String>

        /// Whether `directory` must be listed from disk.
        public func mustList(_ directory: String) -> Bool {
            if dirty.contains(directory) { return true }
            guard !fresh.isEmpty else { return false }
            var path: String? = directory
            while let current = path {
                if fresh.contains(current) { return true }
                path = SyncPath.parent(current)
            }
            return false
        }
    }

    /// Watches a directory (relative path, "" for the root). Call before listing it, so no
    /// change after the listing goes unseen.
    public func watch(_ directory: String) {
        #if os(Linux)
        let mask = UInt32(IN_CREATE | IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO
                           | IN_MOVE_SELF | IN_DONT_FOLLOW | IN_ONLYDIR)
        let full = directory.isEmpty ? root : root + "/" + directory
        let wd = inotify_add_watch(fd, full, mask)
        lock.withLock {
            if wd < 0 {
                // Out of watches (or the directory just vanished): fall back to full scans.
                if errno != ENOENT { broken = true }
                return
            }
            paths[wd] = directory
        }
        #endif
    }

    deinit {
        #if os(Linux)
        close(fd)
        #endif
    }

    /// Marks everything for a full walk (e.g. after the scanner itself failed).
    public func invalidate() { lock.withLock { needsFullScan = true } }

    #if os(Linux)
    /// Reads every queued event (with `lock` held).
    private func drain() {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        let header = MemoryLayout<inotify_event>.size
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                if errno != EAGAIN && errno != EWOULDBLOCK { broken = true }
                return
            }
            if count == 0 { return }
            var offset = 0
            while offset + header <= count {
                let (wd, mask, length) = buffer.withUnsafeBytes { raw -> (Int32, UInt32, Int) in
                    let event = raw.loadUnaligned(fromByteOffset: offset, as: inotify_event.self)
                    return (event.wd, event.mask, Int(event.len))
                }
                let nameBytes = buffer[(offset + header)..<min(count, offset + header + length)].prefix { $0 != 0 }
                offset += header + length
                if mask & UInt32(IN_Q_OVERFLOW) != 0 || wd < 0 {
                    needsFullScan = true
                    continue
                }
                guard let path = paths[wd] else { continue }
                if mask & UInt32(IN_IGNORED) != 0 {
                    paths[wd] = nil
                    continue
                }
                if mask & UInt32(IN_MOVE_SELF) != 0 {
                    // The directory's path changed: the mapping is stale until a full walk re-adds it.
                    needsFullScan = true
                    continue
                }
                dirty.insert(path)
                if mask & UInt32(IN_ISDIR) != 0, mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0,
                   let name = String(validating: nameBytes, as: UTF8.self) {
                    fresh.insert(SyncPath.join(path, name))
                }
            }
        }
    }
    #endif
}
