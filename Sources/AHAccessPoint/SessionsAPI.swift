import AHAPI
import AHAuth
import AHEvents
import AHHTTPServer
import AHStore
import Foundation
import Logging
import NIOCore

/// `GET /api/v1/sessions`, `/api/v1/sessions/{id}/info` and `/api/v1/sessions/{id}/events`
/// (SSE, or a JSON page with `Accept: application/json`). Role ≥ viewer is checked by the
/// routes; here the ACL's `read` verb, applied to the session's leader executor, decides
/// which sessions the caller sees (one it may not see is answered like one that does not exist).
struct SessionsAPI: SessionsEndpoint {
    let store: StateStore
    let hub: SessionsHub
    let acl: AccessControlList
    let metrics: AccessPointMetrics
    let logger: Logger
    /// How long an SSE stream may stay silent before a heartbeat comment.
    var heartbeat: Duration = .seconds(15)

    static let defaultPage = 100
    static let maxPage = 1000

    func respond(to request: HTTPAPIRequest, claims: UserClaims) async -> HTTPAPIResponse {
        let parts = request.path.split(separator: "/", omittingEmptySubsequences: false).dropFirst(4)
        do {
            if parts.isEmpty { return try await list(claims: claims) }
            let id = String(parts.first!)
            guard EventsLimits.isValidSession(id) else {
                return .problem(.notFound("'\(id.prefix(64))' is not a session id"))
            }
            guard let session = try await store.session(id), try await visible(session, claims: claims) else {
                return .problem(.notFound("no session '\(id)' that '\(claims.subject)' may read"))
            }
            let resource = parts.count > 1 ? String(parts[parts.startIndex + 1]) : "info"
            switch resource {
            case "info" where parts.count <= 2: return try await info(session)
            case "events" where parts.count == 2:
                let since: Int64
                switch Self.since(request) {
                case .success(let value): since = value
                case .failure(let problem): return .problem(problem)
                }
                let types = request.queryItems.filter { $0.name == "type" }.flatMap { $0.value.split(separator: ",").map(String.init) }
                guard types.allSatisfy(EventsLimits.isValidType), types.count <= 32 else {
                    return .problem(.badRequest("type must name event types (letters, digits, '.', '-', '_'; at most 32 of them)"))
                }
                if Self.wantsJSON(request) { return try await page(session, since: since, types: types, request: request) }
                return stream(session, since: since, types: types)
            default:
                return .problem(.notFound("no such resource: \(request.path.prefix(200))"))
            }
        } catch {
            logger.error("reading sessions failed", metadata: ["error": "\(error)"])
            return .problem(.internalError("the session store is unavailable"))
        }
    }

    // MARK: Access

    private func visible(_ session: SessionRecord, claims: UserClaims) async throws -> Bool {
        try await visibility(claims: claims)(session)
    }

    /// A check per session for this caller; reads the executors' tags once.
    private func visibility(claims: UserClaims) async throws -> (SessionRecord) -> Bool {
        let tags = Dictionary(try await store.listExecutors().map { ($0.name, $0.tags) }, uniquingKeysWith: { a, _ in a })
        let acl = self.acl
        return { session in
            acl.decide(subject: claims.subject, role: claims.role, executor: session.leader, tags: tags[session.leader] ?? [:],
                       verb: .read).isAllowed
        }
    }

    // MARK: List and info

    private struct SessionItem: Encodable {
        let id: String
        let leader: String
        let status: String
        let startedAt: String
        let updatedAt: String
        let lastSeq: Int64
    }

    private func status(_ session: SessionRecord) -> String {
        if hub.hasUplink(session.id) { return "active" }
        return session.endedAt == nil ? "disconnected" : "ended"
    }

    private func item(_ session: SessionRecord) -> SessionItem {
        SessionItem(id: session.id, leader: session.leader, status: status(session), startedAt: ISO8601.string(from: session.startedAt),
                    updatedAt: ISO8601.string(from: session.updatedAt), lastSeq: session.lastSeq)
    }

    private func list(claims: UserClaims) async throws -> HTTPAPIResponse {
        let visible = try await visibility(claims: claims)
        struct Items: Encodable { let items: [SessionItem] }
        return .json(Items(items: try await store.sessions().filter(visible).map(item)))
    }

