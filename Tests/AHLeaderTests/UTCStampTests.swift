@testable import AHLeader
import Foundation
import XCTest

/// UTCStamp stands in for ISO8601DateFormatter (ICU) in the leader service: same text.
final class UTCStampTests: XCTestCase {
    func testSameTextAsISO8601DateFormatter() {
        let formatter = ISO8601DateFormatter()
        for seconds in [0.0, 951_782_400.999, 1_796_300_817.5, 4_102_444_799] {
            let date = Date(timeIntervalSince1970: seconds)
            XCTAssertEqual(UTCStamp.format(date), formatter.string(from: date), "\(seconds)")
        }
        XCTAssertEqual(UTCStamp.format(Date(timeIntervalSince1970: 0)), "1970-01-01T00:00:00Z")
    }

    /// The journal's `ts`: what `Date.ISO8601FormatStyle(includingFractionalSeconds: true)` gave.
    func testMillisecondsAsISO8601FormatStyle() {
        let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        // Fractions exact in binary: at a value like .999 the two may floor a hair apart (both
        // within the double's precision), which says nothing about the format.
        for seconds in [0.0, 0.125, 951_782_400.875, 1_796_300_817.5, 1_796_300_817.0625, 4_102_444_799.25] {
            let date = Date(timeIntervalSince1970: seconds)
            XCTAssertEqual(UTCStamp.formatMillis(date), date.formatted(style), "\(seconds)")
        }
        XCTAssertEqual(UTCStamp.formatMillis(Date(timeIntervalSince1970: 1.5)), "1970-01-01T00:00:01.500Z")
    }
}
