import AHSync
import Foundation

// The `sync-*` messages of the follower helper protocol (docs/protocol.md, "Sync"): the
// leader makes the helper's tree (the member's workspace) equal to a snapshot. File bytes
// travel in frames of kind 3 (`syncData`) whose job id is the sync id.

/// `sync-begin`: scan the tree at `root` and say its root hash.
public struct SyncBegin: Codable, Sendable, Equatable {
    public var sync: UInt32
    /// The workspace as the follower spells it (`~/…` is the helper's home).
    public var root: String
    /// `[fleet.sync] ignores` (gitignore syntax); ignored paths are neither compared nor touched.
    public var ignores: [String]
    /// The snapshot the leader will sync to (informational: the answer compares with it).
    public var snapshotId: String
    /// Refuse names that collide case-insensitively (a macOS or Windows member).
    public var caseInsensitive: Bool?
    /// Check names against Windows' rules.
    public var windowsNames: Bool?

    public init(sync: UInt32, root: String, ignores: [String], snapshotId: String, caseInsensitive: Bool? = nil,
                windowsNames: Bool? = nil) {
        self.sync = sync
        self.root = root
        self.ignores = ignores
        self.snapshotId = snapshotId
        self.caseInsensitive = caseInsensitive
        self.windowsNames = windowsNames
    }
}

/// One non-file operation in `sync-ops`.
public struct SyncOpWire: Codable, Sendable, Equatable {
    /// `remove`, `mkdir`, `symlink` or `chmod`.
    public var op: String
    public var path: String
    public var target: String?
    public var executable: Bool?

    public init(_ operation: SyncOperation) {
        switch operation {
        case .remove(let path): self.init(op: "remove", path: path)
        case .mkdir(let path): self.init(op: "mkdir", path: path)
        case .symlink(let entry): self.init(op: "symlink", path: entry.path, target: entry.target)
        case .chmod(let path, let executable): self.init(op: "chmod", path: path, executable: executable)
        case .file(let entry): self.init(op: "file", path: entry.path)
        }
    }

    init(op: String, path: String, target: String? = nil, executable: Bool? = nil) {
        self.op = op
        self.path = path
        self.target = target
        self.executable = executable
    }

    /// The operation, or why it is not one.
    public var operation: Result<SyncOperation, SyncError> {
        switch op {
        case "remove": return .success(.remove(path))
        case "mkdir": return .success(.mkdir(path))
        case "symlink":
            guard let target, !target.isEmpty, target.utf8.count <= 4096 else {
                return .failure(SyncError(code: "bad-request", "the symlink \(path.prefix(200)) has no valid target"))
            }
            return .success(.symlink(.symlink(path, target: target)))
        case "chmod": return .success(.chmod(path, executable: executable ?? false))
        default: return .failure(SyncError(code: "bad-request", "unknown sync operation '\(op.prefix(32))'"))
        }
    }
}

public enum SyncMessage: Sendable, Equatable {
    /// leader → helper
    case begin(SyncBegin)
    /// helper → leader: `rootHash` and entry count of its tree (after `begin`).
    case state(sync: UInt32, rootHash: String, entries: Int)
    /// leader → helper: send your manifest.
    case list(sync: UInt32)
    /// helper → leader: part of its manifest; `last` on the final part.
    case entries(sync: UInt32, entries: [ManifestEntry], last: Bool)
    /// leader → helper: removals, directories, symlinks, mode changes, applied in order.
    case ops(sync: UInt32, ops: [SyncOpWire])
    /// leader → helper: a file; its `size` bytes follow in kind-3 frames.
    case file(sync: UInt32, entry: ManifestEntry)
    /// leader → helper: everything was sent; answer with the tree's root hash.
    case commit(sync: UInt32)
    /// helper → leader: flow control, cumulative cost applied (`SyncFlow`).
    case ack(sync: UInt32, applied: Int64)
    /// helper → leader: the sync is applied; the tree's root hash now.
    case done(sync: UInt32, rootHash: String, entries: Int)
    /// helper → leader: the sync failed (after `begin`, `list` or `commit`).
    case failed(sync: UInt32, code: String, message: String)

    public static let types: Set<String> = ["sync-begin", "sync-state", "sync-list", "sync-entries", "sync-ops", "sync-file",
                                            "sync-commit", "sync-ack", "sync-done", "sync-error"]

