import AHControl
import AHEvents
import AHLeader
import AHQUIC
import AHSPIFFE
import AHTestSupport
import Foundation
import NIOCore
import NIOPosix
import XCTest

/// Leader events end to end with real parts: `ah serve`, executors enrolled with
/// `ah agent enroll`, the leader's journal and uplink (AHLeader, over real QUIC under the
/// executor's identity), SSE and REST read with curl.
final class SessionEventsTests: XCTestCase {
    var fixture: SessionEventsFixture!

    override func setUp() async throws {
        try Requirement.sshd()
        fixture = try SessionEventsFixture()
        try await fixture.start(executors: ["lead", "intruder"])
    }

    override func tearDown() async throws {
        await fixture?.stop()
    }

    /// The access point's unlabelled samples, parsed by prometheus_client (Tests/Interop).
    private func metrics() async throws -> [String: Double] {
        if let problem = await Python.importProblem("prometheus_client.parser") {
            try Requirement.check(false, "\(problem) (.ci/run installs prometheus_client)")
        }
        let (status, body) = try await fixture.get("/metrics")
        XCTAssertEqual(status, 200, String(decoding: body, as: UTF8.self))
        let result = try await ProcessRunner.run(try Executables.python3(), [BuiltProducts.interopScript("metrics_parse.py").path],
                                                 stdin: body, timeout: 30)
        XCTAssertEqual(result.exit, .exited(0), result.transcript)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        var values: [String: Double] = [:]
        for sample in object["samples"] as? [[String: Any]] ?? [] where (sample["labels"] as? [String: String])?.isEmpty ?? true {
            if let name = sample["name"] as? String, let value = sample["value"] as? NSNumber { values[name] = value.doubleValue }
        }
        return values
    }

    /// Emits `count` events the way a run does: catalog, host started, logs, exit, summary.
    private func emitRun(_ journal: EventJournal, logs: Int) {
        journal.append("followersCatalog", ["fleet": .string("f"), "followers": .array([
            .object(["name": .string("f1"), "os": .string("linux"), "tags": .object([:]), "connect": .string("access-point")])])])
        journal.append("connect.path.fixed", ["host": .string("f1"), "method": .string("access-point"), "target": .string("f1:22"),
                                              "relay": .null, "rttMs": .number(3)])
        journal.append("hostStarted", ["host": .string("f1"), "os": .string("linux"), "command": .string("make test")])
        for index in 0..<logs {
            journal.append("hostLog", ["host": .string("f1"), "stream": .string("stdout"), "text": .string("line \(index)\n")])
        }
        journal.append("hostExited", ["host": .string("f1"), "status": .string("passed"), "exit": .int(0), "signal": .null,
                                      "durationMs": .int(5), "error": .null])
        journal.append("summary", ["runId": .string("r1"), "passed": .array([.string("f1")]), "failed": .array([]),
                                   "unreachable": .array([])])
    }

    /// Batches pipelined as fast as the journal fills (the uplink keeps several in flight)
    /// are stored in order: the access point never takes one before its predecessor. Turning
    /// reading back on after an ack delivered the next batch re-entrantly, and two batches were
    /// stored at once until the handler refused one as a gap. bench/events found it (with 10
    /// SSE consumers loading the access point: one refusal per 15 s before the fix, none in
    /// 60 s after); on an idle machine this test did not hit that interleaving in 7 runs
    /// without the fix, so it guards the ordering and the absence of refusals, not the race.
    func testPipelinedBatchesUnderLoadAreStoredInOrderAndNeverRefused() async throws {
        let (journal, pusher) = try fixture.leader("lead", session: "s-load")
        pusher.start()
        // Big events make big batches: each takes the access point long enough to store that
        // the next ones arrive while reading is off, which is what the re-entry needed.
        let total: Int64 = 20_000
        let filler = String(repeating: "x", count: 1_500)
        for round in 0..<Int(total / 1_000) {
            for index in 0..<1_000 {
                journal.append("hostLog", ["host": .string("f1"), "stream": .string("stdout"), "text": .string("\(round).\(index) \(filler)\n")])
            }
            await Task.yield()
        }
        try await fixture.waitDelivered(pusher, total, timeout: 120)
        let serve = try XCTUnwrap(fixture.tunnels.serve)
        XCTAssertFalse(serve.process.stderr.contains("refused a leader's event stream"), String(serve.process.stderr.suffix(2_000)))
        let page = try await fixture.json("/api/v1/sessions/s-load/info")
        XCTAssertEqual(page["lastSeq"] as? Int, Int(total))
        await pusher.stop()
        await journal.close()
    }

