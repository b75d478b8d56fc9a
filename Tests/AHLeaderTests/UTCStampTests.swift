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
}
