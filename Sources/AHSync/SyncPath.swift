#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The rules for a manifest path: relative, `/`-separated, valid UTF-8 without NUL, no
/// empty, `.` or `..` components, at most 4,096 bytes with components of at most 255.
/// Whatever the network sends is checked with `problem(_:)` before it reaches the disk.
public enum SyncPath {
    public static let maximumLength = 4096
    public static let maximumComponentLength = 255

    /// nil when `path` is a valid manifest path; else a sentence naming it.
    public static func problem(_ path: String) -> String? {
        let bytes = path.utf8
        if bytes.isEmpty { return "an empty path" }
        if bytes.count > maximumLength { return "path '\(path.prefix(80))…' is longer than \(maximumLength) bytes" }
        if bytes.contains(0) { return "path '\(path.prefix(200))' contains a NUL byte" }
        if bytes.first == UInt8(ascii: "/") { return "path '\(path.prefix(200))' is absolute" }
        for component in path.split(separator: "/", omittingEmptySubsequences: false) {
            if component.isEmpty { return "path '\(path.prefix(200))' has an empty component" }
            if component == "." || component == ".." { return "path '\(path.prefix(200))' has a '\(component)' component" }
            if component.utf8.count > maximumComponentLength {
                return "path '\(path.prefix(200))' has a component longer than \(maximumComponentLength) bytes"
            }
        }
        return nil
    }

    /// Manifest order: ascending by UTF-8 bytes (not Swift's String order, which compares
    /// canonically equivalent strings as equal).
    public static func precedes(_ left: String, _ right: String) -> Bool { compare(left, right) < 0 }

    /// Byte order of two paths: negative, 0 (the same bytes) or positive. memcmp over the
    /// contiguous UTF-8 (sorting and merging 50,000 paths is on every fence's path).
    public static func compare(_ left: String, _ right: String) -> Int {
        var left = left
        var right = right
        return left.withUTF8 { a in
            right.withUTF8 { b in
                let common = min(a.count, b.count)
                if common > 0 {
                    let order = memcmp(a.baseAddress!, b.baseAddress!, common)
                    if order != 0 { return order < 0 ? -1 : 1 }
                }
                return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
            }
        }
    }

    /// The parent's path, or nil for a top-level name.
    public static func parent(_ path: String) -> String? {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return nil }
        return String(path[..<slash])
    }

    /// The last component.
    public static func name(_ path: String) -> Substring {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return Substring(path) }
        return path[path.index(after: slash)...]
    }

    /// How many components deep (`a` is 1, `a/b` is 2).
    public static func depth(_ path: String) -> Int {
        path.utf8.reduce(1) { $0 + ($1 == UInt8(ascii: "/") ? 1 : 0) }
    }

    public static func join(_ directory: String, _ name: String) -> String {
        directory.isEmpty ? name : directory + "/" + name
    }

    /// Whether a symlink at `path` with `target` stays inside the tree: relative, and
    /// resolving it lexically from the link's directory never climbs above the root.
    /// (Lexical is the right check: every component it passes through is itself a synced
    /// directory or link, and links are checked the same way.)
    public static func symlinkStaysInside(path: String, target: String) -> Bool {
        if target.isEmpty || target.utf8.first == UInt8(ascii: "/") || target.utf8.contains(0) { return false }
        var depth = depth(path) - 1
        for component in target.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            if component == ".." {
                depth -= 1
                if depth < 0 { return false }
            } else {
                depth += 1
            }
        }
        return true
    }
}
