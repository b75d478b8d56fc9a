/// One step that turns a receiver's tree into the sender's.
public enum SyncOperation: Sendable, Equatable {
    /// Remove the path (recursively, never following symlinks).
    case remove(String)
    case mkdir(String)
    /// Write the file (its content follows on the wire).
    case file(ManifestEntry)
    case symlink(ManifestEntry)
    /// Only the executable bit changed.
    case chmod(String, executable: Bool)

    public var path: String {
        switch self {
        case .remove(let path), .mkdir(let path), .chmod(let path, _): return path
        case .file(let entry), .symlink(let entry): return entry.path
        }
    }
}

/// The operations that turn `old` into `new`, in an order the receiver can apply one by one:
/// removals (only the topmost of a removed subtree, and whatever changes type), then
/// directories (parents first), files, symlinks, mode changes.
public enum ManifestDiff {
    public static func operations(from old: Manifest, to new: Manifest) -> [SyncOperation] {
        // Both manifests are sorted by path: one merge walk pairs the entries (no by-path
        // tables of 50,000 strings per follower per fence, as hashing them cost).
        var removals: [String] = []
        var directories: [SyncOperation] = []
        var files: [SyncOperation] = []
        var links: [SyncOperation] = []
        var modes: [SyncOperation] = []
        let before = old.entries
        let after = new.entries
        var i = 0
        var j = 0
        while i < before.count || j < after.count {
            let previous: ManifestEntry?
            let entry: ManifestEntry?
            if i < before.count, j < after.count {
                let left = before[i]
                let right = after[j]
                let order = SyncPath.compare(left.path, right.path)
                if order == 0 {
                    previous = left
                    entry = right
                    i += 1
                    j += 1
                } else if order < 0 {
                    previous = left
                    entry = nil
                    i += 1
                } else {
                    previous = nil
                    entry = right
                    j += 1
                }
            } else if i < before.count {
                previous = before[i]
                entry = nil
                i += 1
            } else {
                previous = nil
                entry = after[j]
                j += 1
            }
            if let previous {
                let kept = entry.map { replacement in
                    replacement.kind == previous.kind && (previous.kind != .symlink || replacement.target == previous.target)
                } ?? false
                if !kept { removals.append(previous.path) }
            }
            guard let entry else { continue }
            switch entry.kind {
            case .directory:
                if previous?.kind != .directory { directories.append(.mkdir(entry.path)) }
            case .symlink:
                if previous?.kind != .symlink || previous?.target != entry.target { links.append(.symlink(entry)) }
            case .file:
                if let previous, previous.kind == .file, previous.size == entry.size, previous.sha256 == entry.sha256 {
                    if previous.executable != entry.executable { modes.append(.chmod(entry.path, executable: entry.executable)) }
                } else {
                    files.append(.file(entry))
                }
            }
        }
        // Children of a removed directory go with it: keep only the topmost removals
        // (sorted order puts a parent right before its subtree).
        var topmost: [String] = []
        for path in removals {
            if let last = topmost.last, path.utf8.count > last.utf8.count, path.hasPrefix(last + "/") { continue }
            topmost.append(path)
        }
        return topmost.map(SyncOperation.remove) + directories + files + links + modes
    }
}
