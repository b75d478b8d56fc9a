import AHLeader
import AHTestSupport
import Foundation
import Logging
import XCTest

/// A real `ah serve` with real enrolled executors, a leader journal + uplink driven through
/// the AHLeader library (the code the leader service runs), and SSE read by curl.
final class SessionEventsFixture {
    let tunnels: TunnelFixture
    var viewer = ""
    let logger = Logger(label: "test.events")

    init(serveArguments: [String] = []) throws {
        tunnels = try TunnelFixture(serveArguments: serveArguments)
    }

    func start(executors: [String]) async throws {
        try await tunnels.start()
        for name in executors { try await tunnels.addExecutor(name) }
        viewer = try await tunnels.userToken("watcher", role: "viewer").jwt
    }

    func stop() async { await tunnels.stop() }

    func stateDirectory(_ executor: String) -> String { tunnels.directory.file("agent-\(executor)").path }

    /// A leader's journal (a file of its own per `name`) and its uplink as `executor`.
    func leader(_ executor: String, session: String, journal name: String = "journal",
                settings: EventPusher.Settings = EventPusher.Settings()) throws -> (EventJournal, EventPusher) {
        let journal = try EventJournal(path: tunnels.directory.file("\(name).sqlite").path, session: session, logger: logger)
        let target = try EventUplinkTarget.load(stateDirectory: stateDirectory(executor))
        return (journal, try EventPusher(journal: journal, target: target, settings: settings, logger: logger))
    }

    /// Waits until the access point acknowledged every journaled event (the pusher's view).
    func waitDelivered(_ pusher: EventPusher, _ seq: Int64, timeout: Double = 30) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        // The pusher exposes no event for each ack; its counter is read at a short interval.
        while pusher.acknowledged < seq {
            guard Date() < deadline else {
                XCTFail("only \(pusher.acknowledged) of \(seq) events acknowledged after \(timeout) s")
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    var base: String { tunnels.httpURL }

    /// `curl` with the viewer token (or `token`), returning status and body.
    func get(_ path: String, token: String? = nil, headers: [String] = []) async throws -> (status: Int, body: Data) {
        var arguments = ["-s", "-o", "-", "-w", "\n%{http_code}", "-H", "Authorization: Bearer \(token ?? viewer)"]
        for header in headers { arguments += ["-H", header] }
        let result = try await ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/curl"), arguments + [base + path], timeout: 30)
        var text = result.stdout
        let newline = text.lastIndex(of: UInt8(ascii: "\n")) ?? text.endIndex
        let status = Int(String(decoding: text[text.index(after: newline)...], as: UTF8.self)) ?? -1
        text = text[..<newline]
        return (status, Data(text))
    }

    func json(_ path: String, token: String? = nil) async throws -> [String: Any] {
        let (status, body) = try await get(path, token: token, headers: ["Accept: application/json"])
        XCTAssertEqual(status, 200, String(decoding: body, as: UTF8.self))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: body) as? [String: Any])
    }

    /// An SSE consumer: curl -N on the events stream.
    func consumer(_ session: String, lastEventID: Int64? = nil, query: String = "") throws -> ChildProcess {
        var arguments = ["-sN", "-H", "Authorization: Bearer \(viewer)", "-H", "Accept: text/event-stream"]
        if let lastEventID { arguments += ["-H", "Last-Event-ID: \(lastEventID)"] }
        let curl = ChildProcess(executable: URL(fileURLWithPath: "/usr/bin/curl"),
                                arguments: arguments + ["\(base)/api/v1/sessions/\(session)/events\(query)"])
        try curl.start()
        return curl
    }

    /// Waits until `curl` printed the whole block of event `seq`, then returns every block so far.
    func events(of curl: ChildProcess, through seq: Int64, timeout: Double = 30) async throws -> [SSEBlock] {
        _ = try await curl.waitForLine(withPrefix: "id: \(seq)", timeout: timeout)
        // The block's `data:` line is written with its `id:` line (one chunk); read until it is in.
        let deadline = Date().addingTimeInterval(5)
        while true {
            let blocks = SSEBlock.parse(curl.stdout)
            if blocks.last.map({ $0.id >= seq }) == true || Date() > deadline { return blocks }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}

/// One complete SSE event as curl printed it.
struct SSEBlock: Equatable {
    var id: Int64
    var event: String
    var data: [String: Any]

    static func == (a: SSEBlock, b: SSEBlock) -> Bool { a.id == b.id && a.event == b.event }

    /// Complete blocks (ended by a blank line) with an id; comments skipped.
    static func parse(_ text: String) -> [SSEBlock] {
        var blocks: [SSEBlock] = []
        for chunk in text.components(separatedBy: "\n\n").dropLast() {
            var id: Int64?
            var event = ""
            var data = ""
            for line in chunk.split(separator: "\n") {
                if line.hasPrefix("id: ") { id = Int64(line.dropFirst(4)) }
                if line.hasPrefix("event: ") { event = String(line.dropFirst(7)) }
                if line.hasPrefix("data: ") { data = String(line.dropFirst(6)) }
            }
            guard let id, let object = (try? JSONSerialization.jsonObject(with: Data(data.utf8))) as? [String: Any] else { continue }
            blocks.append(SSEBlock(id: id, event: event, data: object))
        }
        return blocks
    }
}
