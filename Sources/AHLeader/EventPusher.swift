import AHEvents
import AHQUIC
import AHSPIFFE
import AHStore
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Where the uplink goes and as whom: read from the leader executor's own state directory
/// (`[fleet] agent_state_dir`, the `ah agent enroll --state-dir` of this machine), where
/// the agent records its access point (`access-point.json`) next to its identity.
public struct EventUplinkTarget: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var certFile: String
    public var keyFile: String
    public var caFile: String
    public var trustDomain: String

    public init(host: String, port: Int, certFile: String, keyFile: String, caFile: String, trustDomain: String) {
        self.host = host
        self.port = port
        self.certFile = certFile
        self.keyFile = keyFile
        self.caFile = caFile
        self.trustDomain = trustDomain
    }

    private struct Record: Decodable {
        var host: String
        var port: Int
        var certFile: String
        var keyFile: String
        var caFile: String
    }

    private struct Identity: Decodable {
        var trustDomain: String
    }

    /// Reads `access-point.json` and `identity.json` of an executor state directory; the
    /// error names the file and what to do.
    public static func load(stateDirectory: String) throws -> EventUplinkTarget {
        let directory = URL(fileURLWithPath: stateDirectory)
        let recordURL = directory.appendingPathComponent("access-point.json")
        let identityURL = directory.appendingPathComponent("identity.json")
        guard let recordData = FileManager.default.contents(atPath: recordURL.path) else {
            throw LeaderFailure(exitCode: 2, """
                agent_state_dir '\(stateDirectory)' has no access-point.json: run `ah agent enroll --state-dir \(stateDirectory)` \
                on this machine first (the leader pushes its events under that executor's identity)
                """)
        }
        guard let record = try? JSONDecoder().decode(Record.self, from: recordData) else {
            throw LeaderFailure(exitCode: 2, "\(recordURL.path) is not an access point record written by `ah agent enroll`")
        }
        let identity: Identity
        do {
            identity = try JSONDecoder().decode(Identity.self, from: try Data(contentsOf: identityURL))
        } catch {
            // `--identity files`: the trust domain comes from the executor's certificate; the
            // agent's state directory then still has identity.json only if it enrolled.
            throw LeaderFailure(exitCode: 2, "agent_state_dir '\(stateDirectory)' has no readable identity.json (enroll that executor first)")
        }
        return EventUplinkTarget(host: record.host, port: record.port, certFile: record.certFile, keyFile: record.keyFile,
                                 caFile: record.caFile, trustDomain: identity.trustDomain)
    }
}

/// The leader's uplink: pushes the journal to the access point over QUIC (ALPN
/// `ah-events/1`) under the leader executor's identity, at least once: it asks the access
/// point where each session stands (`events-open` → last stored seq), sends what follows in
/// batches and waits for each `events-ack` before the next. Acknowledged positions are kept
/// in the journal file (`delivery`), so after a restart of either side it resumes from the
/// last acknowledged seq and nothing is lost or reordered. While the access point is away,
/// events stay in the journal (bounded, see `JournalQueue`) and drain when it is back.
public final class EventPusher: Sendable {
    public struct Settings: Sendable {
        /// Events of the current session that may wait unacknowledged before new ones are left
        /// out (with a warning and an `eventsDropped` event later).
        public var maxUnacknowledged: Int64 = 1_000_000
        public var maxBatchEvents = 512
        public var maxBatchBytes = 1024 * 1024
        /// Batches sent before the first of them is acknowledged (the access point reads
        /// them one at a time; QUIC flow control bounds what waits).
        public var maxInFlight = 4
        /// Reconnect delays: from `minBackoff`, doubling to `maxBackoff`.
        public var minBackoff: Duration = .milliseconds(200)
        public var maxBackoff: Duration = .seconds(5)
        /// How long to wait for an answer to one request.
        public var answerTimeout: Duration = .seconds(15)

        public init() {}
    }

    let journal: EventJournal
    let target: EventUplinkTarget
    let settings: Settings
    let logger: Logger
    private let task = NIOLockedValueBox<Task<Void, Never>?>(nil)
    private let stopping = NIOLockedValueBox(false)
    /// Sessions the access point refused for good (another executor leads them).
    private let abandoned = NIOLockedValueBox<Set<String>>([])
    private let delivered = NIOLockedValueBox<[String: Int64]>([:])

    public init(journal: EventJournal, target: EventUplinkTarget, settings: Settings = Settings(), logger: Logger) throws {
        self.journal = journal
        self.target = target
        self.settings = settings
        self.logger = logger
        try journal.database.withConnection { connection in
            try connection.executeScript("""
                CREATE TABLE IF NOT EXISTS delivery (
                    session TEXT PRIMARY KEY,
                    acked INTEGER NOT NULL
                );
                """)
        }
        let acked = try journal.database.withConnection { connection in
            try connection.queryFirst("SELECT acked FROM delivery WHERE session = ?", [journal.session]) { try $0.int64(0) }
        }
        journal.queue.acknowledged(acked ?? 0)
        journal.queue.setLimit(settings.maxUnacknowledged)
    }

