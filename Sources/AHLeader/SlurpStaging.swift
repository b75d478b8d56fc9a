import Foundation

/// The private directory beside one destination where a file set lands before it is moved
/// into place (`DEST_PARENT/.ah-slurp-XXXXXXXX`, 0700, on the destination's file system so
/// the final step is a rename).
///
/// Placement never shows a half-made destination: the new destination is built aside —
/// hard links to what the destination already holds, then the received files moved over
/// them — and swapped in with one `renameat2(RENAME_EXCHANGE)` (or one rename when the
/// destination does not exist yet). Until that swap the destination is untouched; after
/// it, the old tree is removed with the staging directory. Where the kernel lacks the
/// exchange, two renames are used (the destination is then absent for an instant, but never
/// partly written).
///
/// Ownership: the staging directory holds `.owner`, locked (flock) for as long as this object
/// lives, and the lock dies with the process. A staging directory left by a leader service
/// that was killed mid-slurp is therefore recognisable — its lock can be taken — and the next
/// slurp into the same parent removes it (`sweepAbandoned`).
final class SlurpStaging: @unchecked Sendable {
    let dest: URL
    let root: URL
    private let lock = NSLock()
    private var nextHost = 0
    /// The descriptor of `.owner`, locked; closed by `discard` (or at exit).
    private var ownerFD: Int32 = -1

    init(dest: String) throws {
        self.dest = URL(fileURLWithPath: dest).standardizedFileURL
        let parent = self.dest.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
        } catch {
            throw LeaderFailure(exitCode: 1, "cannot create \(parent.path) (the parent of the destination): \(error.localizedDescription)")
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: self.dest.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw LeaderFailure.usage("the destination \(self.dest.path) exists and is not a directory")
        }
        Self.sweepAbandoned(in: parent)
        let suffix = UUID().uuidString.prefix(8).lowercased()
        root = parent.appendingPathComponent(".ah-slurp-\(suffix)")
        guard mkdir(root.path, 0o700) == 0 else {
            throw LeaderFailure(exitCode: 1, "cannot create the staging directory \(root.path): \(String(cString: strerror(errno)))")
        }
        ownerFD = open(root.appendingPathComponent(Self.ownerName).path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard ownerFD >= 0, flock(ownerFD, LOCK_EX | LOCK_NB) == 0 else {
            let reason = String(cString: strerror(errno))
            if ownerFD >= 0 { close(ownerFD) }
            try? FileManager.default.removeItem(at: root)
            throw LeaderFailure(exitCode: 1, "cannot lock the staging directory \(root.path): \(reason)")
        }
    }

    deinit {
        if ownerFD >= 0 { close(ownerFD) }
    }

    static let ownerName = ".owner"

    /// Removes `.ah-slurp-*` directories in `parent` whose `.owner` lock nobody holds: their
    /// slurp's process is gone. One being created right now (no `.owner` yet) or one without
    /// an owner file (made by an older version) is left alone.
    static func sweepAbandoned(in parent: URL) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? []
        for name in names where name.hasPrefix(".ah-slurp-") {
            let directory = parent.appendingPathComponent(name)
            let fd = open(directory.appendingPathComponent(ownerName).path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { continue }
            try? FileManager.default.removeItem(at: directory)
        }
    }

