import AHAPI
import AHStore
import Foundation

// Here rather than in AHAPI: the wire types stay free of the store, so clients of the API
// do not link it.
extension ExecutorView {
    /// The view of a stored record in `state`; `lastSeen` may come from the live registry,
    /// which knows more recent heartbeats than were written to the store.
    public init(record: ExecutorRecord, state: ExecutorState, lastSeen: Date? = nil) {
        self.init(name: record.name, spiffeId: record.spiffeID, state: state, tags: record.tags,
                  certNotAfter: record.certNotAfter.map(ISO8601.string(from:)),
                  lastSeen: (lastSeen ?? record.lastSeen).map(ISO8601.string(from:)))
    }
}
