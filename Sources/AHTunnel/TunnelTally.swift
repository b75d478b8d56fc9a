import NIOConcurrencyHelpers

/// What one tunnel carried, for the audit record and the `open tunnels` heartbeat figure.
/// Updated from both ends' event loops, read from anywhere.
public final class TunnelTally: Sendable {
    public enum Direction: Sendable {
        /// From the first channel given to `Tunnel.join` to the second.
        case forward
        case backward
    }

    public struct Summary: Sendable, Equatable {
        public var bytesForward: Int = 0
        public var bytesBackward: Int = 0
        /// True when both ends finished with an orderly end of input.
        public var clean: Bool = true
        /// The first error either end saw, if any.
        public var error: String?

        public init(bytesForward: Int = 0, bytesBackward: Int = 0, clean: Bool = true, error: String? = nil) {
            self.bytesForward = bytesForward
            self.bytesBackward = bytesBackward
            self.clean = clean
            self.error = error
        }
    }

    private let state = NIOLockedValueBox(Summary())

    public init() {}

    func add(_ count: Int, _ direction: Direction) {
        state.withLockedValue {
            switch direction {
            case .forward: $0.bytesForward += count
            case .backward: $0.bytesBackward += count
            }
        }
    }

    func noteError(_ description: String) {
        state.withLockedValue {
            if $0.error == nil { $0.error = description }
            $0.clean = false
        }
    }

    func sideClosed(cleanly: Bool) {
        if !cleanly { state.withLockedValue { $0.clean = false } }
    }

    public var summary: Summary { state.withLockedValue { $0 } }
}
