@testable import AHLeader
import AHTestSupport
import Foundation
import Logging
import XCTest

/// The leader's event journal on a real SQLite file: gap-free seq per session, in emission
/// order, continued across a restart of the service (a reopened journal).
final class EventJournalTests: XCTestCase {
    func testSeqIsGapFreeInOrderAndContinuesAfterReopen() async throws {
        let directory = try TemporaryDirectory(prefix: "ah-journal")
        let path = directory.file("leader.sqlite").path
        let first = try EventJournal(path: path, session: "s1", logger: Logger(label: "t"))
        for index in 0..<200 { first.append("hostLog", ["host": .string("h"), "text": .string("line \(index)")]) }
        let other = try EventJournal(path: path, session: "s2", logger: Logger(label: "t"))
        other.append("summary", ["passed": .array([])])
        await first.flush()
        await other.flush()
        let events = try await first.events()
        XCTAssertEqual(events.map(\.seq), Array(1...200))
        let decoded = try events.map { try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.json.utf8)) as? [String: Any]) }
        XCTAssertEqual(decoded.map { $0["text"] as? String }, (0..<200).map { "line \($0)" })
        XCTAssertEqual(decoded[0]["session"] as? String, "s1")
        XCTAssertEqual(decoded[0]["type"] as? String, "hostLog")
        XCTAssertEqual(decoded[0]["seq"] as? Int, 1)
        XCTAssertNotNil(decoded[0]["ts"] as? String)
        await first.close()

        let reopened = try EventJournal(path: path, session: "s1", logger: Logger(label: "t"))
        reopened.append("summary", ["passed": .array([.string("h")]), "exit": .null])
        await reopened.flush()
        let after = try await reopened.events(after: 200)
        XCTAssertEqual(after.map(\.seq), [201])
        XCTAssertTrue(after[0].json.contains("\"exit\":null"), after[0].json)
        let others = try await other.events()
        XCTAssertEqual(others.map(\.seq), [1], "another session counts on its own")
        await reopened.close()
        await other.close()
    }

    func testJSONValueEncodingEscapesAndSortsKeys() {
        let value = JSONValue.object(["b": .string("q\"\\\n\u{1}"), "a": .number(2), "c": .number(1.5), "d": .bool(true)])
        XCTAssertEqual(value.encoded, #"{"a":2,"b":"q\"\\\n\u0001","c":1.5,"d":true}"#)
    }
}