    /// Starts pushing in the background.
    public func start() {
        task.withLockedValue { task in
            guard task == nil else { return }
            task = Task { await self.run() }
        }
    }

    /// Whether the access point refused `session` for good (another executor leads it).
    public func refused(_ session: String) -> Bool { abandoned.withLockedValue { $0.contains(session) } }

    /// The highest seq of the current session written to the journal file.
    public var journaled: Int64 { journal.queue.lastWritten }

    /// The highest seq of the current session the access point acknowledged.
    public var acknowledged: Int64 { delivered.withLockedValue { $0[journal.session] ?? 0 } }

    /// Delivers what it can within `grace` (then tells the access point the session ended)
    /// and stops. Events not delivered stay in the journal for the next start.
    public func stop(grace: Duration = .seconds(3)) async {
        stopping.withLockedValue { $0 = true }
        journal.queue.appended.ring()
        guard let running = task.withLockedValue({ $0 }) else { return }
        let timer = Task {
            try? await Task.sleep(for: grace)
            if !Task.isCancelled { running.cancel() }
        }
        await running.value
        timer.cancel()
    }

    private var isStopping: Bool { stopping.withLockedValue { $0 } }

    private func run() async {
        var backoff = settings.minBackoff
        var failing = false
        while !Task.isCancelled {
            do {
                try await connectAndPush()
                return
            } catch {
                if Task.isCancelled { return }
                if isStopping {
                    logger.info("event uplink stopped with events still undelivered; they stay in the journal", metadata: [
                        "session": "\(journal.session)", "error": "\(error)"])
                    return
                }
                if !failing {
                    logger.warning("the access point is not reachable for events; they stay in the journal and are sent when it is back",
                                   metadata: ["accessPoint": "\(target.host):\(target.port)", "error": "\(error)"])
                    failing = true
                }
                let wait = backoff
                backoff = min(backoff * 2, settings.maxBackoff)
                try? await Task.sleep(for: wait)
            }
        }
    }

    private func connectAndPush() async throws {
        var quic = QUICConfiguration(
            identity: TLSIdentity(certFile: target.certFile, keyFile: target.keyFile, caFile: target.caFile),
            peerPolicy: .exact(try SPIFFEID.accessPoint(trustDomain: target.trustDomain)))
        quic.alpn = eventsALPN
        let connection = try await QUICClient.connect(host: target.host, port: target.port, configuration: quic,
                                                      group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        defer { connection.close(applicationErrorCode: 0, reason: isStopping ? "leader stopping" : "uplink closing") }
        let replies = EventsReplyHandler()
        let stream = try await connection.openStream { stream in
            stream.eventLoop.makeCompletedFuture { try stream.pipeline.syncOperations.addHandler(replies) }
        }.get()
        var answers = replies.replies.makeAsyncIterator()
        let uplink = Uplink(stream: stream, timeout: settings.answerTimeout)
        logger.info("event uplink connected", metadata: ["accessPoint": "\(target.host):\(target.port)"])
        // Earlier sessions of this journal with events the access point may not have yet.
        for session in try await pendingSessions() where session != journal.session {
            try await drain(session, uplink: uplink, answers: &answers, opened: false)
        }
        var opened = false
        while true {
            let seen = journal.queue.appended.rings
            opened = try await drain(journal.session, uplink: uplink, answers: &answers, opened: opened)
            if isStopping {
                if opened, !abandoned.withLockedValue({ $0.contains(journal.session) }) {
                    _ = try await uplink.ask(EventsEnd(session: journal.session), answers: &answers)
                }
                return
            }
            await journal.queue.appended.wait(beyond: seen, timeout: .seconds(5))
        }
    }

    /// Sends every journaled event of `session` the access point lacks; returns true once
    /// the session is open on this stream.
    @discardableResult
    private func drain(_ session: String, uplink: Uplink, answers: inout AsyncThrowingStream<EventsReply, any Error>.AsyncIterator,
                       opened: Bool) async throws -> Bool {
        if abandoned.withLockedValue({ $0.contains(session) }) { return opened }
        var acked: Int64
        if opened {
            acked = delivered.withLockedValue { $0[session] ?? 0 }
        } else {
            guard let answer = try await accept(try await uplink.ask(EventsOpen(session: session), answers: &answers), session) else {
                return false
            }
            acked = answer
            try await record(session, acked: acked)
        }
        // Up to `maxInFlight` batches go out before the first ack comes back, so reading the
        // journal and the access point's commit overlap instead of taking turns.
        var sent = acked
        var inFlight = 0
        while true {
            if inFlight < settings.maxInFlight {
                let records = try await journal.records(session: session, after: sent, limit: settings.maxBatchEvents,
                                                        maxBytes: settings.maxBatchBytes)
                if let last = records.last {
                    try await uplink.send(batch: EventsBatch(session: session, count: records.count), records.map { Self.body(of: $0) })
                    sent = last.seq
                    inFlight += 1
                    continue
                }
            }
            guard inFlight > 0 else { return true }
            guard let answer = try await accept(try await uplink.answer(&answers), session) else { return true }
            inFlight -= 1
            acked = answer
            try await record(session, acked: acked)
        }
    }

    /// The acknowledged seq, or nil when the access point refused the session for good.
    private func accept(_ reply: EventsReply, _ session: String) async throws -> Int64? {
        switch reply {
        case .ack(let ack):
            guard ack.session == session else { throw EventsProtocolError.malformed("an ack for session \(ack.session) answered \(session)") }
            return ack.seq
        case .refused(let refusal) where refusal.code == "not-owner":
            logger.error("the access point refuses this leader's events for the session: \(refusal.message)",
                         metadata: ["session": "\(session)"])
            abandoned.withLockedValue { _ = $0.insert(session) }
            if session == journal.session { journal.queue.setLimit(nil) }
            return nil
        case .refused(let refusal):
            throw refusal
        }
    }

    private func record(_ session: String, acked: Int64) async throws {
        delivered.withLockedValue { $0[session] = acked }
        if session == journal.session { journal.queue.acknowledged(acked) }
        let database = journal.database
        journal.worker.enqueue("delivery of \(session)") {
            _ = try database.withConnection { connection in
                try connection.execute("""
                    INSERT INTO delivery (session, acked) VALUES (?, ?)
                    ON CONFLICT(session) DO UPDATE SET acked = MAX(acked, excluded.acked)
                    """, [session, acked])
            }
        }
    }

    /// Sessions whose last journaled seq is above what the access point acknowledged.
    private func pendingSessions() async throws -> [String] {
        let database = journal.database
        return try await journal.worker.run {
            try database.withConnection { connection in
                try connection.query("""
                    SELECT e.session FROM (SELECT session, MAX(seq) AS last FROM events GROUP BY session) e
                    LEFT JOIN delivery d ON d.session = e.session WHERE e.last > COALESCE(d.acked, 0)
                    """) { try $0.string(0) }
            }
        }
    }

    /// An event's JSON for the wire; one over the frame bound goes as its envelope with
    /// `truncated: true` (the seq must still arrive, or every later one would be refused).
    static func body(of record: LeaderEventRecord) -> [UInt8] {
        let bytes = Array(record.json.utf8)
        guard bytes.count > EventsLimits.maxFrameBytes else { return bytes }
        let stub: [String: JSONValue] = ["type": .string(record.type), "seq": .number(Double(record.seq)), "ts": .string(record.ts),
                                         "session": .string(record.session), "truncated": .bool(true),
                                         "originalBytes": .int(bytes.count)]
        return Array(JSONValue.object(stub).encoded.utf8)
    }
}

/// One uplink stream: writes a request and waits for its answer.
private struct Uplink: Sendable {
    let stream: QUICStreamChannel
    let timeout: Duration

