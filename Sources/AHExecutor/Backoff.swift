import Foundation

/// Exponential backoff with full jitter (AWS architecture blog's "full jitter"): the n-th
/// delay is uniform in [0, min(cap, base · 2^n)]. Reset once a connection has been stable
/// for `stableAfter`, so a flapping peer does not escalate forever and a healthy one that
/// drops once reconnects fast.
public struct Backoff: Sendable {
    public var base: TimeInterval = 1
    public var cap: TimeInterval = 30
    public var stableAfter: TimeInterval = 60
    private(set) var attempt = 0

    public init(base: TimeInterval = 1, cap: TimeInterval = 30, stableAfter: TimeInterval = 60) {
        self.base = base
        self.cap = cap
        self.stableAfter = stableAfter
    }

    /// One draw from `generator` (tests pass a seeded or constant one): the top 53 bits as a
    /// fraction of the ceiling. A single draw, not `Double.random(in:)`, whose rejection
    /// sampling never ends with a constant generator.
    public mutating func nextDelay<G: RandomNumberGenerator>(using generator: inout G) -> TimeInterval {
        let ceiling = min(cap, base * pow(2, Double(min(attempt, 30))))
        attempt += 1
        let fraction = Double(generator.next() >> 11) * 0x1p-53
        return fraction * ceiling
    }

    public mutating func nextDelay() -> TimeInterval {
        var generator = SystemRandomNumberGenerator()
        return nextDelay(using: &generator)
    }

    public mutating func connectionLasted(_ seconds: TimeInterval) {
        if seconds >= stableAfter { attempt = 0 }
    }
}
