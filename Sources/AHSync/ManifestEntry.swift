import Crypto
import Foundation

/// One path of a synced tree: what the fence compares and the receiver reproduces.
/// Permissions beyond the executable bit, owners, times and extended attributes are not
/// synced (the receiver writes files 0644 or 0755 and directories 0755).
public struct ManifestEntry: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable {
        case file = "f"
        case directory = "d"
        case symlink = "l"
    }

    /// Relative to the tree's root, `/`-separated, no `.`/`..`/empty components (`SyncPath`).
    public var path: String
    public var kind: Kind
    /// Files: any of the owner/group/other execute bits set.
    public var executable: Bool
    /// Files: length in bytes (0 otherwise).
    public var size: Int64
    /// Files: SHA-256 of the content, lowercase hex (empty otherwise).
    public var sha256: String
    /// Symlinks: the link's target as stored (empty otherwise).
    public var target: String

    public init(path: String, kind: Kind, executable: Bool = false, size: Int64 = 0, sha256: String = "", target: String = "") {
        self.path = path
        self.kind = kind
        self.executable = kind == .file ? executable : false
        self.size = kind == .file ? size : 0
        self.sha256 = kind == .file ? sha256 : ""
        self.target = kind == .symlink ? target : ""
    }

    public static func file(_ path: String, size: Int64, sha256: String, executable: Bool = false) -> ManifestEntry {
        ManifestEntry(path: path, kind: .file, executable: executable, size: size, sha256: sha256)
    }

    public static func directory(_ path: String) -> ManifestEntry { ManifestEntry(path: path, kind: .directory) }

    public static func symlink(_ path: String, target: String) -> ManifestEntry { ManifestEntry(path: path, kind: .symlink, target: target) }

    /// Same content, type, mode and target (what the root hash covers).
    public func sameContent(as other: ManifestEntry) -> Bool {
        kind == other.kind && executable == other.executable && size == other.size && sha256 == other.sha256 && target == other.target
    }

    // Compact keys on the wire (a manifest of 50,000 entries is sent as JSON when a follower
    // has to list its tree): p, t, x, s, h, l.
    enum CodingKeys: String, CodingKey {
        case path = "p", kind = "t", executable = "x", size = "s", sha256 = "h", target = "l"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(path: try container.decode(String.self, forKey: .path),
                  kind: try container.decode(Kind.self, forKey: .kind),
                  executable: try container.decodeIfPresent(Bool.self, forKey: .executable) ?? false,
                  size: try container.decodeIfPresent(Int64.self, forKey: .size) ?? 0,
                  sha256: try container.decodeIfPresent(String.self, forKey: .sha256) ?? "",
                  target: try container.decodeIfPresent(String.self, forKey: .target) ?? "")
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(path, forKey: .path)
        try container.encode(kind, forKey: .kind)
        switch kind {
        case .file:
            if executable { try container.encode(true, forKey: .executable) }
            try container.encode(size, forKey: .size)
            try container.encode(sha256, forKey: .sha256)
        case .symlink:
            try container.encode(target, forKey: .target)
        case .directory:
            break
        }
    }
}

/// A whole tree: entries sorted by the UTF-8 bytes of their paths, and its root hash.
public struct Manifest: Sendable, Equatable {
    public private(set) var entries: [ManifestEntry]
    /// `sha256:HEX` over the entries (`RootHash`): the snapshot id.
    public let rootHash: String

    public init(entries: [ManifestEntry]) {
        self.entries = entries.sorted { SyncPath.precedes($0.path, $1.path) }
        self.rootHash = RootHash.compute(self.entries)
    }

    /// Entries already in manifest order (checked by the caller).
    init(sorted entries: [ManifestEntry]) {
        self.entries = entries
        self.rootHash = RootHash.compute(entries)
    }

    public static let empty = Manifest(entries: [])

    /// This manifest without the entries at `removed` (paths that may or may not be in it),
    /// plus `added`: what a receiver's writes since it was made changed. Binary searches and
    /// one merge, no table of every path, no sort of the whole.
    public func replacing(paths removed: [String], with added: [ManifestEntry]) -> Manifest {
        var drop = [Bool](repeating: false, count: entries.count)
        for path in removed {
            let index = firstIndex(notBelow: path)
            if index < entries.count, SyncPath.compare(entries[index].path, path) == 0 { drop[index] = true }
        }
        return merging(dropping: drop, adding: added)
    }