    func ask<T: Encodable>(_ message: T, answers: inout AsyncThrowingStream<EventsReply, any Error>.AsyncIterator) async throws -> EventsReply {
        var buffer = stream.allocator.buffer(capacity: 256)
        try EventsFraming.encode(message, into: &buffer)
        try await stream.writeAndFlush(buffer).get()
        return try await answer(&answers)
    }

    /// Sends a batch without waiting for its answer (`answer` reads answers in order).
    func send(batch: EventsBatch, _ bodies: [[UInt8]]) async throws {
        var buffer = stream.allocator.buffer(capacity: bodies.reduce(256) { $0 + 4 + $1.count })
        try EventsFraming.encode(batch, into: &buffer)
        for body in bodies { EventsFraming.frame(body, into: &buffer) }
        try await stream.writeAndFlush(buffer).get()
    }

    func answer(_ answers: inout AsyncThrowingStream<EventsReply, any Error>.AsyncIterator) async throws -> EventsReply {
        let stream = self.stream
        let timer = Task {
            try? await Task.sleep(for: timeout)
            if !Task.isCancelled { stream.close(promise: nil) }
        }
        defer { timer.cancel() }
        guard let reply = try await answers.next() else {
            throw EventsProtocolError.malformed("the access point closed the event stream")
        }
        return reply
    }
}

extension EventJournal {
    /// Events of `session` after `seq`, in order: at most `limit`, and no more than
    /// `maxBytes` of JSON (but always at least one).
    func records(session: String, after seq: Int64, limit: Int, maxBytes: Int) async throws -> [LeaderEventRecord] {
        let database = self.database
        return try await worker.run {
            try database.withConnection { connection in
                let statement = try connection.prepare("SELECT seq, ts, type, data FROM events WHERE session = ? AND seq > ? ORDER BY seq LIMIT ?")
                try statement.bind([session, seq, limit])
                var records: [LeaderEventRecord] = []
                var bytes = 0
                while try statement.step() {
                    let row = statement.row
                    let record = LeaderEventRecord(session: session, seq: try row.int64(0), ts: try row.string(1),
                                                   type: try row.string(2), json: try row.string(3))
                    bytes += record.json.utf8.count
                    if bytes > maxBytes, !records.isEmpty { break }
                    records.append(record)
                }
                return records
            }
        }
    }
}
