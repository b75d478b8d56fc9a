import AHEvents
import AHStore
import Foundation
import AHQUIC
import Logging
import NIOCore

/// What the access point does with a leader's uplink requests: stores events (each
/// (session, seq) once), enforces that a session is written only by its leader (the
/// executor that sent its first event), and publishes what was stored to the live hub.
struct SessionsIngest: Sendable {
    let store: StateStore
    let hub: SessionsHub
    let known: KnownExecutors
    let metrics: AccessPointMetrics
    let logger: Logger

    /// The answer to one request of executor `leader` (whose certificate key hashes to `keyHash`).
    func handle(_ request: EventsRequest, leader: String, keyHash: [UInt8]) async -> EventsReply {
        let session: String
        switch request {
        case .open(let id), .end(let id): session = id
        case .batch(let id, _): session = id
        }
        // A revocation while the uplink is open takes effect at the next request.
        if let refusal = known.refusal(name: leader, keyHash: keyHash) {
            return .refused(EventsRefused(session: session, code: "not-owner", message: refusal))
        }
        do {
            let outcome: EventAppendOutcome
            switch request {
            case .open:
                outcome = try await store.openSession(session, leader: leader)
            case .end:
                outcome = try await store.endSession(session, leader: leader)
            case .batch(_, let events):
                let stored = events.map { StoredEvent(session: session, seq: $0.seq, type: $0.type, ts: $0.ts, json: $0.json) }
                let hub = self.hub
                let counter = metrics.eventsIngested
                outcome = try await store.appendEvents(session, leader: leader, events: stored) { fresh in
                    counter.increment(by: fresh.count)
                    hub.publish(fresh)
                }
            }
            switch outcome {
            case .stored(let last):
                return .ack(EventsAck(session: session, seq: last))
            case .notOwner(let owner):
                logger.warning("refused events for a session led by another executor",
                               metadata: ["session": "\(session)", "sender": "\(leader)", "leader": "\(owner)"])
                return .refused(EventsRefused(session: session, code: "not-owner",
                                              message: "session \(session) is led by executor \(owner), not \(leader)"))
            case .gap(let expected, let got):
                return .refused(EventsRefused(session: session, code: "gap",
                                              message: "the batch starts at seq \(got) but the next stored seq must be \(expected)"))
            }
        } catch {
            logger.error("cannot store leader events", metadata: ["session": "\(session)", "error": "\(error)"])
            return .refused(EventsRefused(session: session, code: "unavailable", message: "the access point cannot store events right now"))
        }
    }
}

extension AccessPointServer {
    /// A stream on an `ah-events/1` connection: the leader's uplink for its sessions.
    static func initializeUplink(_ stream: QUICStreamChannel, ingest: SessionsIngest) -> EventLoopFuture<Void> {
        let connection = stream.connection
        guard let name = connection.peerIdentity?.segments().last, let keyHash = connection.verifiedPeer?.publicKeySHA256 else {
            return stream.close()
        }
        return stream.eventLoop.makeCompletedFuture {
            try stream.pipeline.syncOperations.addHandler(SessionsUplinkHandler(leader: name, keyHash: keyHash, ingest: ingest))
        }
    }
}
