import AHFleet
import XCTest

/// The duration syntax of the fleet config and `--timeout`.
final class FleetDurationTests: XCTestCase {
    func testAcceptedSpellings() throws {
        let cases: [(String, Int64)] = [
            ("500ms", 500), ("5s", 5000), ("10m", 600_000), ("1h", 3_600_000), ("1h30m", 5_400_000),
            ("2m30s", 150_000), ("1h2m3s4ms", 3_723_004), ("0s", 0), ("90s", 90_000), ("007s", 7000),
            ("1500ms", 1500),
        ]
        for (text, milliseconds) in cases {
            XCTAssertEqual(try FleetDuration.milliseconds(text), milliseconds, text)
            XCTAssertEqual(try FleetDuration.parse(text), .milliseconds(milliseconds), text)
        }
    }

    func testRefusedSpellingsNameTheValue() {
        let cases: [(String, String)] = [
            ("", "empty"), ("5", "needs a unit"), ("5x", "unknown unit 'x'"), ("-5s", "expected a number"),
            ("1.5s", "unexpected '.5s'"), ("5 s", "unexpected ' s'"), ("s", "expected a number"),
            ("30m1h", "largest first"), ("1s1s", "largest first"), ("5S", "unexpected 'S'"), ("1d", "unknown unit 'd'"),
            ("99999999999h", "maximum"), ("999999999999999999999s", "maximum"), (" 5s", "expected a number"),
        ]
        for (text, reason) in cases {
            XCTAssertThrowsError(try FleetDuration.parse(text), text) { error in
                let message = String(describing: error)
                XCTAssertTrue(message.contains("'\(text)'"), message)
                XCTAssertTrue(message.contains(reason), "\(text): \(message)")
            }
        }
    }

    func testFormatIsTheShortestSpelling() {
        let cases: [(Duration, String)] = [
            (.seconds(90), "1m30s"), (.zero, "0s"), (.milliseconds(500), "500ms"), (.seconds(5400), "1h30m"),
            (.milliseconds(3_723_004), "1h2m3s4ms"), (.seconds(600), "10m"),
        ]
        for (duration, text) in cases {
            XCTAssertEqual(FleetDuration.format(duration), text)
            XCTAssertEqual(try FleetDuration.parse(text), duration)
        }
    }
}
