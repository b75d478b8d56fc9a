import AHStore
import Foundation
import NIOConcurrencyHelpers

/// An in-memory view of enrolled executors (key fingerprint, revocation) that the QUIC
/// handshake consults synchronously on the event loop. Refreshed from the store on a short
/// period (so `ah executors revoke`, run as a separate process against the same state file,
/// takes effect within a second) and updated at once by this process's own changes.
public final class KnownExecutors: Sendable {
    public struct Entry: Sendable, Equatable {
        public var publicKeySHA256: [UInt8]
        public var revoked: Bool
        /// Registered from a bring-your-own certificate: its operator rotates keys, so a
        /// new key (in a certificate from our CA) replaces the recorded one.
        public var bringYourOwn: Bool = false
    }

    /// The tag that marks an executor registered from `--identity files`.
    public static let identityTag = ("identity", "files")

    private let entries = NIOLockedValueBox<[String: Entry]>([:])

    public init() {}

    public func replaceAll(with records: [ExecutorRecord]) -> (newlyRevoked: [String], all: [String: Entry]) {
        let fresh = Dictionary(uniqueKeysWithValues: records.map {
            ($0.name, Entry(publicKeySHA256: $0.publicKeySHA256, revoked: $0.isRevoked,
                            bringYourOwn: $0.tags[Self.identityTag.0] == Self.identityTag.1))
        })
        return entries.withLockedValue { current in
            let newlyRevoked = fresh.filter { name, entry in entry.revoked && current[name]?.revoked != true }.map(\.key)
            current = fresh
            return (newlyRevoked, fresh)
        }
    }

    public func update(_ name: String, _ entry: Entry) {
        entries.withLockedValue { $0[name] = entry }
    }

    public func entry(_ name: String) -> Entry? {
        entries.withLockedValue { $0[name] }
    }

    /// Why a peer presenting `name` with key `keyHash` must be refused, or nil. A name we
    /// have no record of is allowed: its certificate chains to our CA, so our CA (or its
    /// operator, for bring-your-own certificates) issued it; it is recorded on connection.
    public func refusal(name: String, keyHash: [UInt8]) -> String? {
        guard let entry = entry(name) else { return nil }
        if entry.revoked { return "identity revoked" }
        if entry.publicKeySHA256 != keyHash && !entry.bringYourOwn { return "certificate key does not match the enrolled key" }
        return nil
    }
}
