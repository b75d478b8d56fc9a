import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a file set selects in a workspace: every regular file an include matches (a
/// matched directory brings its tree), minus the excludes, sorted by path. The workspace is
/// a fence: a symlink is followed only when it resolves to a regular file inside the
/// workspace; one that leaves it (or points at a directory) is skipped and reported, as are
/// sockets, FIFOs and devices.
struct SlurpWalk {
    struct Entry: Equatable {
        /// Workspace-relative, `/`-separated.
        var path: String
        /// What to open: the real path inside the workspace.
        var realPath: String
    }

    /// More files than this in one set is a mistake (a pattern that matched a whole disk).
    static let maximumFiles = 1_000_000

    let rootReal: String
    let includes: [SlurpPattern]
    let excludes: [SlurpPattern]
    private(set) var entries: [Entry] = []
    private(set) var skipped: [SlurpSkipped] = []
    private var seen: Set<String> = []

    /// Refuses absolute and `..` patterns and a root that is not a directory.
    init(root: String, include: [String], exclude: [String]) throws(SlurpWalkError) {
        guard !include.isEmpty else { throw .refused("a file set needs at least one include pattern") }
        do {
            includes = try include.map { (text) throws(SlurpPatternError) in try SlurpPattern(text) }
            excludes = try exclude.map { (text) throws(SlurpPatternError) in try SlurpPattern(text) }
        } catch {
            throw .refused(error.description)
        }
        guard let real = Self.realPath(root) else {
            throw .refused("the workspace '\(root.prefix(256))' does not exist (\(String(cString: strerror(errno))))")
        }
        var info = stat()
        guard stat(real, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw .refused("the workspace '\(root.prefix(256))' is not a directory")
        }
        rootReal = real
    }

    mutating func run() throws(SlurpWalkError) {
        for pattern in includes {
            let start = pattern.literalPrefix
            if pattern.isLiteral {
                try visit(start, matched: true, pattern: pattern)
            } else if start.isEmpty {
                try descend([], pattern: pattern)
            } else {
                try visit(start, matched: false, pattern: pattern)
            }
        }
        entries.sort { $0.path < $1.path }
    }

    /// One path: a file is taken when `matched`; a directory is walked (all of it when
    /// `matched`, else only where the pattern may still match).
    private mutating func visit(_ path: [String], matched: Bool, pattern: SlurpPattern) throws(SlurpWalkError) {
        let relative = path.joined(separator: "/")
        if excludes.contains(where: { $0.excludes(path) }) { return }
        let full = rootReal + "/" + relative
        var info = stat()
        guard lstat(full, &info) == 0 else { return }  // not on this follower: not an error
        // Only what this pattern could select is looked at (and reported when refused).
        guard matched || pattern.matches(path) || pattern.mayMatchBelow(path) else { return }
        var kind = info.st_mode & S_IFMT
        // The real path decides: a symlink anywhere on the way (this entry or a directory
        // above it that the walk came through by name) must not lead outside.
        guard let real = Self.realPath(full) else {
            skipped.append(SlurpSkipped(path: relative, reason: kind == S_IFLNK ? "a dangling symlink" : "cannot be resolved"))
            return
        }
        guard Self.isInside(real, rootReal) else {
            skipped.append(SlurpSkipped(path: relative, reason: "resolves outside the workspace (refused)"))
            return
        }
        if kind == S_IFLNK {
            guard stat(real, &info) == 0 else { return }
            kind = info.st_mode & S_IFMT
            if kind == S_IFDIR {
                skipped.append(SlurpSkipped(path: relative, reason: "a symlink to a directory (not followed)"))
                return
            }
        }
        switch kind {
        case S_IFREG:
            guard matched || pattern.matches(path) else { return }
            guard !seen.contains(relative) else { return }
            guard entries.count < Self.maximumFiles else {
                throw .refused("the set matches more than \(Self.maximumFiles) files")
            }
            seen.insert(relative)
            entries.append(Entry(path: relative, realPath: real))
        case S_IFDIR:
            if matched || pattern.matches(path) {
                try descend(path, pattern: nil)
            } else if pattern.mayMatchBelow(path) {
                try descend(path, pattern: pattern)
            }
        default:
            if matched || pattern.matches(path) {
                skipped.append(SlurpSkipped(path: relative, reason: "not a regular file (socket, FIFO or device)"))
            }
        }
    }

    /// The directory's entries: each taken whole when `pattern` is nil (the directory was
    /// matched), else matched against it.
    private mutating func descend(_ path: [String], pattern: SlurpPattern?) throws(SlurpWalkError) {
        let directory = path.isEmpty ? rootReal : rootReal + "/" + path.joined(separator: "/")
        // The directory itself must still be inside (a parent could be a symlink out).
        guard let real = Self.realPath(directory), Self.isInside(real, rootReal) || real == rootReal else {
            skipped.append(SlurpSkipped(path: path.joined(separator: "/"), reason: "resolves outside the workspace (refused)"))
            return
        }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names.sorted() {
            if let pattern {
                try visit(path + [name], matched: false, pattern: pattern)
            } else {
                try visit(path + [name], matched: true, pattern: SlurpWalk.everything)
            }
        }
    }

    /// Stands for "the whole tree" below a matched directory.
    private static let everything = try! SlurpPattern("**")

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func isInside(_ path: String, _ root: String) -> Bool {
        root == "/" ? path.hasPrefix("/") : path.hasPrefix(root + "/")
    }
}

enum SlurpWalkError: Error, Equatable, CustomStringConvertible {
    case refused(String)

    var description: String {
        switch self {
        case .refused(let reason): return reason
        }
    }
}