    public var type: String {
        switch self {
        case .begin: return "sync-begin"
        case .state: return "sync-state"
        case .list: return "sync-list"
        case .entries: return "sync-entries"
        case .ops: return "sync-ops"
        case .file: return "sync-file"
        case .commit: return "sync-commit"
        case .ack: return "sync-ack"
        case .done: return "sync-done"
        case .failed: return "sync-error"
        }
    }

    public var sync: UInt32 {
        switch self {
        case .begin(let begin): return begin.sync
        case .state(let sync, _, _), .list(let sync), .entries(let sync, _, _), .ops(let sync, _), .file(let sync, _),
             .commit(let sync), .ack(let sync, _), .done(let sync, _, _), .failed(let sync, _, _):
            return sync
        }
    }

    func encode(to encoder: JSONEncoder) throws -> Data {
        switch self {
        case .begin(let body): return try encoder.encode(SyncTyped(type: type, body: body))
        case .state(let sync, let rootHash, let entries):
            return try encoder.encode(SyncTyped(type: type, body: RootBody(sync: sync, rootHash: rootHash, entries: entries)))
        case .list(let sync), .commit(let sync): return try encoder.encode(SyncTyped(type: type, body: SyncRef(sync: sync)))
        case .entries(let sync, let entries, let last):
            return try encoder.encode(SyncTyped(type: type, body: EntriesBody(sync: sync, entries: entries, last: last)))
        case .ops(let sync, let ops): return try encoder.encode(SyncTyped(type: type, body: OpsBody(sync: sync, ops: ops)))
        case .file(let sync, let entry): return try encoder.encode(SyncTyped(type: type, body: FileBody(sync: sync, entry: entry)))
        case .ack(let sync, let applied): return try encoder.encode(SyncTyped(type: type, body: AckBody(sync: sync, applied: applied)))
        case .done(let sync, let rootHash, let entries):
            return try encoder.encode(SyncTyped(type: type, body: RootBody(sync: sync, rootHash: rootHash, entries: entries)))
        case .failed(let sync, let code, let message):
            return try encoder.encode(SyncTyped(type: type, body: FailedBody(sync: sync, code: code, message: message)))
        }
    }

    static func decode(type: String, data: Data, decoder: JSONDecoder) throws -> SyncMessage {
        switch type {
        case "sync-begin": return .begin(try decoder.decode(SyncBegin.self, from: data))
        case "sync-state":
            let body = try decoder.decode(RootBody.self, from: data)
            return .state(sync: body.sync, rootHash: body.rootHash, entries: body.entries)
        case "sync-list": return .list(sync: try decoder.decode(SyncRef.self, from: data).sync)
        case "sync-entries":
            let body = try decoder.decode(EntriesBody.self, from: data)
            return .entries(sync: body.sync, entries: body.entries, last: body.last)
        case "sync-ops":
            let body = try decoder.decode(OpsBody.self, from: data)
            return .ops(sync: body.sync, ops: body.ops)
        case "sync-file":
            let body = try decoder.decode(FileBody.self, from: data)
            return .file(sync: body.sync, entry: body.entry)
        case "sync-commit": return .commit(sync: try decoder.decode(SyncRef.self, from: data).sync)
        case "sync-ack":
            let body = try decoder.decode(AckBody.self, from: data)
            return .ack(sync: body.sync, applied: body.applied)
        case "sync-done":
            let body = try decoder.decode(RootBody.self, from: data)
            return .done(sync: body.sync, rootHash: body.rootHash, entries: body.entries)
        default:
            let body = try decoder.decode(FailedBody.self, from: data)
            return .failed(sync: body.sync, code: body.code, message: body.message)
        }
    }
}

/// Flow control of a sync: the leader keeps at most `window` cost units sent but not yet
/// acknowledged; the helper acknowledges every `ackEvery` units it has applied. A message
/// (`sync-file`, `sync-ops` per operation) costs `messageCost`, a data frame its payload size.
public enum SyncFlow {
    public static let window: Int64 = 8 << 20
    public static let ackEvery: Int64 = 1 << 20
    public static let messageCost: Int64 = 256
    /// File bytes per kind-3 frame.
    public static let chunk = 256 * 1024
    /// Entries per `sync-entries` / operations per `sync-ops` message (keeps each under 1 MiB).
    public static let batch = 1000
}

private struct SyncTyped<Body: Encodable>: Encodable {
    let type: String
    let body: Body

