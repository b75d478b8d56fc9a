import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The receiver's side of a sync: it makes its root match the sender's tree, one operation
/// at a time, and keeps a manifest of what is there (from a stat-cache scan, then updated
/// with every write), so the sender learns its root hash without a second walk.
///
/// Safety: every path is checked (`SyncPath`), every parent directory on the way is a real
/// directory under the root (never a symlink: nothing is written through one), symlinks
/// whose target leaves the root are refused, names that collide case-insensitively are
/// refused when the options say the file system folds case. A file is written to a
/// temporary name in its own directory, checked against its size and SHA-256, made
/// durable, then renamed into place: a reader never sees half a file.
public final class TreeWriter: @unchecked Sendable {
    public struct Options: Sendable, Equatable {
        /// The follower's file system folds case (macOS, Windows): refuse colliding names.
        public var caseInsensitive = false
        /// Check names against Windows' rules (a Windows follower).
        public var windowsNames = false
        /// The largest file accepted.
        public var maximumFileSize: Int64 = 1 << 40
        /// Written files are made durable in batches of this many (one syncfs each on Linux).
        public var batchFiles = 1024
        public var batchBytes: Int64 = 64 << 20

        public init(caseInsensitive: Bool = false, windowsNames: Bool = false) {
            self.caseInsensitive = caseInsensitive
            self.windowsNames = windowsNames
        }
    }

    public let root: String
    public var options: Options
    public let scanner: TreeScanner
    /// What is in the tree now, by path.
    public private(set) var entries: [String: ManifestEntry] = [:]
    private var folded: [String: String] = [:]
    private var verifiedDirectories: Set<String> = []

    private struct OpenFile {
        var entry: ManifestEntry
        var fd: Int32
        var temporary: String
        var hasher: SHA256
        var written: Int64
    }
    private var current: OpenFile?
    private struct Written {
        var entry: ManifestEntry
        var temporary: String
        var fd: Int32
    }
    private var pending: [Written] = []
    private var pendingBytes: Int64 = 0

    /// Creates the root (and its parents) when it does not exist.
    public init(root: String, options: Options) throws {
        self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
        self.options = options
        scanner = TreeScanner(root: self.root, ignores: IgnoreMatcher(patterns: []))
        // The receiver stays up between fences: inotify spares it walking an unchanged tree
        // (its own writes and any edit behind the leader's back mark their directories).
        scanner.watcher = DirtyWatcher(root: self.root)
        do {
            try FileManager.default.createDirectory(atPath: self.root, withIntermediateDirectories: true)
        } catch {
            throw SyncError(code: "io", "cannot create the workspace \(self.root): \((error as NSError).localizedDescription)")
        }
        guard let info = try FileStat.lstatPath(self.root), info.isDirectory else {
            throw SyncError.refused("the workspace \(self.root) is not a directory")
        }
    }

    /// Walks the tree (the stat cache spares unchanged files a read), deletes temporaries a
    /// broken sync left behind, and takes what it found as the current state.
    public func scan(ignores: IgnoreMatcher) throws -> Manifest {
        try abandonOpenFile()
        scanner.ignores = ignores
        let result = try scanner.scan(removeTemporaries: true)
        // Unchanged since the last scan and nothing written since: the tables are current.
        if let known = currentManifest, known.rootHash == result.manifest.rootHash { return known }
        entries = result.manifest.byPath()
        folded = [:]
        if options.caseInsensitive { for path in entries.keys { folded[path.lowercased()] = path } }
        verifiedDirectories = []
        currentManifest = result.manifest
        baseManifest = result.manifest
        touched = []
        return result.manifest
    }

    /// `entries` as a manifest, while nothing was written since it was made.
    private var currentManifest: Manifest?
    /// The last manifest made, and the paths written or removed since: the next manifest is
    /// that one patched (a fence that wrote one file does not sort 50,000 entries again).
    private var baseManifest: Manifest?
    private var touched: Set<String> = []

    public var manifest: Manifest {
        if let currentManifest { return currentManifest }
        let made: Manifest
        if let baseManifest, touched.count < baseManifest.count / 4 {
            made = baseManifest.replacing(paths: Array(touched), with: touched.compactMap { entries[$0] })
        } else {
            made = Manifest(entries: Array(entries.values))
        }
        currentManifest = made
        baseManifest = made
        touched = []
        scanner.adopt(made)
        return made
    }

    // MARK: operations