    func testEventsReachSSEInOrderAndAResumedConsumerSeesEachSeqOnce() async throws {
        let (journal, pusher) = try fixture.leader("lead", session: "s-run")
        pusher.start()
        emitRun(journal, logs: 300)
        let total: Int64 = 305
        try await fixture.waitDelivered(pusher, total)

        // The executor's own control connection was not replaced by the leader's uplink.
        XCTAssertFalse(fixture.tunnels.agents["lead"]!.stderr.contains("connections=2"), fixture.tunnels.agents["lead"]!.stderr)
        let executors = try await fixture.json("/api/v1/executors")
        let lead = (executors["items"] as? [[String: Any]])?.first { $0["name"] as? String == "lead" }
        XCTAssertEqual(lead?["state"] as? String, "connected")

        let first = try fixture.consumer("s-run")
        let all = try await fixture.events(of: first, through: total)
        XCTAssertEqual(all.map(\.id), Array(1...total), "gap-free, in order, from the first event")
        XCTAssertEqual(all.first?.event, "followersCatalog")
        XCTAssertEqual(all.map(\.event).suffix(2), ["hostExited", "summary"])
        XCTAssertEqual(all[3].data["text"] as? String, "line 0\n")
        for block in all {
            XCTAssertEqual(block.data["seq"] as? Int, Int(block.id))
            XCTAssertEqual(block.data["type"] as? String, block.event)
            XCTAssertEqual(block.data["session"] as? String, "s-run")
            XCTAssertNotNil(block.data["ts"] as? String)
        }
        // /metrics (parsed by prometheus_client) counts what was ingested and who is attached.
        let metrics = try await self.metrics()
        XCTAssertEqual(metrics["ah_events_ingested_total"], Double(total), "\(metrics)")
        XCTAssertEqual(metrics["ah_sse_consumers"], 1, "\(metrics)")

        // Live: the connected consumer gets new events as they are stored.
        emitRun(journal, logs: 10)
        let live = try await fixture.events(of: first, through: total + 15)
        XCTAssertEqual(live.map(\.id), Array(1...(total + 15)))

        // A consumer cut off mid-stream resumes with Last-Event-ID: every seq exactly once.
        let second = try fixture.consumer("s-run")
        let cut: Int64 = 100
        let seen = try await fixture.events(of: second, through: cut).filter { $0.id <= cut }
        _ = await second.terminate(grace: 1)
        emitRun(journal, logs: 50)
        let end = total + 15 + 55
        let resumed = try fixture.consumer("s-run", lastEventID: cut)
        let rest = try await fixture.events(of: resumed, through: end)
        XCTAssertEqual(seen.map(\.id) + rest.map(\.id), Array(1...end))
        XCTAssertTrue(first.stdout.hasPrefix("retry: 1000\n"), String(first.stdout.prefix(100)))
        _ = await first.terminate(grace: 1)
        _ = await resumed.terminate(grace: 1)

        // ?since= and a JSON page with a type filter.
        let since = try fixture.consumer("s-run", query: "?since=\(end - 2)")
        let tail = try await fixture.events(of: since, through: end)
        XCTAssertEqual(tail.map(\.id), [end - 1, end])
        _ = await since.terminate(grace: 1)
        let page = try await fixture.json("/api/v1/sessions/s-run/events?type=hostExited,summary&limit=3")
        let items = try XCTUnwrap(page["items"] as? [[String: Any]])
        XCTAssertEqual(items.map { $0["type"] as? String }, ["hostExited", "summary", "hostExited"])
        XCTAssertEqual(items.map { $0["seq"] as? Int }, [304, 305, 319])
        XCTAssertEqual(page["next"] as? String, "/api/v1/sessions/s-run/events?since=319&limit=3&type=hostExited&type=summary")

        // The session list and info.
        let sessions = try await fixture.json("/api/v1/sessions")
        let row = try XCTUnwrap((sessions["items"] as? [[String: Any]])?.first { $0["id"] as? String == "s-run" })
        XCTAssertEqual(row["leader"] as? String, "lead")
        XCTAssertEqual(row["status"] as? String, "active")
        XCTAssertNotNil(row["startedAt"] as? String)
        let info = try await fixture.json("/api/v1/sessions/s-run/info")
        XCTAssertEqual(info["leader"] as? String, "lead")
        let followers = try XCTUnwrap(info["followers"] as? [[String: Any]])
        XCTAssertEqual(followers.first?["name"] as? String, "f1")
        XCTAssertEqual(followers.first?["os"] as? String, "linux")
        XCTAssertEqual(followers.first?["health"] as? String, "ok")
        XCTAssertEqual((followers.first?["path"] as? [String: Any])?["method"] as? String, "access-point")
        XCTAssertEqual((info["endpoints"] as? [String: String])?["events"], "/api/v1/sessions/s-run/events")

        // Errors are problem documents: no token, a bad Last-Event-ID, an unknown session.
        let anonymous = try await fixture.get("/api/v1/sessions", token: "")
        XCTAssertEqual(anonymous.status, 401)
        let bad = try await fixture.get("/api/v1/sessions/s-run/events", headers: ["Last-Event-ID: x"])
        XCTAssertEqual(bad.status, 400)
        XCTAssertTrue(String(decoding: bad.body, as: UTF8.self).contains("urn:ah:problem:bad-request"))
        let missing = try await fixture.get("/api/v1/sessions/nope/info")
        XCTAssertEqual(missing.status, 404)

        await pusher.stop()
        let ended = try await fixture.json("/api/v1/sessions")
        XCTAssertEqual((ended["items"] as? [[String: Any]])?.first { $0["id"] as? String == "s-run" }?["status"] as? String, "ended")
        await journal.close()
    }