    private enum CodingKeys: String, CodingKey { case type }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(type, forKey: .type)
        try body.encode(to: encoder)
    }
}

private struct SyncRef: Codable { let sync: UInt32 }
private struct RootBody: Codable {
    let sync: UInt32
    let rootHash: String
    let entries: Int
}
private struct EntriesBody: Codable {
    let sync: UInt32
    let entries: [ManifestEntry]
    let last: Bool
}
private struct OpsBody: Codable {
    let sync: UInt32
    let ops: [SyncOpWire]
}
private struct FileBody: Codable {
    let sync: UInt32
    let entry: ManifestEntry
}
private struct AckBody: Codable {
    let sync: UInt32
    let applied: Int64
}
private struct FailedBody: Codable {
    let sync: UInt32
    let code: String
    let message: String
}

/// `sync-file` of a regular file — the message a first fence sends once per file, 50,000
/// times for the bench's tree — written and read here in exactly the bytes JSONEncoder gives
/// it (keys sorted, `/` unescaped). Through Codable it was about 30 % of the leader's and of
/// each helper's CPU in that fence (bench/fence). Anything else — a path or hash that would
/// need escaping, another shape — takes the Codable path, both ways.
enum SyncFileWire {
    static func encode(sync: UInt32, entry: ManifestEntry) -> [UInt8]? {
        guard entry.kind == .file, entry.path.utf8.allSatisfy(isPlain), entry.sha256.utf8.allSatisfy(isPlain) else { return nil }
        var text = #"{"entry":{"h":""#
        text.reserveCapacity(entry.path.utf8.count + 160)
        text += entry.sha256
        text += #"","p":""#
        text += entry.path
        text += #"","s":"#
        text += String(entry.size)
        text += #","t":"f""#
        if entry.executable { text += #","x":true"# }
        text += #"},"sync":"#
        text += String(sync)
        text += #","type":"sync-file"}"#
        return Array(text.utf8)
    }

    /// The message when `bytes` are exactly what `encode` writes; nil otherwise.
    static func decode(_ bytes: [UInt8]) -> SyncMessage? {
        var reader = Reader(bytes: bytes)
        guard reader.literal(#"{"entry":{"h":""#), let sha256 = reader.plainString(), reader.literal(#","p":""#),
              let path = reader.plainString(), reader.literal(#","s":"#), let size = reader.integer(),
              reader.literal(#","t":"f""#) else { return nil }
        let executable = reader.literal(#","x":true"#)
        guard reader.literal(#"},"sync":"#), let sync = reader.integer(), let sync32 = UInt32(exactly: sync),
              reader.literal(#","type":"sync-file"}"#), reader.atEnd else { return nil }
        return .file(sync: sync32, entry: ManifestEntry(path: path, kind: .file, executable: executable, size: size, sha256: sha256))
    }

    /// Bytes JSON writes as they are inside a string.
    static func isPlain(_ byte: UInt8) -> Bool { byte >= 0x20 && byte != 0x22 && byte != 0x5C }

    private struct Reader {
        let bytes: [UInt8]
        var at = 0

        var atEnd: Bool { at == bytes.count }

        mutating func literal(_ text: StaticString) -> Bool {
            let count = text.utf8CodeUnitCount
            guard bytes.count - at >= count else { return false }
            for index in 0..<count where bytes[at + index] != text.utf8Start[index] { return false }
            at += count
            return true
        }

        /// Up to the closing quote (consumed), when nothing in between needs an escape and it
        /// is valid UTF-8.
        mutating func plainString() -> String? {
            let start = at
            while at < bytes.count, bytes[at] != 0x22 {
                guard SyncFileWire.isPlain(bytes[at]) else { return nil }
                at += 1
            }
            guard at < bytes.count else { return nil }
            defer { at += 1 }
            return String(validating: bytes[start..<at], as: UTF8.self)
        }

        /// An integer as JSON writes it (no leading zeros), in Int64.
        mutating func integer() -> Int64? {
            let start = at
            if at < bytes.count, bytes[at] == UInt8(ascii: "-") { at += 1 }
            let digits = at
            while at < bytes.count, bytes[at] >= 0x30, bytes[at] <= 0x39 { at += 1 }
            guard at > digits, at - digits == 1 || bytes[digits] != 0x30 else { return nil }
            return Int64(String(decoding: bytes[start..<at], as: UTF8.self))
        }
    }
}