    /// Status, leader, followers (OS from the latest followersCatalog; path and health from
    /// each host's latest connect.path.* event), the latest fenceResult, and endpoints.
    private func info(_ session: SessionRecord) async throws -> HTTPAPIResponse {
        let catalog = try await store.latestEvents(session: session.id, types: ["followersCatalog"], limit: 1).first
        let paths = try await store.latestEvents(session: session.id,
                                                 types: ["connect.path.fixed", "connect.path.degraded", "connect.path.restored"],
                                                 limit: 10_000)
        let fence = try await store.latestEvents(session: session.id, types: ["fenceResult"], limit: 1).first
        var latestPath: [String: [String: Any]] = [:]
        for event in paths {  // newest first: the first one seen per host wins
            guard let object = Self.object(event.json), let host = object["host"] as? String, latestPath[host] == nil else { continue }
            latestPath[host] = object
        }
        var followers: [[String: Any]] = []
        let listed = (catalog.flatMap { Self.object($0.json) }?["followers"] as? [[String: Any]]) ?? []
        var names = listed.compactMap { $0["name"] as? String }
        names += latestPath.keys.filter { !names.contains($0) }.sorted()
        for name in names {
            let entry = listed.first { ($0["name"] as? String) == name }
            var row: [String: Any] = ["name": name, "os": entry?["os"] ?? NSNull()]
            if let tags = entry?["tags"] { row["tags"] = tags }
            if let path = latestPath[name] {
                let degraded = (path["type"] as? String) == "connect.path.degraded"
                row["health"] = degraded ? "degraded" : "ok"
                var view: [String: Any] = [:]
                for key in ["method", "target", "relay", "rttMs"] { if let value = path[key] { view[key] = value } }
                row["path"] = view
            } else {
                row["health"] = "unknown"
                row["path"] = NSNull()
            }
            followers.append(row)
        }
        let base = "\(HTTPAPIRoutes.sessionsPathForAPI)/\(session.id)"
        let document: [String: Any] = [
            "id": session.id, "leader": session.leader, "status": status(session),
            "startedAt": ISO8601.string(from: session.startedAt), "updatedAt": ISO8601.string(from: session.updatedAt),
            "lastSeq": session.lastSeq, "followers": followers,
            "lastFence": fence.flatMap { Self.object($0.json) } ?? NSNull(),
            "endpoints": ["info": base + "/info", "events": base + "/events"],
        ]
        let body = try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes])
        return HTTPAPIResponse(status: .ok, headers: ["content-type": "application/json", "cache-control": "no-store"], body: Array(body))
    }

    private static func object(_ json: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any]
    }

    // MARK: Events

    /// `Last-Event-ID` (an SSE client's resume) or `?since=`: events after that seq.
    static func since(_ request: HTTPAPIRequest) -> Result<Int64, Problem> {
        let header = request.headers.first(name: "last-event-id")
        guard let text = header ?? request.query("since") else { return .success(0) }
        guard let value = Int64(text.trimmingCharacters(in: .whitespaces)), value >= 0 else {
            let name = header == nil ? "since" : "Last-Event-ID"
            return .failure(.badRequest("\(name) '\(text.prefix(40))' must be an event seq (a whole number ≥ 0)"))
        }
        return .success(value)
    }

    static func wantsJSON(_ request: HTTPAPIRequest) -> Bool {
        let accept = request.headers[canonicalForm: "accept"].map { $0.lowercased() }
        return accept.contains { $0.hasPrefix("application/json") } && !accept.contains { $0.hasPrefix("text/event-stream") }
    }

    private func page(_ session: SessionRecord, since: Int64, types: [String], request: HTTPAPIRequest) async throws -> HTTPAPIResponse {
        var limit = Self.defaultPage
        if let text = request.query("limit") {
            guard let value = Int(text), (1...Self.maxPage).contains(value) else {
                return .problem(.badRequest("limit '\(text.prefix(40))' must be a whole number from 1 to \(Self.maxPage)"))
            }
            limit = value
        }
        let events = try await store.events(session: session.id, after: since, types: types, limit: limit)
        var body = Array(#"{"items":["#.utf8)
        for (index, event) in events.enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            body += Array(event.json.utf8)
        }
        body += Array(#"],"lastSeq":\#(session.lastSeq),"next":"#.utf8)
        if events.count == limit, let last = events.last {
            var next = "\(HTTPAPIRoutes.sessionsPathForAPI)/\(session.id)/events?since=\(last.seq)&limit=\(limit)"
            for type in types { next += "&type=\(type)" }
            body += Array("\"\(next)\"}".utf8)
        } else {
            body += Array("null}".utf8)
        }
        return HTTPAPIResponse(status: .ok, headers: ["content-type": "application/json", "cache-control": "no-store"], body: body)
    }

    /// The SSE stream: history from the store up to the point the live subscription took
    /// over, then live events as they are stored; each seq exactly once.
    private func stream(_ session: SessionRecord, since: Int64, types: [String]) -> HTTPAPIResponse {
        let store = self.store
        let hub = self.hub
        let gauge = metrics.sseConsumers
        let heartbeat = self.heartbeat
        let wanted = Set(types)
        let id = session.id
        return HTTPAPIResponse(
            status: .ok,
            headers: ["content-type": "text/event-stream", "cache-control": "no-store", "x-accel-buffering": "no"],
            stream: HTTPResponseStream { writer in
                gauge.increment()
                defer { gauge.decrement() }
                let subscriber = SessionSubscriber(session: id)
                // Registered on the store's worker: the history is exactly what is stored up to
                // `last`, and the subscriber gets every event stored after it.
                let last = try await store.subscribe(session: id) { last in
                    hub.add(subscriber)
                    return last ?? 0
                }
                defer { hub.remove(subscriber) }
                try await writer.write("retry: 1000\n: session \(id)\n\n")
                var cursor = since
                while cursor < last {
                    let page = try await store.events(session: id, after: cursor, upTo: last, types: types, limit: 1000)
                    guard let end = page.last else { break }
                    try await Self.write(page.map(SSEEvent.init), to: writer)
                    cursor = end.seq
                }
                cursor = max(cursor, last)
                while !Task.isCancelled {
                    switch await subscriber.next(idle: heartbeat) {
                    case .events(let events):
                        let fresh = events.filter { $0.seq > cursor && (wanted.isEmpty || wanted.contains($0.type)) }
                        if let end = events.last { cursor = max(cursor, end.seq) }
                        try await Self.write(fresh, to: writer)
                    case .idle:
                        try await writer.write(": keep-alive\n\n")
                    case .overflow:
                        try await writer.write(": this consumer fell too far behind; reconnect with Last-Event-ID: \(cursor)\n\n")
                        return
                    }
                }
            })
    }

    private static func write(_ events: [SSEEvent], to writer: HTTPBodyWriter) async throws {
        guard !events.isEmpty else { return }
        var buffer = writer.allocator.buffer(capacity: events.reduce(0) { $0 + $1.bytes.count })
        for event in events { buffer.writeBytes(event.bytes) }
        try await writer.write(buffer)
    }
}

extension HTTPAPIRoutes {
    static var sessionsPathForAPI: String { "/api/v1/sessions" }
}
