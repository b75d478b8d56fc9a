import AHHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers

/// The leader service's brain: the fleet, one `FollowerLink` per follower (path, SSH session,
/// helper — kept warm between requests), and the requests: list, run, session, stop.
public final class LeaderEngine: LeaderRequestHandler, Sendable {
    let fleet: LeaderFleet
    let paths: LeaderPaths
    let logger: Logger
    let links: [String: FollowerLink]
    let session: SessionReport
    let hostKeys: HostKeyDirectory
    let journal: EventJournal
    /// The leader workspace's snapshots and what each follower holds (SyncService.swift).
    let sync: SyncService
    private let monitor = NIOLockedValueBox<Task<Void, Never>?>(nil)
    /// Pushes the journal to the access point when `agent_state_dir` is set (EventPusher.swift).
    let uplink = NIOLockedValueBox<EventPusher?>(nil)

    init(fleet: LeaderFleet, paths: LeaderPaths, sessionID: String, journal: EventJournal, version: String, logger: Logger) {
        self.fleet = fleet
        self.paths = paths
        self.logger = logger
        self.journal = journal
        self.sync = SyncService(fleet: fleet, paths: paths, logger: logger)
        self.session = SessionReport(id: sessionID, startedAt: UTCStamp.now(), fleet: fleet.name)
        let hostKeys = HostKeyDirectory(fleet: fleet)
        self.hostKeys = hostKeys
        var links: [String: FollowerLink] = [:]
        for member in fleet.followers {
            links[member.name] = FollowerLink(member: member, fleet: fleet, hostKeys: hostKeys, journal: journal, version: version,
                                             logger: logger)
        }
        self.links = links
        journal.append("followersCatalog", ["fleet": .string(fleet.name), "followers": .array(fleet.followers.map { member in
            .object(["name": .string(member.name), "os": .optional(member.os),
                     "tags": .object(member.tags.mapValues(JSONValue.string)),
                     "connect": .string(member.connect.rawValue)])
        })])
    }

    /// Loads the fleet config (exit 2 naming the problem) and makes the engine. The session
    /// id comes from `AH_SESSION_ID` when a caller owns it, else a new one.
    public static func make(fleetConfig: String, paths: LeaderPaths, version: String, logger: Logger,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws -> LeaderEngine {
        let fleet = try FleetBridge.load(path: fleetConfig)
        let session = environment["AH_SESSION_ID"].flatMap { $0.isEmpty ? nil : $0 } ?? UUID().uuidString.lowercased()
        do {
            try paths.prepare()
        } catch {
            throw LeaderFailure(exitCode: 1, "cannot create the leader's state directory \(paths.stateDirectory.path): \(error)")
        }
        let journal: EventJournal
        do { journal = try EventJournal(path: paths.database.path, session: session, logger: logger) } catch {
            throw LeaderFailure(exitCode: 1, "cannot open the leader's state \(paths.database.path): \(error)")
        }
        let engine = LeaderEngine(fleet: fleet, paths: paths, sessionID: session, journal: journal, version: version, logger: logger)
        engine.startHealthProbes()
        try engine.startUplink(environment: environment)
        return engine
    }

    /// Probes every connected follower each `health_probe_interval` (seed stage 6).
    func startHealthProbes() {
        let links = Array(self.links.values)
        let interval = fleet.healthProbeInterval
        monitor.withLockedValue { task in
            task = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    if Task.isCancelled { return }
                    await withTaskGroup(of: Void.self) { group in
                        for link in links { group.addTask { await link.healthCheck() } }
                    }
                }
            }
        }
    }

    public func handle(_ request: LeaderRequest, emit: @escaping @Sendable (LeaderEvent) async -> Void) async throws -> LeaderResult {
        switch request {
        case .ping:
            return .pong(version: "", pid: getpid())
        case .session:
            return .session(session)
        case .stop:
            return .stopped
        case .list:
            return .list(await list())
        case .run(let run):
            return .run(try await Runner(engine: self, request: run, emit: emit).execute())
        case .slurp(let slurp):
            return .slurp(try await Slurper(engine: self, request: slurp, emit: emit).execute())
        case .syncFence(let fence):
            return .fence(try await Syncer(engine: self, emit: emit).fence(fence))
        case .moments:
            return .moments(try await Syncer(engine: self, emit: emit).moments())
        case .seek(let moment):
            return .seek(try await Syncer(engine: self, emit: emit).seek(moment: moment))
        }
    }

    public func shutdown() async {
        monitor.withLockedValue { $0?.cancel() }
        await withTaskGroup(of: Void.self) { group in
            for link in links.values { group.addTask { await link.close() } }
        }
        await stopUplink()
        await journal.close()
    }

    /// Every follower, connected if it can be (in parallel, each within its connect timeout).
    func list() async -> FollowersListReport {
        let members = fleet.followers
        var rows: [String: FollowersListReport.Follower] = [:]
        await withTaskGroup(of: FollowersListReport.Follower.self) { group in
            for member in members {
                let link = links[member.name]!
                group.addTask {
                    let status = await link.probe()
                    return FollowersListReport.Follower(name: member.name, os: status.os ?? member.os, tags: member.tags,
                                                        path: status.path, health: status.health, error: status.error)
                }
            }
            for await row in group { rows[row.name] = row }
        }
        return FollowersListReport(followers: members.compactMap { rows[$0.name] })
    }
}
