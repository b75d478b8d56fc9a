import Crypto
import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One stat-cache record: the stat a file had when its entry was computed.
public struct StatRecord: Sendable, Equatable {
    public var stat: FileStat
    public var entry: ManifestEntry
    /// False when the file changed so recently that a change within the same timestamp tick
    /// could go unnoticed (git's "racily clean"): such a file is hashed again next time.
    public var trusted: Bool
}

/// What a scan found.
public struct ScanResult: Sendable {
    public var manifest: Manifest
    /// Files read and hashed this time (the rest came from the stat cache).
    public var hashedFiles: Int
    public var hashedBytes: Int64
    /// Names that cannot be synced (not UTF-8, special files), as sentences; they are skipped.
    public var skipped: [String]
}

/// Walks a tree (never following symlinks), applies the ignores, and hashes what the stat
/// cache cannot vouch for — in parallel on all cores. With a `ContentStore`, every hashed
/// file's content is put into the store in the same read.
public final class TreeScanner: @unchecked Sendable {
    public let root: String
    public var ignores: IgnoreMatcher {
        // Other ignores change what every directory holds: the next scan walks everything.
        didSet { if ignores != oldValue { children = [:] } }
    }
    let store: ContentStore?
    /// Path → record from the last scan (or from what the receiver wrote).
    public var cache: [String: StatRecord] = [:]
    /// Files changed within this margin of the scan are hashed again next time.
    public var racyMarginNs: Int64 = 1_000_000_000
    /// Marks changed directories between scans (the leader's workspace); nil: walk everything.
    public var watcher: DirtyWatcher?
    /// The last scan's entries by directory ("" is the root): what an incremental scan takes
    /// for the directories the watcher saw no change in.
    private var children: [String: [ManifestEntry]] = [:]
    /// Directories holding a file that was not trusted (racily clean): listed again next time.
    private var untrustedDirectories: Set<String> = []
    /// The last scan's manifest: the answer when the watcher saw no change at all.
    private var lastManifest: Manifest?
    /// The receiver's temporary files (`TreeWriter`): never part of a tree.
    public static let temporaryPrefix = ".ah-sync-tmp-"

    public init(root: String, ignores: IgnoreMatcher, store: ContentStore? = nil) {
        self.root = root
        self.ignores = ignores
        self.store = store
    }

    struct Pending {
        var path: String
        var stat: FileStat
    }

    public func scan(removeTemporaries: Bool = false) throws -> ScanResult {
        do {
            return try walk(removeTemporaries: removeTemporaries)
        } catch {
            watcher?.invalidate()
            children = [:]
            lastManifest = nil
            throw error
        }
    }