    /// A consumer that stops reading is cut off once 20,000 events queue up for it, without
    /// holding up ingestion; it resumes with Last-Event-ID and misses nothing.
    func testASlowConsumerIsCutOffWithoutSlowingIngestionAndResumes() async throws {
        let (journal, pusher) = try fixture.leader("lead", session: "s-slow")
        pusher.start()
        journal.append("hostStarted", ["host": .string("f1"), "os": .string("linux"), "command": .string("yes")])
        try await fixture.waitDelivered(pusher, 1)
        let stalled = try RawSocket(port: fixture.tunnels.serve.httpPort)
        defer { stalled.close() }
        try stalled.send("GET /api/v1/sessions/s-slow/events HTTP/1.1\r\nHost: ap\r\nAuthorization: Bearer \(fixture.viewer)\r\n\r\n")
        XCTAssertTrue(stalled.read(until: "id: 1\n", timeout: 10).found)
        // Far more than fit in the socket buffers plus the consumer's queue, while it reads nothing.
        let text = String(repeating: "y", count: 1000)
        let total: Int64 = 30_001
        for _ in 1..<total { journal.append("hostLog", ["host": .string("f1"), "stream": .string("stdout"), "text": .string(text)]) }
        try await fixture.waitDelivered(pusher, total, timeout: 120)
        let rest = stalled.readUntilClose(timeout: 30)
        XCTAssertTrue(rest.closed, "the access point ends a consumer that fell too far behind")
        XCTAssertTrue(rest.text.contains("fell too far behind"), String(rest.text.suffix(300)))
        let body = rest.text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
        let lastID = body.split(separator: "\n").compactMap { $0.hasPrefix("id: ") ? Int64($0.dropFirst(4)) : nil }.last ?? 1
        XCTAssertLessThan(lastID, total, "it was cut off before the end")
        // Chunked framing may split the last block: resume after the last id it certainly has.
        let resumed = try fixture.consumer("s-slow", lastEventID: lastID - 1)
        let blocks = try await fixture.events(of: resumed, through: total, timeout: 60)
        XCTAssertEqual(blocks.map(\.id), Array(lastID...total))
        _ = await resumed.terminate(grace: 1)
        await pusher.stop()
        await journal.close()
    }

    func testAccessPointRestartLosesNothingAndLeaderRestartResends() async throws {
        var settings = EventPusher.Settings()
        settings.maxBackoff = .milliseconds(500)
        let (journal, pusher) = try fixture.leader("lead", session: "s-restart", settings: settings)
        pusher.start()
        emitRun(journal, logs: 95)
        try await fixture.waitDelivered(pusher, 100)

        // The access point is killed (SIGKILL: no drain, no flush); events keep being
        // journaled, then drain when it is back (same data directory and QUIC port).
        let serve = fixture.tunnels.serve!
        serve.process.send(signal: SIGKILL)
        _ = try await serve.process.waitForExit(timeout: 10)
        emitRun(journal, logs: 95)
        await journal.flush()
        XCTAssertEqual(pusher.journaled, 200)
        XCTAssertLessThanOrEqual(pusher.acknowledged, 100)
        fixture.tunnels.serve = try await ServeProcess.start(dataDir: serve.dataDir, quicPort: serve.quicPort)
        try await fixture.waitDelivered(pusher, 200)

        // The leader is killed: its uplink stops at once, events journaled after that are
        // only on its disk. A new leader process on the same journal sends them.
        await pusher.stop(grace: .zero)
        emitRun(journal, logs: 45)
        await journal.close()
        let (reopened, again) = try fixture.leader("lead", session: "s-restart", settings: settings)
        again.start()
        try await fixture.waitDelivered(again, 250)

        let curl = try fixture.consumer("s-restart")
        let blocks = try await fixture.events(of: curl, through: 250)
        XCTAssertEqual(blocks.map(\.id), Array(1...250), "every event exactly once, in order, across both restarts")
        _ = await curl.terminate(grace: 1)
        await again.stop()
        await reopened.close()
    }

