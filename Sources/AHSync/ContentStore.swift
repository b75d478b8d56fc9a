import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The leader's content-addressed store: every file content of every kept snapshot, once
/// (`objects/AB/ABCDEF…`, named by SHA-256), and the snapshots' manifests
/// (`snapshots/HEX.manifest`, in the byte encoding of the root hash, so a manifest file's
/// SHA-256 is its own snapshot id). The newest `retention` snapshots are kept (a snapshot
/// saved again counts as new); objects no kept snapshot names are removed then.
public final class ContentStore: @unchecked Sendable {
    public let directory: String
    public let retention: Int
    private let lock = NSLock()
    /// Snapshots dropped since objects were last collected (guarded by `lock`).
    private var droppedSinceCollection = 0

    public init(directory: String, retention: Int = 50) throws {
        self.directory = directory
        self.retention = max(1, retention)
        for sub in ["", "/objects", "/snapshots", "/tmp"] {
            if mkdir(directory + sub, 0o700) != 0 && errno != EEXIST {
                throw SyncError.io("cannot create the content store directory \(directory + sub)", errno)
            }
        }
    }

    func objectPath(_ sha256: String) -> String {
        let prefix = sha256.prefix(2)
        return "\(directory)/objects/\(prefix)/\(sha256)"
    }

    public func contains(_ sha256: String) -> Bool { access(objectPath(sha256), F_OK) == 0 }

    /// Writes an object once (a temporary, then renamed into place).
    public func put(sha256: String, bytes: [UInt8]) throws {
        let sink = try beginObject()
        do {
            try sink.write(bytes[...])
            try sink.commit(sha256: sha256)
        } catch {
            sink.abandon()
            throw error
        }
    }

    public func beginObject() throws -> ObjectSink {
        let path = "\(directory)/tmp/obj-\(UUID().uuidString)"
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 { throw SyncError.io("cannot create \(path)", errno) }
        return ObjectSink(store: self, fd: fd, path: path)
    }

    fileprivate func place(temporary: String, sha256: String) throws {
        let target = objectPath(sha256)
        let parent = String(target[..<target.lastIndex(of: "/")!])
        if mkdir(parent, 0o700) != 0 && errno != EEXIST { throw SyncError.io("cannot create \(parent)", errno) }
        if rename(temporary, target) != 0 { throw SyncError.io("cannot move an object into \(target)", errno) }
    }

    /// An object's bytes for reading; nil when the store does not have it.
    public func openObject(_ sha256: String) -> Int32? {
        guard Hex.isSHA256(sha256) else { return nil }
        let fd = open(objectPath(sha256), O_RDONLY | O_CLOEXEC)
        return fd < 0 ? nil : fd
    }

    // MARK: snapshots

    public func snapshotPath(_ id: String) -> String {
        "\(directory)/snapshots/\(id.dropFirst(RootHash.prefix.count)).manifest"
    }

    /// Saves the manifest as a snapshot (or marks an existing one as the newest), then
    /// applies the retention.
    public func save(_ manifest: Manifest) throws {
        try lock.withLock {
            let path = snapshotPath(manifest.rootHash)
            if access(path, F_OK) == 0 {
                utimensat(AT_FDCWD, path, nil, 0)
            } else {
                let temporary = "\(directory)/tmp/snap-\(UUID().uuidString)"
                let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
                if fd < 0 { throw SyncError.io("cannot write the snapshot \(temporary)", errno) }
                var failure: SyncError?
                RootHash.encode(manifest.entries) { bytes in
                    guard failure == nil else { return }
                    do { try TreeWriter.writeAll(fd, Array(bytes)[...], path: temporary) } catch { failure = SyncError.wrap(error) }
                }
                // Objects are written without a flush each (tens of thousands in a first
                // fence); one syncfs here makes them and this manifest durable before the
                // snapshot becomes visible, so a snapshot that survives a crash can be restored.
                if failure == nil, Durability.syncFileSystem(fd) != 0, fsync(fd) != 0 {
                    failure = SyncError.io("cannot flush the snapshot \(temporary)", errno)
                }
                close(fd)
                if let failure {
                    unlink(temporary)
                    throw failure
                }
                if rename(temporary, path) != 0 { throw SyncError.io("cannot save the snapshot \(path)", errno) }
                let parent = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                if parent >= 0 {
                    fsync(parent)
                    close(parent)
                }
            }
            try enforceRetention()
        }
    }

    /// Kept snapshots, oldest first.
    public func snapshots() -> [(id: String, savedAtNs: Int64)] {
        let folder = "\(directory)/snapshots"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        var found: [(String, Int64)] = []
        for name in names where name.hasSuffix(".manifest") {
            guard let info = try? FileStat.lstatPath(folder + "/" + name) else { continue }
            found.append((RootHash.prefix + name.dropLast(".manifest".count), info.mtimeNs))
        }
        return found.sorted { $0.1 == $1.1 ? $0.0 < $1.0 : $0.1 < $1.1 }.map { (id: $0.0, savedAtNs: $0.1) }
    }

    public func hasSnapshot(_ id: String) -> Bool { access(snapshotPath(id), F_OK) == 0 }

