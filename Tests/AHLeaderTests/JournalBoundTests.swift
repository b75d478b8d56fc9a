@testable import AHLeader
import AHTestSupport
import Foundation
import Logging
import XCTest

/// The uplink's bound on the journal: past `limit` unacknowledged events new ones are left
/// out (the stored seq stays gap-free) and, once the access point caught up, one
/// `eventsDropped` event says how many.
final class JournalBoundTests: XCTestCase {
    func testEventsBeyondTheBoundAreLeftOutAndCountedOnceThereIsRoom() async throws {
        let directory = try TemporaryDirectory(prefix: "ah-journal-bound")
        let journal = try EventJournal(path: directory.file("leader.sqlite").path, session: "s1", logger: Logger(label: "t"))
        journal.queue.setLimit(5)
        for index in 0..<12 { journal.append("hostLog", ["text": .string("line \(index)")]) }
        await journal.flush()
        var events = try await journal.events()
        XCTAssertEqual(events.map(\.seq), Array(1...5))

        journal.queue.acknowledged(5)
        journal.append("summary", ["passed": .array([])])
        await journal.flush()
        events = try await journal.events()
        XCTAssertEqual(events.map(\.seq), Array(1...7))
        XCTAssertEqual(events[5].type, "eventsDropped")
        XCTAssertTrue(events[5].json.contains(#""count":7"#), events[5].json)
        XCTAssertEqual(events[6].type, "summary")
        await journal.close()
    }
}