    private func walk(removeTemporaries: Bool) throws -> ScanResult {
        let started = FileStat.nowNs()
        let changes: DirtyWatcher.Changes? = children.isEmpty ? nil : watcher?.take()
        if children.isEmpty { _ = watcher?.take() }
        if let changes, changes.dirty.isEmpty, changes.fresh.isEmpty, untrustedDirectories.isEmpty, let lastManifest {
            return ScanResult(manifest: lastManifest, hashedFiles: 0, hashedBytes: 0, skipped: [])
        }
        // Incremental: the watcher vouches for every directory it saw no change in, and the
        // last manifest is there to patch: only the changed directories' entries are touched
        // (no table of every path rebuilt, no sort of every entry — what a fence after one
        // edit used to spend its time on).
        let base = changes == nil ? nil : lastManifest
        var entries: [ManifestEntry] = []
        var records: [String: StatRecord] = [:]
        var pending: [Pending] = []
        var skipped: [String] = []
        var stack: [String] = [""]
        var listed: [String: [ManifestEntry]] = [:]
        var reused: Set<String> = []
        var untrusted: Set<String> = []
        directories: while let directory = stack.popLast() {
            // Unchanged since the last scan (the watcher says so): take its entries as they were.
            if let changes, !changes.mustList(directory), !untrustedDirectories.contains(directory), let known = children[directory] {
                if base != nil {
                    // Its files were all trusted (else it would be in `untrustedDirectories`).
                    reused.insert(directory)
                    // By index: `for entry in known` copied every entry (a retain and a
                    // release of its strings each) to read one field, 50,000 times a fence.
                    for index in known.indices where known[index].kind == .directory { stack.append(known[index].path) }
                    continue directories
                }
                var reusable: [StatRecord] = []
                for entry in known where entry.kind == .file {
                    guard let record = cache[entry.path], record.trusted else { reusable = []; break }
                    reusable.append(record)
                }
                if reusable.count == known.filter({ $0.kind == .file }).count {
                    for record in reusable { records[record.entry.path] = record }
                    for entry in known {
                        entries.append(entry)
                        if entry.kind == .directory { stack.append(entry.path) }
                    }
                    listed[directory] = known
                    continue directories
                }
            }
            watcher?.watch(directory)
            var mine: [ManifestEntry] = []
            defer { listed[directory, default: []] += mine }
            let full = directory.isEmpty ? root : root + "/" + directory
            guard let handle = opendir(full) else {
                if directory.isEmpty { throw SyncError.io("cannot read the directory \(root)", errno) }
                skipped.append("cannot read the directory \(directory): \(String(cString: strerror(errno)))")
                continue
            }
            defer { closedir(handle) }
            while let item = readdir(handle) {
                let name: String? = withUnsafePointer(to: item.pointee.d_name) { pointer in
                    pointer.withMemoryRebound(to: CChar.self, capacity: 256) { String(validatingCString: $0) }
                }
                guard let name else {
                    skipped.append("a name in \(directory.isEmpty ? "." : directory) is not valid UTF-8")
                    continue
                }
                if name == "." || name == ".." { continue }
                let path = SyncPath.join(directory, name)
                let fullPath = full + "/" + name
                if name.hasPrefix(Self.temporaryPrefix) {
                    if removeTemporaries { unlink(fullPath) }
                    continue
                }
                guard let info = try FileStat.lstatPath(fullPath) else { continue }
                if info.isDirectory {
                    if ignores.isIgnored(path, isDirectory: true) { continue }
                    entries.append(.directory(path))
                    mine.append(.directory(path))
                    stack.append(path)
                } else if info.isRegular {
                    if ignores.isIgnored(path, isDirectory: false) { continue }
                    if let cached = cache[path], cached.trusted, cached.entry.kind == .file, cached.stat.unchanged(from: info) {
                        entries.append(cached.entry)
                        mine.append(cached.entry)
                        records[path] = cached
                    } else {
                        pending.append(Pending(path: path, stat: info))
                    }
                } else if info.isSymlink {
                    if ignores.isIgnored(path, isDirectory: false) { continue }
                    guard let target = Self.readLink(fullPath) else {
                        skipped.append("the symlink \(path) has a target that is not valid UTF-8")
                        continue
                    }
                    entries.append(.symlink(path, target: target))
                    mine.append(.symlink(path, target: target))
                } else {
                    if ignores.isIgnored(path, isDirectory: false) { continue }
                    skipped.append("\(path) is not a regular file, directory or symlink")
                }
            }
        }
        let hashed = try hash(pending, scanStarted: started)
        var hashedBytes: Int64 = 0
        for record in hashed {
            entries.append(record.entry)
            records[record.entry.path] = record
            hashedBytes += record.entry.size
            let parent = SyncPath.parent(record.entry.path) ?? ""
            listed[parent, default: []].append(record.entry)
            if !record.trusted { untrusted.insert(parent) }
        }
        let manifest: Manifest
        if let base {
            // Directories listed again or gone: their last entries no longer stand.
            for directory in Set(children.keys).subtracting(reused) {
                for entry in children[directory] ?? [] where entry.kind == .file { cache[entry.path] = nil }
                children[directory] = nil
            }
            for (path, record) in records { cache[path] = record }
            for (directory, list) in listed { children[directory] = list }
            // The base's directories (a receiver's base also has those it created since its
            // last scan) that were not taken as they were: listed again, or gone.
            var dropped: Set<String> = reused.contains("") ? [] : [""]
            let baseEntries = base.entries
            for index in baseEntries.indices where baseEntries[index].kind == .directory && !reused.contains(baseEntries[index].path) {
                dropped.insert(baseEntries[index].path)
            }
            manifest = base.replacing(childrenOf: dropped, with: entries)
        } else {
            cache = records
            children = listed
            manifest = Manifest(entries: entries)
        }
        untrustedDirectories = untrusted
        lastManifest = skipped.isEmpty ? manifest : nil
        return ScanResult(manifest: manifest, hashedFiles: hashed.count, hashedBytes: hashedBytes, skipped: skipped)
    }

    /// Takes `manifest` as what the last scan found: a receiver that applied a sync hands
    /// over the manifest it kept up to date with every write, so its next scan patches that
    /// one (the directories it wrote into are marked by the watcher and listed again).
    /// Ignored unless the last scan left a manifest to patch (no incremental state, no skips).
    public func adopt(_ manifest: Manifest) {
        guard lastManifest != nil, !children.isEmpty else { return }
        lastManifest = manifest
    }