    /// The index of the first entry whose path is not before `path` in byte order.
    private func firstIndex(notBelow path: String) -> Int {
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if SyncPath.compare(entries[middle].path, path) < 0 { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// This manifest without the entries directly inside `directories` ("" is the root),
    /// plus `added` (any order): what an incremental scan found when it listed those again.
    /// One merge, no sort of the whole: the entries of a directory `d` all lie in the one
    /// range of paths starting with `d/`.
    public func replacing(childrenOf directories: Set<String>, with added: [ManifestEntry]) -> Manifest {
        var drop = [Bool](repeating: false, count: entries.count)
        for directory in directories {
            let prefix = directory.isEmpty ? "" : directory + "/"
            let prefixLength = prefix.utf8.count
            var index = firstIndex(notBelow: prefix)
            while index < entries.count, entries[index].path.utf8.starts(with: prefix.utf8) {
                if !entries[index].path.utf8.dropFirst(prefixLength).contains(UInt8(ascii: "/")) { drop[index] = true }
                index += 1
            }
        }
        return merging(dropping: drop, adding: added)
    }

    /// The entries not marked in `drop` merged with `added` (any order, no path of them kept).
    private func merging(dropping drop: [Bool], adding added: [ManifestEntry]) -> Manifest {
        let adding = added.sorted { SyncPath.precedes($0.path, $1.path) }
        // Listed again and found as they were (a receiver's own writes, a racily clean file
        // read again): the same manifest, no root hash to recompute.
        var same = true
        var compared = 0
        // By index, here and in `encode`: iterating the entries copied each one (a retain and
        // a release of its strings) only to read it, on every fence's 50,000 entries.
        for index in entries.indices where drop[index] {
            guard compared < adding.count, SyncPath.compare(entries[index].path, adding[compared].path) == 0,
                  entries[index].kind == adding[compared].kind, entries[index].sameContent(as: adding[compared]) else {
                same = false
                break
            }
            compared += 1
        }
        if same && compared == adding.count { return self }
        var merged: [ManifestEntry] = []
        merged.reserveCapacity(entries.count + adding.count)
        var next = 0
        for index in entries.indices where !drop[index] {
            while next < adding.count, SyncPath.precedes(adding[next].path, entries[index].path) {
                merged.append(adding[next])
                next += 1
            }
            merged.append(entries[index])
        }
        merged.append(contentsOf: adding[next...])
        return Manifest(sorted: merged)
    }

    public var count: Int { entries.count }

    /// Entries by path.
    public func byPath() -> [String: ManifestEntry] {
        var map = [String: ManifestEntry](minimumCapacity: entries.count)
        for entry in entries { map[entry.path] = entry }
        return map
    }

    /// Total bytes of the files.
    public var totalBytes: Int64 { entries.reduce(0) { $0 + $1.size } }
}

/// The snapshot id: SHA-256 over the manifest's entries in ascending byte order of their
/// UTF-8 paths, each encoded as NUL-terminated fields (docs/protocol.md, "Snapshot id"):
///
///     file:     "F" 0 path 0 ("x" | "-") 0 size-in-decimal 0 sha256-lowercase-hex 0
///     dir:      "D" 0 path 0
///     symlink:  "L" 0 path 0 target 0
///
/// Neither paths nor targets can contain NUL, and each type has a fixed field count, so the
/// byte string is unambiguous. The empty tree's id is SHA-256 of nothing.
public enum RootHash {
    public static let prefix = "sha256:"

    /// `entries` must already be sorted (`Manifest` sorts them).
    public static func compute(_ entries: [ManifestEntry]) -> String {
        var hasher = SHA256()
        encode(entries) { hasher.update(bufferPointer: $0) }
        return prefix + Hex.string(hasher.finalize())
    }

    /// The encoding of `entries` in chunks of up to 64 KiB, written with plain copies into
    /// one buffer (every fence that changed something hashes 50,000 entries on the leader
    /// and on each follower: appending field by field to an Array cost several times more).
    public static func encode(_ entries: [ManifestEntry], chunk: (UnsafeRawBufferPointer) -> Void) {
        let capacity = 64 * 1024
        // The longest entry: a symlink with a path and a target of 4,096 bytes each, or a
        // file with a 4,096-byte path (callers have checked paths; targets are bounded too).
        let reserve = 2 * SyncPath.maximumLength + 128
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity + reserve, alignment: 8)
        defer { buffer.deallocate() }
        var used = 0
        func put(_ byte: UInt8) {
            buffer[used] = byte
            used += 1
        }
        func put(_ text: String) {
            // Native strings are contiguous UTF-8; a bridged or foreign one is copied byte-wise.
            let copied: Void? = text.utf8.withContiguousStorageIfAvailable { bytes in
                guard let source = bytes.baseAddress, bytes.count > 0 else { return }
                (buffer.baseAddress! + used).copyMemory(from: source, byteCount: bytes.count)
                used += bytes.count
            }
            if copied == nil { for byte in text.utf8 { put(byte) } }
        }
        for index in entries.indices {
            if used >= capacity || entries[index].path.utf8.count + entries[index].target.utf8.count > reserve - 128 {
                chunk(UnsafeRawBufferPointer(rebasing: buffer[0..<used]))
                used = 0
            }
            if entries[index].path.utf8.count + entries[index].target.utf8.count > reserve - 128 {
                // Longer than any valid entry: the generic path (never on a checked manifest).
                var bytes: [UInt8] = []
                encode(entries[index], into: &bytes)
                bytes.withUnsafeBytes { chunk($0) }
                continue
            }
            switch entries[index].kind {
            case .file:
                put(UInt8(ascii: "F")); put(0)
                put(entries[index].path); put(0)
                put(UInt8(ascii: entries[index].executable ? "x" : "-")); put(0)
                if entries[index].size < 0 { put(UInt8(ascii: "-")) }
                var magnitude = entries[index].size.magnitude
                let start = used
                repeat {
                    put(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: magnitude % 10))
                    magnitude /= 10
                } while magnitude > 0
                var low = start
                var high = used - 1
                while low < high {
                    buffer.swapAt(low, high)
                    low += 1
                    high -= 1
                }
                put(0)
                put(entries[index].sha256); put(0)
            case .directory:
                put(UInt8(ascii: "D")); put(0)
                put(entries[index].path); put(0)
            case .symlink:
                put(UInt8(ascii: "L")); put(0)
                put(entries[index].path); put(0)
                put(entries[index].target); put(0)
            }
        }
        if used > 0 { chunk(UnsafeRawBufferPointer(rebasing: buffer[0..<used])) }
    }

