import Foundation

/// The facts each executor last reported (OS, arch, sshd host keys, ...), kept across
/// restarts so that listings and `ah ssh-config` work while the executor is offline.
public protocol FactsStore: Sendable {
    /// Replaces the executor's facts. Queued behind earlier writes and returns at once;
    /// a failure is logged by the store.
    func recordFacts(name: String, facts: ExecutorFacts, now: Date)

    /// Every executor's last facts, by name. Rows of any stored shape decode; a row that
    /// cannot be read is left out (and logged) rather than failing the whole listing.
    func allFacts() async throws -> [String: ReportedFacts]
}
