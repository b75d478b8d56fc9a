import Foundation

extension LeaderEngine {
    /// Starts the event uplink when the fleet names the leader's executor state directory
    /// (`[fleet] agent_state_dir`). `AH_EVENTS_MAX_PENDING` overrides the bound of
    /// unacknowledged events (tests and operators with little disk).
    func startUplink(environment: [String: String]) throws {
        guard let stateDirectory = fleet.config.settings.agentStateDir else {
            logger.info("no agent_state_dir in the fleet config: events stay in the leader's journal")
            return
        }
        let target: EventUplinkTarget
        do { target = try EventUplinkTarget.load(stateDirectory: stateDirectory) } catch {
            // The run itself does not need the uplink: keep the events local and say why.
            logger.warning("events stay in the leader's journal: \(error)")
            return
        }
        var settings = EventPusher.Settings()
        if let text = environment["AH_EVENTS_MAX_PENDING"] {
            guard let value = Int64(text), value > 0 else {
                throw LeaderFailure.usage("AH_EVENTS_MAX_PENDING '\(text)' must be a positive whole number of events")
            }
            settings.maxUnacknowledged = value
        }
        let pusher: EventPusher
        do { pusher = try EventPusher(journal: journal, target: target, settings: settings, logger: logger) } catch {
            throw LeaderFailure(exitCode: 1, "cannot prepare the event uplink in \(paths.database.path): \(error)")
        }
        uplink.withLockedValue { $0 = pusher }
        pusher.start()
    }

    func stopUplink() async {
        await uplink.withLockedValue { $0 }?.stop()
    }
}
