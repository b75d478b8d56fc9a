import Foundation

/// Failures of the identity layer, each phrased so that an operator knows what to fix.
public struct IdentityError: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