    public func apply(_ operation: SyncOperation) throws {
        switch operation {
        case .remove(let path):
            try check(path)
            try flush()
            try ensureParents(path)
            try removeTree(path)
        case .mkdir(let path):
            try check(path)
            try checkNewName(path)
            try ensureParents(path)
            let full = fullPath(path)
            if let info = try FileStat.lstatPath(full), !info.isDirectory { try flush(); try removeTree(path) }
            if mkdir(full, 0o755) != 0 && errno != EEXIST { throw SyncError.io("cannot create the directory \(path)", errno) }
            chmod(full, 0o755)
            record(.directory(path), stat: nil)
        case .symlink(let entry):
            try check(entry.path)
            guard SyncPath.symlinkStaysInside(path: entry.path, target: entry.target) else {
                throw SyncError.refused("the symlink \(entry.path) -> \(entry.target) points outside the workspace; refused")
            }
            try checkNewName(entry.path)
            try ensureParents(entry.path)
            let full = fullPath(entry.path)
            if let info = try FileStat.lstatPath(full), info.isDirectory { try flush(); try removeTree(entry.path) }
            let temporary = temporaryPath(for: entry.path)
            if symlink(entry.target, temporary) != 0 { throw SyncError.io("cannot create the symlink \(entry.path)", errno) }
            if rename(temporary, full) != 0 {
                let number = errno
                unlink(temporary)
                throw SyncError.io("cannot put the symlink \(entry.path) in place", number)
            }
            record(entry, stat: nil)
        case .chmod(let path, let executable):
            try check(path)
            try ensureParents(path)
            let full = fullPath(path)
            guard let info = try FileStat.lstatPath(full), info.isRegular, var entry = entries[path] else {
                throw SyncError(code: "missing", "\(path) is not a file on the follower (cannot change its mode)")
            }
            if chmod(full, executable ? 0o755 : 0o644) != 0 { throw SyncError.io("cannot change the mode of \(path)", errno) }
            entry.executable = executable
            record(entry, stat: try FileStat.lstatPath(full))
        case .file(let entry):
            throw SyncError(code: "bad-request", "\(entry.path): a file's content must come with it (beginFile)")
        }
    }

    /// Starts a file: its bytes follow with `writeFileData`, then `finishFile`.
    public func beginFile(_ entry: ManifestEntry) throws {
        try abandonOpenFile()
        try check(entry.path)
        guard entry.kind == .file, Hex.isSHA256(entry.sha256), entry.size >= 0 else {
            throw SyncError(code: "bad-request", "\(entry.path): a file needs a size and a SHA-256")
        }
        guard entry.size <= options.maximumFileSize else {
            throw SyncError.refused("\(entry.path) is \(entry.size) bytes, more than the limit of \(options.maximumFileSize)")
        }
        try checkNewName(entry.path)
        try ensureParents(entry.path)
        let temporary = temporaryPath(for: entry.path)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if fd < 0 { throw SyncError.io("cannot create a temporary for \(entry.path)", errno) }
        current = OpenFile(entry: entry, fd: fd, temporary: temporary, hasher: SHA256(), written: 0)
    }

    public func writeFileData(_ bytes: ArraySlice<UInt8>) throws {
        guard var file = current else { throw SyncError(code: "bad-request", "file data came with no file begun") }
        guard file.written + Int64(bytes.count) <= file.entry.size else {
            try abandonOpenFile()
            throw SyncError(code: "bad-request", "more data for \(file.entry.path) than its \(file.entry.size) bytes")
        }
        bytes.withUnsafeBytes { file.hasher.update(bufferPointer: $0) }
        do {
            try Self.writeAll(file.fd, bytes, path: file.entry.path)
        } catch {
            try? abandonOpenFile()
            throw error
        }
        file.written += Int64(bytes.count)
        current = file
    }

    /// Whether the open file has all its bytes.
    public var openFileComplete: Bool { current.map { $0.written == $0.entry.size } ?? false }
    public var openFileRemaining: Int64 { current.map { $0.entry.size - $0.written } ?? 0 }

    /// Verifies the open file and queues it to be made durable and renamed into place.
    public func finishFile() throws {
        guard let file = current else { throw SyncError(code: "bad-request", "no file is being written") }
        current = nil
        let digest = Hex.string(file.hasher.finalize())
        guard file.written == file.entry.size, digest == file.entry.sha256 else {
            close(file.fd)
            unlink(file.temporary)
            throw SyncError(code: "corrupt", "\(file.entry.path) arrived as \(file.written) bytes with SHA-256 \(digest), "
                                + "not the announced \(file.entry.size) bytes with \(file.entry.sha256)")
        }
        fchmod(file.fd, file.entry.executable ? 0o755 : 0o644)
        pending.append(Written(entry: file.entry, temporary: file.temporary, fd: file.fd))
        pendingBytes += file.entry.size
        if pending.count >= options.batchFiles || pendingBytes >= options.batchBytes { try flush() }
    }

    /// Makes the queued files durable (one syncfs for the batch on Linux, fsync each
    /// elsewhere) and renames each into place.
    public func flush() throws {
        guard !pending.isEmpty else { return }
        let batch = pending
        pending = []
        pendingBytes = 0
        #if os(Linux)
        if Durability.syncFileSystem(batch[0].fd) != 0 { for file in batch { fsync(file.fd) } }
        #else
        for file in batch { fsync(file.fd) }
        #endif
        var failure: SyncError?
        for file in batch {
            close(file.fd)
            guard failure == nil else { unlink(file.temporary); continue }
            let full = fullPath(file.entry.path)
            do {
                if let info = try FileStat.lstatPath(full), info.isDirectory { try removeTree(file.entry.path) }
                if rename(file.temporary, full) != 0 { throw SyncError.io("cannot move \(file.entry.path) into place", errno) }
                record(file.entry, stat: try FileStat.lstatPath(full))
            } catch {
                unlink(file.temporary)
                failure = SyncError.wrap(error)
            }
        }
        if let failure { throw failure }
    }

