import Foundation

// The sync fence's and time travel's requests and `--json` shapes (shared/cli.md):
//     sync-fence: {"snapshotId":"sha256:HEX","hosts":[{"name","state":"consistent|timeout|error","rootHash","tookMs","error"}]}
//     moments:    {"moments":[{"id","ts","label","snapshotId"}]}

/// `followers sync-fence`: which followers, and the per-follower deadline.
public struct FenceRequest: Codable, Sendable, Equatable {
    public var hosts: [String] = []
    public var tags: [String] = []
    public var all = false
    /// Per-follower deadline in seconds (nil: `[fleet.sync] timeout`).
    public var timeoutSeconds: Double?

    public init() {}
}

public struct FenceReport: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable { case consistent, timeout, error }

    public struct Host: Codable, Sendable, Equatable {
        public var name: String
        public var state: State
        /// The follower's root hash after the sync (nil when it never answered).
        public var rootHash: String?
        public var tookMs: Int
        public var error: String?

        enum CodingKeys: String, CodingKey { case name, state, rootHash, tookMs, error }

        /// `rootHash` and `error` are `null` when absent (cli.md lists them), not left out.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try container.encode(state, forKey: .state)
            try container.encode(rootHash, forKey: .rootHash)
            try container.encode(tookMs, forKey: .tookMs)
            try container.encode(error, forKey: .error)
        }
    }

    public var snapshotId: String
    public var hosts: [Host]
    /// Files and bytes in the snapshot, and how many the scan had to read (extra keys).
    public var files: Int?
    public var bytes: Int64?
    public var scanMs: Int?

    /// cli.md: 0 every follower consistent; 1 any not.
    public var exitCode: Int32 { hosts.allSatisfy { $0.state == .consistent } ? 0 : 1 }

    public var laggards: [String] { hosts.filter { $0.state != .consistent }.map(\.name) }
}

public struct MomentsReport: Codable, Sendable, Equatable {
    public struct Moment: Codable, Sendable, Equatable {
        public var id: String
        public var ts: String
        public var label: String
        /// The snapshot the workspace was in (post-fence and seek moments); null before a fence.
        public var snapshotId: String?

        enum CodingKeys: String, CodingKey { case id, ts, label, snapshotId }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(ts, forKey: .ts)
            try container.encode(label, forKey: .label)
            try container.encode(snapshotId, forKey: .snapshotId)
        }
    }

    public var moments: [Moment]
}

/// `followers seek MOMENT_ID`: the workspace saved first, then restored, then fenced.
public struct SeekReport: Codable, Sendable, Equatable {
    public var moment: String
    /// The snapshot the workspace was saved as before the seek (restorable by seeking to `savedMoment`).
    public var savedSnapshotId: String
    public var savedMoment: String
    public var fence: FenceReport
}
