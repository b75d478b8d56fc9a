@testable import AHLeader
import XCTest

/// The line framing both ends of the leader socket use (the service's `LineReader` and the
/// client's `LeaderSocket`).
final class LineSplitterTests: XCTestCase {
    func testLinesSplitAcrossReadsComeOutWhole() throws {
        var lines = LineSplitter()
        try lines.append(Array("{\"a\":".utf8))
        XCTAssertNil(try lines.next(ended: false), "no newline yet")
        try lines.append(Array("1}\n{\"b\"".utf8))
        XCTAssertEqual(try lines.next(ended: false), Array("{\"a\":1}".utf8))
        XCTAssertNil(try lines.next(ended: false))
        try lines.append(Array(":2}\n\n".utf8))
        XCTAssertEqual(try lines.next(ended: false), Array("{\"b\":2}".utf8))
        XCTAssertEqual(try lines.next(ended: false), [], "an empty line is a line")
        XCTAssertNil(try lines.next(ended: true), "the end right after a newline is a clean end")
    }

    func testAPartialLineAtTheEndIsAnError() throws {
        var lines = LineSplitter()
        try lines.append(Array("{\"result\"".utf8))
        XCTAssertThrowsError(try lines.next(ended: true)) { error in
            XCTAssertTrue("\(error)".contains("in the middle of a message (9 bytes)"), "\(error)")
        }
    }

    func testMoreThanTheLimitWithoutANewlineIsAnError() throws {
        var lines = LineSplitter()
        try lines.append([UInt8](repeating: 0x41, count: LeaderWire.maxLine))
        XCTAssertThrowsError(try lines.append([0x41])) { error in
            XCTAssertTrue("\(error)".contains("longer than \(LeaderWire.maxLine) bytes"), "\(error)")
        }
    }
}