    /// Drops a half-written file (a sync that broke off).
    public func abandonOpenFile() throws {
        if let file = current {
            close(file.fd)
            unlink(file.temporary)
            current = nil
        }
    }

    /// Drops everything not yet in place (a sync that broke off or failed).
    public func abandon() {
        try? abandonOpenFile()
        for file in pending {
            close(file.fd)
            unlink(file.temporary)
        }
        pending = []
        pendingBytes = 0
    }

    // MARK: checks

    func fullPath(_ path: String) -> String { root + "/" + path }

    private func temporaryPath(for path: String) -> String {
        let directory = SyncPath.parent(path).map { root + "/" + $0 } ?? root
        return directory + "/" + TreeScanner.temporaryPrefix + UUID().uuidString.prefix(12)
    }

    private func check(_ path: String) throws {
        if let problem = SyncPath.problem(path) { throw SyncError(code: "bad-path", problem) }
        if SyncPath.name(path).hasPrefix(TreeScanner.temporaryPrefix) {
            throw SyncError(code: "bad-path", "'\(path)' uses the receiver's temporary prefix")
        }
        if options.windowsNames, let problem = NameRules.windowsProblem(path) { throw SyncError.refused(problem) }
    }

    private func checkNewName(_ path: String) throws {
        guard options.caseInsensitive else { return }
        let key = path.lowercased()
        if let other = folded[key], other != path, entries[other] != nil {
            throw SyncError(code: "case-collision", "'\(other)' and '\(path)' are the same name on this follower's case-insensitive file system")
        }
    }

    /// Every directory from the root down to `path`'s parent is a real directory (lstat:
    /// not a symlink), so nothing below is reached through a link.
    private func ensureParents(_ path: String) throws {
        guard let parent = SyncPath.parent(path) else { return }
        if verifiedDirectories.contains(parent) { return }
        var walked = ""
        for component in parent.split(separator: "/") {
            walked = SyncPath.join(walked, String(component))
            if verifiedDirectories.contains(walked) { continue }
            guard let info = try FileStat.lstatPath(fullPath(walked)) else {
                throw SyncError(code: "missing", "the directory \(walked) (for \(path)) is missing on the follower")
            }
            guard info.isDirectory else {
                throw SyncError.refused("\(walked) is not a directory on the follower (a \(info.isSymlink ? "symlink" : "file")); "
                                        + "refusing to write \(path) through it")
            }
            verifiedDirectories.insert(walked)
        }
    }

    /// Removes a path and everything under it without following symlinks.
    private func removeTree(_ path: String) throws {
        let full = fullPath(path)
        guard let info = try FileStat.lstatPath(full) else {
            forget(path)
            return
        }
        if info.isDirectory {
            let children = (try? FileManager.default.contentsOfDirectory(atPath: full)) ?? []
            for child in children { try removeTree(path + "/" + child) }
            if rmdir(full) != 0 && errno != ENOENT { throw SyncError.io("cannot remove the directory \(path)", errno) }
        } else if unlink(full) != 0 && errno != ENOENT {
            throw SyncError.io("cannot remove \(path)", errno)
        }
        forget(path)
    }

    private func forget(_ path: String) {
        currentManifest = nil
        touched.insert(path)
        let prefix = path + "/"
        if entries.removeValue(forKey: path)?.kind == .directory || verifiedDirectories.contains(path) {
            for key in entries.keys where key.hasPrefix(prefix) {
                entries[key] = nil
                touched.insert(key)
            }
            for key in scanner.cache.keys where key.hasPrefix(prefix) { scanner.cache[key] = nil }
            verifiedDirectories = verifiedDirectories.filter { $0 != path && !$0.hasPrefix(prefix) }
        }
        scanner.cache[path] = nil
        if options.caseInsensitive { folded[path.lowercased()] = nil }
    }

    /// The receiver wrote `entry`: it is what is there now. A file written here is trusted
    /// by the stat cache at once (its content was verified against its hash as it was written).
    private func record(_ entry: ManifestEntry, stat: FileStat?) {
        currentManifest = nil
        touched.insert(entry.path)
        entries[entry.path] = entry
        if options.caseInsensitive { folded[entry.path.lowercased()] = entry.path }
        if entry.kind == .directory { verifiedDirectories.insert(entry.path) }
        if let stat, entry.kind == .file {
            scanner.cache[entry.path] = StatRecord(stat: stat, entry: entry, trusted: true)
        } else {
            scanner.cache[entry.path] = nil
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>, path: String) throws {
        var failure: Int32 = 0
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let count = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if count < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                offset += count
            }
        }
        if failure != 0 { throw SyncError.io("cannot write \(path)", failure) }
    }
}
