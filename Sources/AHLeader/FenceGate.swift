import Foundation

/// `followers run` fences the selected followers first (unless `--no-fence`): a command
/// never starts on a follower whose fence failed. Such a host is reported `unreachable`
/// when it could not be reached or did not answer within the fence's deadline, `failed`
/// when it answered but could not hold the snapshot (the fence's error says why).
struct FenceGate {
    var blocked: [String: Outcome] = [:]

    static func check(engine: LeaderEngine, selected: [LeaderMember], skip: Bool,
                      emit: @escaping @Sendable (LeaderEvent) async -> Void) async throws -> FenceGate {
        if skip || selected.isEmpty { return FenceGate() }
        guard engine.sync.workspace != nil else {
            await emit(.progress("no leader workspace (no .agents/config.toml above it, no leader member workspace): not fencing"))
            return FenceGate()
        }
        let report = try await Syncer(engine: engine, emit: emit).fence(selected, timeout: engine.sync.timeout)
        var gate = FenceGate()
        for host in report.hosts where host.state != .consistent {
            let unreachable = host.state == .timeout || (host.error ?? "").hasPrefix("unreachable")
                || (host.error ?? "").contains("went away")
            var outcome = Outcome.notStarted(status: unreachable ? .unreachable : .failed,
                                             error: "sync fence \(host.state.rawValue): \(host.error ?? "not consistent"); the command was not started")
            outcome.durationMs = host.tookMs
            gate.blocked[host.name] = outcome
            await emit(.progress("\(host.name): not consistent with \(report.snapshotId) (\(host.state.rawValue)); not running the command there"))
        }
        return gate
    }

    func runnable(_ selected: [LeaderMember]) -> [LeaderMember] { selected.filter { blocked[$0.name] == nil } }

    /// The blocked hosts added to a report of the others, in selection order.
    func merge(_ report: RunReport, selected: [LeaderMember]) -> RunReport {
        guard !blocked.isEmpty else { return report }
        var hosts: [RunReport.Host] = []
        for member in selected {
            if let outcome = blocked[member.name] {
                hosts.append(outcome.host(member: member, os: member.os))
            } else if let host = report.hosts.first(where: { $0.name == member.name }) {
                hosts.append(host)
            }
        }
        return RunReport(hosts: hosts, commands: report.commands, summary: Runner.summary(hosts))
    }
}
