import AHAccessPoint
import AHControl
import AHExecutor
import AHSPIFFE
import AHStore
import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix

/// Many idle executors held connected to one access point, from this process (bench/registry-scale
/// drives it and measures the access point, not this process):
///
/// 1. COUNT identities (`reg-0001`...) enroll with one multi-use join token minted in the
///    access point's data directory, each into its own temporary state directory, and each
///    starts a real `ExecutorAgent` (the code `ah agent enroll` runs: mutual TLS `ah/1`, Hello,
///    heartbeats every --heartbeat-interval, keep-alives, reconnect after a fault) with ssh
///    disabled, so Hello needs no ssh-keyscan. At most --concurrency executors are enrolling or
///    waiting for their first connection at once.
/// 2. When every agent has reported `.connected` (or failed to within --connect-timeout), one
///    line `connected N` goes to stdout (N: how many are connected; `failed F` follows when
///    some are not). The agents are then held for --hold while their heartbeats flow;
///    disconnects during the hold are counted.
/// 3. All agents are cancelled (Goodbye + close, as on SIGTERM) and a summary line follows.
///
/// Exit 0 when no more than --max-failures executors failed to connect or were disconnected
/// during the hold, else 1. A watchdog ends the process (exit 1) if everything takes far
/// longer than --connect-timeout + --hold.
struct DebugRegistryLoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "registry-load",
        abstract: "Hold many enrolled, heartbeating executors connected to a running access point.",
        discussion: """
            --data-dir is the running access point's data directory on this machine: one join \
            token with --uses COUNT is minted there and the CA pin is read from it. COUNT \
            in-process executors PREFIX-0001... enroll into temporary state directories and each \
            run the agent's connection loop (Hello, heartbeats, reconnects; ssh disabled), at most \
            --concurrency enrolling or connecting at a time. When all are connected, `connected N` \
            is printed on stdout; they are held for --hold, then disconnected. Failures and \
            disconnects are counted and reported; more than --max-failures exits 1. The executors \
            stay registered in the data directory afterwards.
            """
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var target: LoadTargetOptions

    @Option(help: "How many executors to enroll and hold connected.")
    var count: Int = 2000

    @Option(help: "Executors enrolling or waiting for their first connection at once.")
    var concurrency: Int = 32

    @Option(name: .customLong("heartbeat-interval"), help: ArgumentHelp("Each executor's heartbeat interval.", valueName: "duration"))
    var heartbeatInterval: HumanDuration = HumanDuration(seconds: 5)

    @Option(name: .customLong("idle-timeout"), help: ArgumentHelp("Each executor's QUIC idle timeout (keep-alives every third of it), as `ah agent enroll`.", valueName: "duration"))
    var idleTimeout: HumanDuration = HumanDuration(seconds: 30)

    @Option(help: ArgumentHelp("How long to hold all executors connected after the last one connected.", valueName: "duration"))
    var hold: HumanDuration = HumanDuration(seconds: 60)

    @Option(name: .customLong("connect-timeout"), help: ArgumentHelp("How long one executor may take to enroll and connect before it counts as failed.", valueName: "duration"))
    var connectTimeout: HumanDuration = HumanDuration(seconds: 120)

    @Option(name: .customLong("name-prefix"), help: ArgumentHelp("Executor names are PREFIX-0001, PREFIX-0002, ...", valueName: "prefix"))
    var namePrefix: String = "reg"

    @Option(name: .customLong("max-failures"), help: "Executors that may fail to connect or be disconnected during the hold (reported either way) before exiting 1.")
    var maxFailures: Int = 0

    func validate() throws {
        guard (1...100_000).contains(count) else { throw ValidationError("--count '\(count)' must be between 1 and 100000") }
        guard (1...4096).contains(concurrency) else { throw ValidationError("--concurrency '\(concurrency)' must be between 1 and 4096") }
        guard heartbeatInterval.seconds >= 1 else { throw ValidationError("--heartbeat-interval '\(heartbeatInterval)' must be at least 1s") }
        guard idleTimeout.seconds >= 3 else { throw ValidationError("--idle-timeout '\(idleTimeout)' must be at least 3s") }
        guard connectTimeout.seconds > 0 else { throw ValidationError("--connect-timeout '\(connectTimeout)' must be positive") }
        guard SPIFFEID.isValidPathSegment("\(namePrefix)-0001") else {
            throw ValidationError("--name-prefix '\(namePrefix)' does not make valid executor names (letters, digits, '.', '-', '_')")
        }
        guard maxFailures >= 0 else { throw ValidationError("--max-failures '\(maxFailures)' must not be negative") }
    }

    func run() async throws {
        let logger = CLILogging.logger("ah.debug.registry-load")
        // The agents' own info lines ("connected to access point") only at debug/trace; their
        // warnings (a connection that ended, a failed attempt) always.
        let quiet: Logger = {
            var quiet = logger
            if quiet.logLevel > .debug { quiet.logLevel = max(quiet.logLevel, .warning) }
            return quiet
        }()
        let remote = try target.remote()
        let group = MultiThreadedEventLoopGroup.singleton
        let count = self.count
        let limit = Self.raiseFileLimit()
        if limit < UInt64(count) * 2 + 256 {
            logger.warning("open file limit \(limit) may be too low for \(count) executors (one UDP socket each, plus enrollment)")
        }

        // Worst case: every slot's executor takes the whole connect timeout, one batch after another.
        let batches = (count + concurrency - 1) / concurrency
        let deadline = min(connectTimeout.seconds * batches, 3600) + hold.seconds + 300
        let watchdog = LoadRun.watchdog(seconds: deadline, command: "registry-load")
        defer { watchdog.cancel() }
        let (token, caPin) = try await LoadRun.mintToken(dataDir: target.dataDir, uses: count, validFor: TimeInterval(deadline) + 300, tag: "registry-load")

        let scratch = try LoadRun.scratchDirectory(prefix: "ah-registry-load")
        defer { try? FileManager.default.removeItem(atPath: scratch) }

        var agentConfiguration = ExecutorAgent.Configuration(host: remote.host, port: remote.port)
        agentConfiguration.tunnelPolicy = TunnelPolicy(sshEnabled: false)
        agentConfiguration.heartbeatInterval = .seconds(Int64(heartbeatInterval.seconds))
        agentConfiguration.idleTimeout = .seconds(Int64(idleTimeout.seconds))
        agentConfiguration.keepAlive = .milliseconds(Int64(idleTimeout.seconds) * 1000 / 3)
        agentConfiguration.shutdownGrace = 0
        let configuration = agentConfiguration

        // ---- enroll + start COUNT agents, at most CONCURRENCY waiting for their first connection ----
        logger.info("\(count) executors enroll and connect, \(concurrency) at a time (heartbeats every \(heartbeatInterval))")
        let names = (1...count).map { String(format: "%@-%04d", namePrefix, $0) }
        let slots = (0..<count).map { Slot(name: names[$0]) }
        let runs = LockedList<Task<Void, Never>>()
        let timeoutSeconds = connectTimeout.seconds
        let start = DispatchTime.now()
        let progress = Task.detached {
            while !Task.isCancelled {
                try await Task.sleep(nanoseconds: 10_000_000_000)
                let connected = slots.filter(\.isConnected).count
                logger.info("\(connected) of \(count) connected after \(String(format: "%.0f", LoadRun.seconds(start, DispatchTime.now()))) s")
            }
        }
        let outcomes: [String?] = await LoadRun.concurrently(count: count, width: concurrency) { index in
            let slot = slots[index]
            do {
                let state = try ExecutorStateDirectory(path: (scratch as NSString).appendingPathComponent(slot.name))
                let enrolling = Task {
                    try await Enroller.enroll(host: remote.host, port: remote.port, token: token, caPin: caPin,
                                              name: slot.name, tags: [:], state: state, group: group, logger: quiet)
                }
                let enrollTimer = Task {
                    try await Task.sleep(nanoseconds: UInt64(timeoutSeconds) * 1_000_000_000)
                    enrolling.cancel()
                }
                defer { enrollTimer.cancel() }
                _ = try await enrolling.value
                let agent = ExecutorAgent(state: state, configuration: configuration, group: group, logger: quiet)
                let events = agent.events
                // Watch this agent's events for the whole run (first connection, disconnects, reconnects).
                Task { for await event in events { slot.record(event) } }
                runs.append(Task {
                    do { try await agent.run() } catch { slot.record(.disconnected(reason: "agent stopped: \(error)")) }
                })
                if await slot.waitConnected(timeoutSeconds: timeoutSeconds) { return nil }
                return "\(slot.name): not connected within \(timeoutSeconds) s (last: \(slot.lastProblem ?? "no event"))"
            } catch {
                return "\(slot.name): \(error)"
            }
        }
        let connectSeconds = LoadRun.seconds(start, DispatchTime.now())
        progress.cancel()
        let failures = outcomes.compactMap { $0 }
        let connected = slots.filter(\.isConnected).count
        print("connected \(connected)")
        if !failures.isEmpty { print("failed \(failures.count) (first: \(failures[0]))") }
        fflush(nil)
        logger.info("\(connected) of \(count) executors connected in \(String(format: "%.1f", connectSeconds)) s")
        for failure in failures.prefix(5) { logger.warning("failure: \(failure)") }

        // ---- hold ----
        let baseline = slots.map(\.snapshot)
        let holdSeconds = hold.seconds
        let holdStart = DispatchTime.now()
        while LoadRun.seconds(holdStart, DispatchTime.now()) < Double(holdSeconds) {
            let left = Double(holdSeconds) - LoadRun.seconds(holdStart, DispatchTime.now())
            try? await Task.sleep(nanoseconds: UInt64(min(10, max(left, 0)) * 1e9))
            let now = slots.filter(\.isConnected).count
            if left > 10 { logger.info("holding: \(now) of \(count) connected, \(String(format: "%.0f", left - 10)) s left") }
        }
        let after = slots.map(\.snapshot)
        let disconnects = zip(baseline, after).map { $1.disconnects - $0.disconnects }.reduce(0, +)
        let reconnects = zip(baseline, after).map { $1.connects - $0.connects }.reduce(0, +)
        let dropped = zip(baseline, after).filter { $1.disconnects > $0.disconnects }.map(\.1)
        let connectedAtEnd = slots.filter(\.isConnected).count

        // ---- stop: Goodbye + close, as on SIGTERM ----
        let stopStart = DispatchTime.now()
        let tasks = runs.items
        for task in tasks { task.cancel() }
        let stopped = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                for task in tasks { await task.value }
                return true
            }
            group.addTask {
                try? await Task.sleep(nanoseconds: 30_000_000_000)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        if !stopped { logger.warning("not every agent stopped within 30 s of being cancelled") }

        print(String(format: "held %d of %d executors for %d s (heartbeats every %d s): %d disconnect(s), %d reconnect(s), %d connected at the end; connecting took %.1f s, stopping %.1f s",
                     connected, count, holdSeconds, heartbeatInterval.seconds, disconnects, reconnects, connectedAtEnd,
                     connectSeconds, LoadRun.seconds(stopStart, DispatchTime.now())))
        for slot in dropped.prefix(5) { logger.warning("disconnected during the hold: \(slot.name): \(slot.lastProblem ?? "?")") }
        fflush(nil)
        let problems = failures.count + dropped.count
        if problems > maxFailures {
            throw CLIError.failed("\(failures.count) executor(s) failed to connect and \(dropped.count) were disconnected during the hold (--max-failures \(maxFailures))")
        }
    }

    // MARK: Helpers

    /// One executor's progress, fed from its agent's events.
    final class Slot: @unchecked Sendable {
        struct Snapshot { var name: String; var connects: Int; var disconnects: Int; var lastProblem: String? }

        let name: String
        private let lock = NSLock()
        private var connects = 0
        private var disconnects = 0
        private var connected = false
        private var problem: String?
        private var waiter: CheckedContinuation<Bool, Never>?

        init(name: String) { self.name = name }

        var isConnected: Bool { lock.withLock { connected } }
        var lastProblem: String? { lock.withLock { problem } }
        var snapshot: Snapshot { lock.withLock { Snapshot(name: name, connects: connects, disconnects: disconnects, lastProblem: problem) } }

        func record(_ event: ExecutorEvent) {
            let resume = lock.withLock { () -> CheckedContinuation<Bool, Never>? in
                switch event {
                case .connected:
                    connects += 1
                    connected = true
                    defer { waiter = nil }
                    return waiter
                case .disconnected(let reason):
                    if connected { disconnects += 1 }
                    connected = false
                    problem = "disconnected: \(reason)"
                case .connectFailed(let reason, _):
                    problem = "connect failed: \(reason)"
                case .renewalFailed(let reason, _):
                    problem = "renewal failed: \(reason)"
                case .renewed, .draining, .hostKeysReported:
                    break
                }
                return nil
            }
            resume?.resume(returning: true)
        }

        /// True once the agent has connected; false after `timeoutSeconds` without.
        func waitConnected(timeoutSeconds: Int) async -> Bool {
            let timer = Task {
                try await Task.sleep(nanoseconds: UInt64(timeoutSeconds) * 1_000_000_000)
                let resume: CheckedContinuation<Bool, Never>? = self.lock.withLock {
                    defer { self.waiter = nil }
                    return self.waiter
                }
                resume?.resume(returning: false)
            }
            defer { timer.cancel() }
            return await withCheckedContinuation { continuation in
                let done: Bool = lock.withLock {
                    if connects > 0 { return true }
                    waiter = continuation
                    return false
                }
                if done { continuation.resume(returning: true) }
            }
        }
    }

    /// Raises the soft RLIMIT_NOFILE to the hard limit (each client connection has its own UDP
    /// socket); returns the soft limit in force.
    static func raiseFileLimit() -> UInt64 {
        var limits = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits) == 0 else { return 0 }
        if limits.rlim_cur < limits.rlim_max {
            var raised = limits
            raised.rlim_cur = limits.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return UInt64(raised.rlim_cur) }
        }
        return UInt64(limits.rlim_cur)
    }
}