    public func load(_ id: String) throws -> Manifest {
        guard id.hasPrefix(RootHash.prefix), Hex.isSHA256(String(id.dropFirst(RootHash.prefix.count))) else {
            throw SyncError(code: "bad-snapshot", "'\(id.prefix(80))' is not a snapshot id (sha256:HEX)")
        }
        guard let data = FileManager.default.contents(atPath: snapshotPath(id)) else {
            throw SyncError(code: "no-snapshot", "the snapshot \(id) is not in the content store (not kept any more?)")
        }
        let manifest = try Self.decodeManifest([UInt8](data))
        guard manifest.rootHash == id else {
            throw SyncError(code: "corrupt", "the stored snapshot \(id) does not hash to its id (it is \(manifest.rootHash))")
        }
        return manifest
    }

    /// Parses the root-hash byte encoding back into entries.
    static func decodeManifest(_ bytes: [UInt8]) throws -> Manifest {
        let fields = bytes.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        var entries: [ManifestEntry] = []
        var index = 0
        let bad = SyncError(code: "corrupt", "a stored snapshot manifest is malformed")
        // The encoding ends with a NUL, so the split leaves one empty field at the end.
        while index < fields.count - 1 {
            switch fields[index] {
            case "F":
                guard index + 5 < fields.count, let size = Int64(fields[index + 3]) else { throw bad }
                entries.append(.file(fields[index + 1], size: size, sha256: fields[index + 4], executable: fields[index + 2] == "x"))
                index += 5
            case "D":
                guard index + 2 < fields.count else { throw bad }
                entries.append(.directory(fields[index + 1]))
                index += 2
            case "L":
                guard index + 3 < fields.count else { throw bad }
                entries.append(.symlink(fields[index + 1], target: fields[index + 2]))
                index += 3
            default:
                throw bad
            }
        }
        return Manifest(entries: entries)
    }

    /// Drops snapshots beyond the newest `retention`, then objects none of the kept ones names.
    /// Collecting objects reads every kept manifest (50 × 50,000 entries): it runs once per
    /// `retention / 5` dropped snapshots, not on every fence (objects only linger a little).
    private func enforceRetention() throws {
        let all = snapshots()
        guard all.count > retention else { return }
        for old in all.prefix(all.count - retention) { unlink(snapshotPath(old.id)) }
        droppedSinceCollection += all.count - retention
        guard droppedSinceCollection >= max(1, retention / 5) else { return }
        droppedSinceCollection = 0
        var referenced = Set<String>()
        for kept in all.suffix(retention) {
            guard let manifest = try? load(kept.id) else { continue }
            for entry in manifest.entries where entry.kind == .file { referenced.insert(entry.sha256) }
        }
        let objects = "\(directory)/objects"
        for prefix in (try? FileManager.default.contentsOfDirectory(atPath: objects)) ?? [] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: "\(objects)/\(prefix)")) ?? []
            where !referenced.contains(name) {
                unlink("\(objects)/\(prefix)/\(name)")
            }
        }
    }

    /// Makes `directory` hold exactly the snapshot `id` (outside `ignores`, which are left alone).
    public func restore(_ id: String, into target: String, ignores: IgnoreMatcher) throws {
        let manifest = try load(id)
        let writer = try TreeWriter(root: target, options: TreeWriter.Options())
        let current = try writer.scan(ignores: ignores)
        for operation in ManifestDiff.operations(from: current, to: manifest) {
            if case .file(let entry) = operation {
                guard let fd = openObject(entry.sha256) else {
                    throw SyncError(code: "no-object", "the content of \(entry.path) (\(entry.sha256)) is not in the store")
                }
                defer { close(fd) }
                try writer.beginFile(entry)
                var buffer = [UInt8](repeating: 0, count: 1 << 20)
                while true {
                    let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                    if count < 0 { throw SyncError.io("cannot read the stored object \(entry.sha256)", errno) }
                    if count == 0 { break }
                    try writer.writeFileData(buffer[0..<count])
                }
                try writer.finishFile()
            } else {
                try writer.apply(operation)
            }
        }
        try writer.flush()
        let after = try writer.scan(ignores: ignores)
        guard after.rootHash == id else {
            throw SyncError(code: "diverged", "restoring \(id) into \(target) gave \(after.rootHash) (the tree changed meanwhile?)")
        }
    }
}

/// A new object being written: bytes go to a temporary, `commit` names it by its hash.
public final class ObjectSink: @unchecked Sendable {
    let store: ContentStore
    let fd: Int32
    let path: String
    private var closed = false

    init(store: ContentStore, fd: Int32, path: String) {
        self.store = store
        self.fd = fd
        self.path = path
    }

    public func write(_ bytes: ArraySlice<UInt8>) throws {
        try TreeWriter.writeAll(fd, bytes, path: path)
    }

    public func commit(sha256: String) throws {
        close(fd)
        closed = true
        if store.contains(sha256) {
            unlink(path)
            return
        }
        try store.place(temporary: path, sha256: sha256)
    }

    public func abandon() {
        if !closed { close(fd) }
        closed = true
        unlink(path)
    }
}