    static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4097)
        let count = readlink(path, &buffer, 4096)
        guard count >= 0 else { return nil }
        return String(validating: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Hashes the files in parallel (one worker per core, files handed out in order).
    private func hash(_ files: [Pending], scanStarted: Int64) throws -> [StatRecord] {
        if files.isEmpty { return [] }
        let results = ResultBox(count: files.count)
        let workers = min(files.count, max(1, ProcessInfo.processInfo.activeProcessorCount))
        let root = self.root
        let store = self.store
        let margin = racyMarginNs
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while let index = results.claim() {
                let file = files[index]
                do {
                    let hashed = try FileHasher.hash(path: root + "/" + file.path, expected: file.stat, store: store)
                    let trusted = hashed.stat.mtimeNs < scanStarted - margin
                        && hashed.stat.ctimeNs < scanStarted - margin
                    let entry = ManifestEntry.file(file.path, size: hashed.stat.size, sha256: hashed.sha256,
                                                   executable: hashed.stat.isExecutable)
                    results.set(index, .success(StatRecord(stat: hashed.stat, entry: entry, trusted: trusted)))
                } catch {
                    results.set(index, .failure(SyncError.wrap(error)))
                }
            }
        }
        var records: [StatRecord] = []
        records.reserveCapacity(files.count)
        for result in results.take() {
            switch result {
            case .success(let record): records.append(record)
            case .failure(let error) where error.code == "vanished": continue
            case .failure(let error): throw error
            }
        }
        return records
    }
}

/// Results of the parallel hash, one slot per file.
private final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    private var slots: [Result<StatRecord, SyncError>?]

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func claim() -> Int? {
        lock.withLock {
            guard next < slots.count else { return nil }
            defer { next += 1 }
            return next
        }
    }

    func set(_ index: Int, _ result: Result<StatRecord, SyncError>) { lock.withLock { slots[index] = result } }

    func take() -> [Result<StatRecord, SyncError>] { lock.withLock { slots.compactMap { $0 } } }
}

/// Reads a file once: SHA-256, size, and (with a store) its content into the store.
public enum FileHasher {
    public struct Hashed: Sendable {
        public var sha256: String
        public var stat: FileStat
    }

    static let chunk = 1 << 20
    /// Files up to this size are read into memory once (hash, then store); larger ones are
    /// streamed into a store temporary while hashing.
    static let inMemoryLimit: Int64 = 8 << 20

    /// A file that changes while it is read is read again (up to 3 times), so the hash
    /// always belongs to one version of it.
    public static func hash(path: String, expected: FileStat?, store: ContentStore?) throws -> Hashed {
        var attempts = 0
        while true {
            attempts += 1
            let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            if fd < 0 {
                if errno == ENOENT { throw SyncError(code: "vanished", "\(path) vanished while the tree was scanned") }
                throw SyncError.io("cannot open \(path)", errno)
            }
            defer { close(fd) }
            let before = try FileStat.fstatDescriptor(fd, path: path)
            let sha: String
            let hashedSize: Int64
            if before.size <= inMemoryLimit {
                var bytes = [UInt8]()
                try readAll(fd, path: path, into: &bytes, sizeHint: Int(before.size))
                sha = Hex.string(SHA256.hash(data: bytes))
                hashedSize = Int64(bytes.count)
                if let store, !store.contains(sha) { try store.put(sha256: sha, bytes: bytes) }
            } else {
                (sha, hashedSize) = try streamHash(fd, path: path, store: store)
            }
            var after = try FileStat.fstatDescriptor(fd, path: path)
            if after.unchanged(from: before) || attempts >= 3 {
                // Still changing after three reads: the entry describes the bytes read (and
                // stored), whatever length the file has now. Its recent mtime leaves it
                // untrusted, so the next scan reads it again. With the file's current size
                // instead, a file truncated and rewritten meanwhile was announced as 0 bytes
                // with the hash of "124\n" and every follower refused it as corrupt.
                after.size = hashedSize
                return Hashed(sha256: sha, stat: after)
            }
        }
    }

    static func readAll(_ fd: Int32, path: String, into bytes: inout [UInt8], sizeHint: Int) throws {
        bytes.reserveCapacity(sizeHint)
        var buffer = [UInt8](repeating: 0, count: min(chunk, max(4096, sizeHint + 1)))
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw SyncError.io("cannot read \(path)", errno)
            }
            if count == 0 { return }
            bytes.append(contentsOf: buffer[0..<count])
        }
    }

    /// SHA-256 and length of what `fd` reads to its end (into the store as it goes).
    static func streamHash(_ fd: Int32, path: String, store: ContentStore?) throws -> (sha256: String, size: Int64) {
        var hasher = SHA256()
        var size: Int64 = 0
        let sink = try store?.beginObject()
        var buffer = [UInt8](repeating: 0, count: chunk)
        do {
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0 {
                    if errno == EINTR { continue }
                    throw SyncError.io("cannot read \(path)", errno)
                }
                if count == 0 { break }
                buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
                try sink?.write(buffer[0..<count])
                size += Int64(count)
            }
        } catch {
            sink?.abandon()
            throw error
        }
        let sha = Hex.string(hasher.finalize())
        try sink?.commit(sha256: sha)
        return (sha, size)
    }
}
