@testable import AHExecutor
import XCTest

/// A seeded generator, so the jitter is reproducible and its extremes can be forced.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Always the same word: all ones draws the top of the range, zero the bottom.
struct ConstantGenerator: RandomNumberGenerator {
    let value: UInt64
    mutating func next() -> UInt64 { value }
}

/// Full-jitter exponential backoff with the random source and the connection's lifetime
/// given by the test: no clock, no sleeping.
final class BackoffTests: XCTestCase {
    func testDelaysStayWithinTheFullJitterCeilingOfEachAttempt() {
        var backoff = Backoff(base: 1, cap: 30, stableAfter: 60)
        var generator = SplitMix64(state: 1)
        let ceilings: [Double] = [1, 2, 4, 8, 16, 30, 30, 30]
        for (attempt, ceiling) in ceilings.enumerated() {
            let delay = backoff.nextDelay(using: &generator)
            XCTAssertGreaterThanOrEqual(delay, 0, "attempt \(attempt)")
            XCTAssertLessThanOrEqual(delay, ceiling, "attempt \(attempt)")
        }
    }

    func testCeilingIsReachedAndCappedNotExceeded() {
        var backoff = Backoff(base: 1, cap: 30)
        var top = ConstantGenerator(value: .max)
        let delays = (0..<12).map { _ in backoff.nextDelay(using: &top) }
        XCTAssertEqual(delays.prefix(5).map { $0.rounded() }, [1, 2, 4, 8, 16])
        XCTAssertEqual(delays.dropFirst(5).map { $0.rounded() }, Array(repeating: 30, count: 7), "capped")
        var bottom = ConstantGenerator(value: 0)
        XCTAssertEqual(backoff.nextDelay(using: &bottom), 0, "full jitter reaches zero")
    }

    func testJitterSpreadsAFleet() {
        // 100 executors losing the access point at once do not come back in lockstep.
        var generator = SplitMix64(state: 42)
        let delays = (0..<100).map { _ -> Double in
            var backoff = Backoff(base: 1, cap: 30)
            for _ in 0..<4 { _ = backoff.nextDelay(using: &generator) }
            return backoff.nextDelay(using: &generator)
        }
        XCTAssertGreaterThan(Set(delays.map { Int($0) }).count, 8, "\(delays)")
        XCTAssertLessThanOrEqual(delays.max()!, 16)
    }

    func testStableConnectionResetsTheEscalation() {
        var backoff = Backoff(base: 1, cap: 30, stableAfter: 60)
        var top = ConstantGenerator(value: .max)
        for _ in 0..<6 { _ = backoff.nextDelay(using: &top) }
        backoff.connectionLasted(59)
        XCTAssertEqual(backoff.nextDelay(using: &top).rounded(), 30, "a short connection does not reset")
        backoff.connectionLasted(60)
        XCTAssertEqual(backoff.nextDelay(using: &top).rounded(), 1, "a stable one does")
        XCTAssertEqual(backoff.nextDelay(using: &top).rounded(), 2)
    }

    func testHugeAttemptCountsDoNotOverflow() {
        var backoff = Backoff(base: 1, cap: 30)
        var top = ConstantGenerator(value: .max)
        for _ in 0..<10_000 { _ = backoff.nextDelay(using: &top) }
        XCTAssertEqual(backoff.nextDelay(using: &top).rounded(), 30)
    }
}