    func testAForeignExecutorCannotWriteIntoTheSession() async throws {
        let (journal, pusher) = try fixture.leader("lead", session: "s-owned")
        pusher.start()
        emitRun(journal, logs: 5)
        try await fixture.waitDelivered(pusher, 10)

        // Another enrolled executor, with its own real identity, tries the same session over
        // the uplink protocol directly: refused, nothing stored.
        let target = try EventUplinkTarget.load(stateDirectory: fixture.stateDirectory("intruder"))
        var quic = QUICConfiguration(identity: TLSIdentity(certFile: target.certFile, keyFile: target.keyFile, caFile: target.caFile),
                                     peerPolicy: .exact(try SPIFFEID.accessPoint(trustDomain: target.trustDomain)))
        quic.alpn = eventsALPN
        let connection = try await QUICClient.connect(host: target.host, port: target.port, configuration: quic,
                                                      group: MultiThreadedEventLoopGroup.singleton)
        defer { connection.close() }
        let replies = EventsReplyHandler()
        let stream = try await connection.openStream { stream in
            stream.eventLoop.makeCompletedFuture { try stream.pipeline.syncOperations.addHandler(replies) }
        }.get()
        var answers = replies.replies.makeAsyncIterator()
        var buffer = ByteBuffer()
        try EventsFraming.encode(EventsBatch(session: "s-owned", count: 1), into: &buffer)
        EventsFraming.frame(Array(#"{"seq":11,"session":"s-owned","ts":"2026-12-03T00:00:00.000Z","type":"hostLog","text":"forged"}"#.utf8),
                            into: &buffer)
        try await stream.writeAndFlush(buffer).get()
        let answer = try await answers.next()
        guard case .refused(let refusal) = answer else { return XCTFail("expected a refusal, got \(String(describing: answer))") }
        XCTAssertEqual(refusal.code, "not-owner")
        XCTAssertTrue(refusal.message.contains("lead") && refusal.message.contains("intruder"), refusal.message)

        // Its own leader library gets the same answer and gives the session up.
        let (foreign, foreignPusher) = try fixture.leader("intruder", session: "s-owned", journal: "foreign")
        emitRun(foreign, logs: 1)
        foreignPusher.start()
        let deadline = Date().addingTimeInterval(30)
        // The refusal is the pusher's state, not an event it publishes: read it at a short interval.
        while !foreignPusher.refused("s-owned"), Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        XCTAssertTrue(foreignPusher.refused("s-owned"))

        let page = try await fixture.json("/api/v1/sessions/s-owned/events?limit=100")
        XCTAssertEqual((page["items"] as? [[String: Any]])?.count, 10)
        XCTAssertEqual(page["lastSeq"] as? Int, 10)
        XCTAssertFalse(String(describing: page).contains("forged"))
        XCTAssertEqual(foreignPusher.acknowledged, 0)

        // Bounds: a batch over the count bound and an event with a bad type name are refused.
        for (header, body, code) in [
            (EventsBatch(session: "s-x", count: 5000), nil as String?, "bad-request"),
            (EventsBatch(session: "s-x", count: 1), #"{"seq":1,"session":"s-x","ts":"t","type":"no spaces"}"#, "bad-event"),
        ] {
            let replies = EventsReplyHandler()
            let stream = try await connection.openStream { stream in
                stream.eventLoop.makeCompletedFuture { try stream.pipeline.syncOperations.addHandler(replies) }
            }.get()
            var answers = replies.replies.makeAsyncIterator()
            var buffer = ByteBuffer()
            try EventsFraming.encode(header, into: &buffer)
            if let body { EventsFraming.frame(Array(body.utf8), into: &buffer) }
            try await stream.writeAndFlush(buffer).get()
            let answer = try await answers.next()
            guard case .refused(let refusal) = answer else { return XCTFail("expected a refusal, got \(String(describing: answer))") }
            XCTAssertEqual(refusal.code, code, refusal.message)
        }
        await foreignPusher.stop(grace: .zero)
        await foreign.close()
        await pusher.stop()
        await journal.close()
    }
}
