import Foundation

// The slurp messages of the follower helper protocol (docs/protocol.md, "Slurp: sending a
// file set"): the leader asks for one file set with `slurp-start`; the helper answers with,
// per file, `slurp-file`, the file's bytes in kind-4 frames and `slurp-file-end` (its
// SHA-256), then one `slurp-end`. Every type starts with `slurp-`.

/// `slurp-start` (leader → helper): send the files of one set, relative to `root`.
public struct SlurpStart: Codable, Sendable, Equatable {
    /// 1 … 2³²−1, unique among this connection's running jobs and slurps.
    public var job: UInt32
    /// The set's name (for logs and errors only).
    public var name: String
    /// Workspace-relative paths and globs (`*`, `?`, `[...]`, `**`); a directory means its tree.
    public var include: [String]
    /// Removed from what `include` matched; a pattern without `/` matches a name at any depth.
    public var exclude: [String]
    /// The workspace; nil: the helper's working directory.
    public var root: String?

    public init(job: UInt32, name: String, include: [String], exclude: [String] = [], root: String? = nil) {
        self.job = job
        self.name = name
        self.include = include
        self.exclude = exclude
        self.root = root
    }
}

/// `slurp-file` (helper → leader): the next file; its `size` bytes follow in kind-4 frames.
public struct SlurpFileHeader: Codable, Sendable, Equatable {
    public var job: UInt32
    /// Relative to the workspace, `/`-separated, no `.`/`..`/empty segments.
    public var path: String
    public var size: Int64
    /// Permission bits (`st_mode & 0o7777`).
    public var mode: UInt32
    /// Modification time in nanoseconds since the Unix epoch.
    public var mtimeNanos: Int64
    /// How the data frames are encoded: `identity` (the only one this version sends).
    public var encoding: String

    public init(job: UInt32, path: String, size: Int64, mode: UInt32, mtimeNanos: Int64, encoding: String = "identity") {
        self.job = job
        self.path = path
        self.size = size
        self.mode = mode
        self.mtimeNanos = mtimeNanos
        self.encoding = encoding
    }
}

/// `slurp-file-end` (helper → leader): the file's SHA-256 as the sender read it, or why it
/// could not be sent whole (then the receiver drops it).
public struct SlurpFileEnd: Codable, Sendable, Equatable {
    public var job: UInt32
    /// Lower-case hex SHA-256 of the bytes sent; nil with `error`.
    public var sha256: String?
    public var error: String?

    public init(job: UInt32, sha256: String?, error: String? = nil) {
        self.job = job
        self.sha256 = sha256
        self.error = error
    }
}

/// A path the sender left out, and why (a symlink leaving the workspace, a special file).
public struct SlurpSkipped: Codable, Sendable, Equatable {
    public var path: String
    public var reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
}

/// `slurp-end` (helper → leader): the set is done (or was refused as a whole: `error`).
public struct SlurpEnd: Codable, Sendable, Equatable {
    public var job: UInt32
    public var files: Int
    public var bytes: Int64
    public var skipped: [SlurpSkipped]
    /// Set when the request was refused (an absolute or `..` pattern, no such workspace) or
    /// the walk failed; the files sent before it (if any) are not a complete set.
    public var error: String?
    /// `bad-request` (refused), `failed` (failed while sending), `cancelled`.
    public var code: String?

    public init(job: UInt32, files: Int, bytes: Int64, skipped: [SlurpSkipped] = [], error: String? = nil, code: String? = nil) {
        self.job = job
        self.files = files
        self.bytes = bytes
        self.skipped = skipped
        self.error = error
        self.code = code
    }
}

/// The slurp messages, carried in `HelperMessage.slurp`.
public enum SlurpMessage: Sendable, Equatable {
    case start(SlurpStart)
    case file(SlurpFileHeader)
    case fileEnd(SlurpFileEnd)
    case end(SlurpEnd)
    /// `slurp-cancel` (leader → helper): stop sending `job` (a `slurp-end` with code `cancelled` follows).
    case cancel(job: UInt32)

    public static let types: Set<String> = ["slurp-start", "slurp-file", "slurp-file-end", "slurp-end", "slurp-cancel"]

    public var type: String {
        switch self {
        case .start: return "slurp-start"
        case .file: return "slurp-file"
        case .fileEnd: return "slurp-file-end"
        case .end: return "slurp-end"
        case .cancel: return "slurp-cancel"
        }
    }

    public var job: UInt32 {
        switch self {
        case .start(let start): return start.job
        case .file(let file): return file.job
        case .fileEnd(let end): return end.job
        case .end(let end): return end.job
        case .cancel(let job): return job
        }
    }

    /// The message's fields with `type` added, as HelperMessage encodes every message.
    func encode(to encoder: JSONEncoder) throws -> Data {
        switch self {
        case .start(let body): return try encoder.encode(SlurpTyped(type: type, body: body))
        case .file(let body): return try encoder.encode(SlurpTyped(type: type, body: body))
        case .fileEnd(let body): return try encoder.encode(SlurpTyped(type: type, body: body))
        case .end(let body): return try encoder.encode(SlurpTyped(type: type, body: body))
        case .cancel(let job): return try encoder.encode(SlurpTyped(type: type, body: SlurpJobRef(job: job)))
        }
    }

    /// Decodes a message whose `type` is one of `types`.
    static func decode(type: String, data: Data, decoder: JSONDecoder) throws -> SlurpMessage {
        switch type {
        case "slurp-start": return .start(try decoder.decode(SlurpStart.self, from: data))
        case "slurp-file": return .file(try decoder.decode(SlurpFileHeader.self, from: data))
        case "slurp-file-end": return .fileEnd(try decoder.decode(SlurpFileEnd.self, from: data))
        case "slurp-end": return .end(try decoder.decode(SlurpEnd.self, from: data))
        default: return .cancel(job: try decoder.decode(SlurpJobRef.self, from: data).job)
        }
    }
}

private struct SlurpJobRef: Codable { let job: UInt32 }

/// `type` plus the body's fields in one flat object.
private struct SlurpTyped<Body: Encodable>: Encodable {
    let type: String
    let body: Body

    private enum CodingKeys: String, CodingKey { case type }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(type, forKey: .type)
        try body.encode(to: encoder)
    }
}
