import Logging
import ServiceLifecycle
import UnixSignals

/// Runs long-lived services until SIGTERM/SIGINT, the way every `ah` daemon command does:
/// the first signal starts the graceful shutdown (each service drains), a second one
/// cancels the services (grace periods end at once).
///
/// ServiceGroup alone cannot do this: it refuses a signal that is both a graceful-shutdown
/// and a cancellation signal. So the group runs without signals and this watcher, reading
/// swift-service-lifecycle's `UnixSignalsSequence`, escalates.
enum ServiceRunner {
    static func run(_ services: [any Service], logger: Logger) async throws {
        // A service that returns on its own has decided to stop (the leader service's idle
        // exit, `followers stop`): the group then shuts down gracefully instead of
        // reporting "a service has finished unexpectedly".
        let configured = services.map {
            ServiceGroupConfiguration.ServiceConfiguration(service: $0, successTerminationBehavior: .gracefullyShutdownGroup)
        }
        let group = ServiceGroup(configuration: .init(services: configured, logger: logger))
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        try await withThrowingTaskGroup(of: Bool.self) { tasks in
            tasks.addTask {
                try await group.run()
                return true
            }
            tasks.addTask {
                var count = 0
                for await signal in signals {
                    count += 1
                    if count == 1 {
                        logger.info("signal \(signal): shutting down gracefully (send it again to stop at once)")
                        await group.triggerGracefulShutdown()
                    } else {
                        logger.warning("signal \(signal) again: cutting the grace period short")
                        return false
                    }
                }
                return false
            }
            // Either the services ended (on their own or after the first signal), or a
            // second signal came: then cancel them and wait until they have stopped.
            let servicesEnded = try await tasks.next() ?? true
            tasks.cancelAll()
            if !servicesEnded { while try await tasks.next() != nil {} }
        }
    }
}