    /// `String(value)`'s bytes without making a String (50,000 of them per root hash).
    static func appendDecimal(_ value: Int64, into buffer: inout [UInt8]) {
        if value < 0 { buffer.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        let start = buffer.count
        repeat {
            buffer.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: magnitude % 10))
            magnitude /= 10
        } while magnitude > 0
        buffer[start...].reverse()
    }

    static func encode(_ entry: ManifestEntry, into buffer: inout [UInt8]) {
        switch entry.kind {
        case .file:
            buffer.append(UInt8(ascii: "F")); buffer.append(0)
            buffer.append(contentsOf: entry.path.utf8); buffer.append(0)
            buffer.append(UInt8(ascii: entry.executable ? "x" : "-")); buffer.append(0)
            appendDecimal(entry.size, into: &buffer); buffer.append(0)
            buffer.append(contentsOf: entry.sha256.utf8); buffer.append(0)
        case .directory:
            buffer.append(UInt8(ascii: "D")); buffer.append(0)
            buffer.append(contentsOf: entry.path.utf8); buffer.append(0)
        case .symlink:
            buffer.append(UInt8(ascii: "L")); buffer.append(0)
            buffer.append(contentsOf: entry.path.utf8); buffer.append(0)
            buffer.append(contentsOf: entry.target.utf8); buffer.append(0)
        }
    }
}

/// Lowercase hex of bytes.
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    public static func string<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var out = [UInt8]()
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// True for 64 lowercase hex digits (a SHA-256).
    public static func isSHA256(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}
