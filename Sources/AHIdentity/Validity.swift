import Foundation

/// Lengths of time used for certificate lifetimes.
public enum Validity {
    public static let day: TimeInterval = 86_400
    /// Ten 365-day years: the default lifetime of a CA created by `ah`.
    public static let caDefault: TimeInterval = 10 * 365 * day
    /// How far back a fresh certificate's notBefore is set, so that a peer whose clock runs a
    /// little behind does not see a "not yet valid" certificate.
    public static let backdate: TimeInterval = 300
}
