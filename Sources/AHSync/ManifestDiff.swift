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
        let before = old.byPath()
        let after = new.byPath()
        var removals: [String] = []
        for entry in old.entries {
            if let replacement = after[entry.path], replacement.kind == entry.kind, entry.kind != .symlink { continue }
            if let replacement = after[entry.path], replacement.kind == .symlink, entry.kind == .symlink,
               replacement.target == entry.target { continue }
            removals.append(entry.path)
        }
        // Children of a removed directory go with it: keep only the topmost removals
        // (sorted order puts a parent right before its subtree).
        var topmost: [String] = []
        for path in removals {
            if let last = topmost.last, path.utf8.count > last.utf8.count, path.hasPrefix(last + "/") { continue }
            topmost.append(path)
        }
        var directories: [SyncOperation] = []
        var files: [SyncOperation] = []
        var links: [SyncOperation] = []
        var modes: [SyncOperation] = []
        for entry in new.entries {
            let previous = before[entry.path]
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
        return topmost.map(SyncOperation.remove) + directories + files + links + modes
    }
}