    /// A fresh directory for one attempt of one host.
    func hostDirectory(_ host: String) throws -> URL {
        let index = lock.withLock { () -> Int in
            nextHost += 1
            return nextHost
        }
        let directory = root.appendingPathComponent("recv").appendingPathComponent("\(index)-\(host)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        return directory
    }

    /// Moves the received files of each host under `dest/` + its prefix (`""` for the one
    /// host that answered, `NAME/HOST` when several did), atomically as described above.
    func place(_ hosts: [(directory: URL, prefix: String, files: [String])]) throws {
        let fresh = root.appendingPathComponent("new")
        let existed = FileManager.default.fileExists(atPath: dest.path)
        if existed {
            try Self.linkTree(from: dest, to: fresh)
        } else {
            try makeDirectory(fresh)
        }
        for host in hosts {
            for path in host.files {
                let relative = host.prefix.isEmpty ? path : host.prefix + "/" + path
                let target = fresh.appendingPathComponent(relative)
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: target.path, isDirectory: &isDirectory), isDirectory.boolValue {
                    throw LeaderFailure(exitCode: 1, "\(dest.appendingPathComponent(relative).path) is a directory; the file \(path) cannot replace it")
                }
                try makeDirectory(target.deletingLastPathComponent())
                guard rename(host.directory.appendingPathComponent(path).path, target.path) == 0 else {
                    throw LeaderFailure(exitCode: 1, "cannot move \(path) into \(fresh.path): \(String(cString: strerror(errno)))")
                }
            }
        }
        if !existed {
            guard rename(fresh.path, dest.path) == 0 else {
                throw LeaderFailure(exitCode: 1, "cannot move the files into \(dest.path): \(String(cString: strerror(errno)))")
            }
            return
        }
        if Self.exchange(fresh.path, dest.path) { return }
        let old = root.appendingPathComponent("old")
        guard rename(dest.path, old.path) == 0 else {
            throw LeaderFailure(exitCode: 1, "cannot replace \(dest.path): \(String(cString: strerror(errno)))")
        }
        guard rename(fresh.path, dest.path) == 0 else {
            let reason = String(cString: strerror(errno))
            rename(old.path, dest.path)
            throw LeaderFailure(exitCode: 1, "cannot move the files into \(dest.path): \(reason)")
        }
    }

    /// Removes the staging directory and everything left in it.
    func discard() {
        try? FileManager.default.removeItem(at: root)
        lock.withLock {
            if ownerFD >= 0 { close(ownerFD) }
            ownerFD = -1
        }
    }

    private func makeDirectory(_ url: URL) throws {
        do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
            throw LeaderFailure(exitCode: 1, "cannot create \(url.path): \(error.localizedDescription)")
        }
    }

    /// `cp -al`: the same tree with hard links to the same files (and copies of symlinks),
    /// directories with their modes. Nothing in `source` changes.
    static func linkTree(from source: URL, to target: URL) throws {
        var info = stat()
        guard lstat(source.path, &info) == 0 else {
            throw LeaderFailure(exitCode: 1, "cannot read \(source.path): \(String(cString: strerror(errno)))")
        }
        switch info.st_mode & S_IFMT {
        case S_IFDIR:
            guard mkdir(target.path, info.st_mode & 0o7777) == 0 || errno == EEXIST else {
                throw LeaderFailure(exitCode: 1, "cannot create \(target.path): \(String(cString: strerror(errno)))")
            }
            let names = (try? FileManager.default.contentsOfDirectory(atPath: source.path)) ?? []
            for name in names {
                try linkTree(from: source.appendingPathComponent(name), to: target.appendingPathComponent(name))
            }
        case S_IFLNK:
            let destination = try FileManager.default.destinationOfSymbolicLink(atPath: source.path)
            guard symlink(destination, target.path) == 0 else {
                throw LeaderFailure(exitCode: 1, "cannot copy the symlink \(source.path): \(String(cString: strerror(errno)))")
            }
        default:
            guard link(source.path, target.path) == 0 else {
                throw LeaderFailure(exitCode: 1, "cannot link \(source.path) into the staging directory: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Linux's renameat2(2) with RENAME_EXCHANGE, looked up at run time (it is not in
    /// Swift's Glibc module); false when unavailable or refused.
    static func exchange(_ first: String, _ second: String) -> Bool {
        #if os(Linux)
        typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
        guard let symbol = dlsym(nil, "renameat2") else { return false }
        let renameat2 = unsafeBitCast(symbol, to: RenameAt2.self)
        return renameat2(AT_FDCWD, first, AT_FDCWD, second, 2) == 0
        #else
        return false
        #endif
    }
}
