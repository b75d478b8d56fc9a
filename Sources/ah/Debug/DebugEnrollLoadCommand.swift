import AHAccessPoint
import AHControl
import AHExecutor
@preconcurrency import AHQUIC
import AHSPIFFE
import AHStore
import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix

/// Load for one access point, measured from this process (bench/enroll drives it):
///
/// - Phase A: COUNT executors (`load-0001`...) enroll with one multi-use join token and
///   connect over mutual TLS `ah/1` exactly as `ah agent enroll` does (Enroller, then the
///   ExecutorAgent's connection settings), at most CONCURRENCY at a time, all of them kept
///   open until the last one is connected; the wall time from the first enrollment to the
///   last connection is the figure.
/// - Phase B: HANDSHAKES full mutual-TLS QUIC handshakes (connect → handshake confirmed by
///   the server → close), CONCURRENCY at a time, with the enrolled identities in turn (the
///   access point keeps one connection per executor and replaces an older one, so a single
///   identity at CONCURRENCY > 1 would have handshakes closed in flight); successful
///   handshakes per second, up to the last successful one, is the figure.
///
/// Failures (an enrollment, connection or handshake that is refused or times out) are
/// counted and reported; more than `--max-failures` makes the exit status 1.
///
/// Everything runs on `MultiThreadedEventLoopGroup.singleton`; a watchdog ends the process
/// (exit 1) after `--timeout`.
struct DebugEnrollLoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll-load",
        abstract: "Enroll and connect many executors to a running access point, then measure its mTLS handshake rate.",
        discussion: """
            --data-dir is the running access point's data directory on this machine: one join \
            token with --uses COUNT is minted there (as `ah token create` does) and the CA pin is \
            read from it. Phase A: COUNT in-process executors load-0001... each enroll into their \
            own temporary state directory and open an mTLS ah/1 connection like `ah agent enroll`; \
            all stay open until every one is connected (reported: wall time). Phase B: HANDSHAKES \
            full handshakes (connect, handshake confirmed, close) with the enrolled identities \
            in turn (reported: successful handshakes per second, up to the last successful one). \
            At most --concurrency operations are in flight in either phase. Failures are counted \
            and reported; more than --max-failures exits 1. The executors stay registered in the \
            data directory afterwards.
            """
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var target: LoadTargetOptions

    @Option(help: "How many executors enroll and connect in phase A.")
    var count: Int = 200

    @Option(help: "Operations in flight at once (enroll+connect in phase A, handshakes in phase B).")
    var concurrency: Int = 16

    @Option(help: "Full handshakes in phase B (0 skips it).")
    var handshakes: Int = 2000

    @Option(name: .customLong("name-prefix"), help: ArgumentHelp("Executor names are PREFIX-0001, PREFIX-0002, ...", valueName: "prefix"))
    var namePrefix: String = "load"

    @Option(name: .customLong("server-pid"), help: ArgumentHelp("The access point's process id on this machine: report its CPU time per handshake in phase B (from /proc).", valueName: "pid"))
    var serverPID: Int32?

    @Option(name: .customLong("max-failures"), help: "Failed enrollments, connections and handshakes tolerated (reported either way) before exiting 1.")
    var maxFailures: Int = 0

    @Option(help: ArgumentHelp("Give up (exit 1) when the whole run takes longer than this.", valueName: "duration"))
    var timeout: HumanDuration = HumanDuration(seconds: 600)

    @Flag(help: "Print one JSON document instead of text.")
    var json = false

    func validate() throws {
        guard (1...100_000).contains(count) else { throw ValidationError("--count '\(count)' must be between 1 and 100000") }
        guard (1...4096).contains(concurrency) else { throw ValidationError("--concurrency '\(concurrency)' must be between 1 and 4096") }
        guard (0...10_000_000).contains(handshakes) else { throw ValidationError("--handshakes '\(handshakes)' must be between 0 and 10000000") }
        guard SPIFFEID.isValidPathSegment("\(namePrefix)-0001") else {
            throw ValidationError("--name-prefix '\(namePrefix)' does not make valid executor names (letters, digits, '.', '-', '_')")
        }
        guard maxFailures >= 0 else { throw ValidationError("--max-failures '\(maxFailures)' must not be negative") }
        guard timeout.seconds > 0 else { throw ValidationError("--timeout '\(timeout)' must be positive") }
    }

    func run() async throws {
        let logger = CLILogging.logger("ah.debug.enroll-load")
        // The executors' own logs ("enrolled", connection warnings) only at debug/trace, else
        // 2 x COUNT info lines would drown the figures.
        let quiet: Logger = {
            var quiet = logger
            if quiet.logLevel > .debug { quiet.logLevel = max(quiet.logLevel, .warning) }
            return quiet
        }()
        let remote = try target.remote()
        let group = MultiThreadedEventLoopGroup.singleton
        let deadline = timeout.seconds
        let watchdog = LoadRun.watchdog(seconds: deadline, command: "enroll-load")
        defer { watchdog.cancel() }
        let (token, caPin) = try await LoadRun.mintToken(dataDir: target.dataDir, uses: count, validFor: TimeInterval(deadline) + 300, tag: "enroll-load")

        let scratch = try LoadRun.scratchDirectory(prefix: "ah-enroll-load")
        defer { try? FileManager.default.removeItem(atPath: scratch) }

        // ---- Phase A: enroll + connect COUNT executors, keep them all open ----
        logger.info("phase A: \(count) executors enroll and connect, \(concurrency) at a time")
        let names = (1...count).map { String(format: "%@-%04d", namePrefix, $0) }
        let phaseAStart = DispatchTime.now()
        let outcomes: [Result<Enrolled, Error>] = await LoadRun.concurrently(count: count, width: concurrency) { index in
            let name = names[index]
            do {
                let state = try ExecutorStateDirectory(path: (scratch as NSString).appendingPathComponent(name))
                let t0 = DispatchTime.now()
                let metadata = try await Enroller.enroll(host: remote.host, port: remote.port, token: token, caPin: caPin,
                                                         name: name, tags: [:], state: state, group: group, logger: quiet)
                let t1 = DispatchTime.now()
                let configuration = try Self.agentConfiguration(state: state, metadata: metadata)
                let connection = try await QUICClient.connect(host: remote.host, port: remote.port, configuration: configuration,
                                                              group: group, logger: quiet)
                let t2 = DispatchTime.now()
                return .success(Enrolled(name: name, state: state, metadata: metadata, connection: connection,
                                         enrollSeconds: LoadRun.seconds(t0, t1), connectSeconds: LoadRun.seconds(t1, t2)))
            } catch {
                return .failure(LoadError("\(name): \(error)"))
            }
        }
        let enrollAndConnectSeconds = LoadRun.seconds(phaseAStart, DispatchTime.now())
        let enrolled = outcomes.compactMap { try? $0.get() }
        let failures = outcomes.compactMap { outcome -> String? in
            if case .failure(let error) = outcome { return "\(error)" }
            return nil
        }
        // Still open at the end of phase A (none was dropped while the others connected)?
        var stillOpen = 0
        for item in enrolled {
            let connection = item.connection
            if (try? await connection.eventLoop.submit { connection.closeReason == nil }.get()) == true { stillOpen += 1 }
        }
        for item in enrolled { item.connection.close(applicationErrorCode: 0, reason: "enroll-load phase A done") }
        _ = try? await EventLoopFuture.andAllComplete(enrolled.map(\.connection.closeFuture), on: group.next()).get()
        var allFailures = failures
        if stillOpen < enrolled.count {
            allFailures.append("\(enrolled.count - stillOpen) connection(s) closed before the last executor connected")
        }
        logger.info("phase A: \(enrolled.count) of \(count) executors enrolled and connected in \(String(format: "%.3f", enrollAndConnectSeconds)) s")
        for failure in failures.prefix(5) { logger.warning("phase A failure: \(failure)") }
        guard !enrolled.isEmpty else {
            throw CLIError.failed("phase A: no executor enrolled and connected; first failure: \(failures.first ?? "none")")
        }
        let phaseAFailures = count - stillOpen

        // ---- Phase B: full handshakes, the enrolled identities in turn ----
        var handshakeSeconds = 0.0
        var phaseBWall = 0.0
        var latencies: [Double] = []
        var serverCPU: Double?
        var clientCPU = 0.0
        var handshakeErrors: [String] = []
        if handshakes > 0 {
            // Handshake i uses executor i mod COUNT: the access point keeps one connection per
            // executor and closes the older one when the same name connects again, which at
            // CONCURRENCY > 1 with a single identity would close handshakes still in flight.
            logger.info("phase B: \(handshakes) full mTLS handshakes, \(concurrency) at a time, identities \(enrolled[0].name)... in turn")
            let configurations = try enrolled.map { try Self.agentConfiguration(state: $0.state, metadata: $0.metadata) }
            let closes = LockedList<EventLoopFuture<Void>>()
            let total = handshakes
            let serverCPUBefore = serverPID.flatMap(Self.processCPUSeconds)
            let clientCPUBefore = Self.ownCPUSeconds()
            let phaseBStart = DispatchTime.now()
            // Each success: (its latency, when it completed relative to the phase start).
            let results: [Result<(Double, Double), Error>] = await LoadRun.concurrently(count: total, width: concurrency) { index in
                let t0 = DispatchTime.now()
                do {
                    let connection = try await QUICClient.connect(host: remote.host, port: remote.port,
                                                                  configuration: configurations[index % configurations.count],
                                                                  group: group, logger: quiet)
                    let t1 = DispatchTime.now()
                    connection.close(applicationErrorCode: 0, reason: "handshake benchmark")
                    closes.append(connection.closeFuture)
                    return .success((LoadRun.seconds(t0, t1), LoadRun.seconds(phaseBStart, t1)))
                } catch {
                    return .failure(error)
                }
            }
            phaseBWall = LoadRun.seconds(phaseBStart, DispatchTime.now())
            // The rate runs to the last successful handshake: a failed one (which can hold its
            // slot until a timeout) is counted and reported, not allowed to stretch the clock.
            handshakeSeconds = results.compactMap { try? $0.get().1 }.max() ?? phaseBWall
            clientCPU = Self.ownCPUSeconds() - clientCPUBefore
            if let before = serverCPUBefore, let after = serverPID.flatMap(Self.processCPUSeconds) { serverCPU = after - before }
            _ = try? await EventLoopFuture.andAllComplete(closes.items, on: group.next()).get()
            latencies = results.compactMap { try? $0.get().0 }.sorted()
            handshakeErrors = results.compactMap { result -> String? in
                if case .failure(let error) = result { return "\(error)" }
                return nil
            }
            for error in handshakeErrors.prefix(5) { logger.warning("phase B failure: \(error)") }
            allFailures += handshakeErrors
        }

        // ---- Report ----
        let succeeded = handshakes - handshakeErrors.count
        let rate = handshakes > 0 ? Double(succeeded) / handshakeSeconds : 0
        let enrollMedian = Self.median(enrolled.map(\.enrollSeconds).sorted())
        let connectMedian = Self.median(enrolled.map(\.connectSeconds).sorted())
        if json {
            var document: [String: Any] = [
                "executors": count, "enrollAndConnectSeconds": enrollAndConnectSeconds,
                "handshakes": handshakes, "handshakeSeconds": handshakeSeconds, "handshakesPerSecond": rate,
                "concurrency": concurrency,
                "executorFailures": phaseAFailures, "handshakeFailures": handshakeErrors.count,
                "handshakePhaseWallSeconds": phaseBWall,
                "enrollMillisecondsMedian": enrollMedian * 1000, "connectMillisecondsMedian": connectMedian * 1000,
                "clientCPUSeconds": clientCPU,
            ]
            if !latencies.isEmpty {
                document["handshakeMillisecondsMedian"] = Self.median(latencies) * 1000
                document["handshakeMillisecondsP99"] = Self.percentile(latencies, 0.99) * 1000
            }
            if let serverCPU { document["serverCPUSeconds"] = serverCPU }
            if let first = allFailures.first { document["firstFailure"] = first }
            printJSON(document)
        } else {
            print(String(format: "phase A: %d of %d executors enrolled and connected in %.3f s (concurrency %d; median enroll %.1f ms, connect %.1f ms)",
                         count - phaseAFailures, count, enrollAndConnectSeconds, concurrency, enrollMedian * 1000, connectMedian * 1000))
            if handshakes > 0 {
                print(String(format: "phase B: %d of %d mTLS handshakes in %.3f s: %.1f handshakes/s (concurrency %d; median %.2f ms, p99 %.2f ms)",
                             succeeded, handshakes, handshakeSeconds, rate, concurrency,
                             Self.median(latencies) * 1000, Self.percentile(latencies, 0.99) * 1000))
                var cpu = String(format: "         CPU per handshake: client %.2f ms", clientCPU / Double(handshakes) * 1000)
                if let serverCPU { cpu += String(format: ", access point %.2f ms", serverCPU / Double(handshakes) * 1000) }
                print(cpu)
            }
            if let first = allFailures.first { print("failures: \(allFailures.count); first: \(first)") }
        }
        if allFailures.count > maxFailures {
            throw CLIError.failed("\(allFailures.count) failure(s) (--max-failures \(maxFailures)); first: \(allFailures[0])")
        }
    }

    // MARK: Helpers

    struct Enrolled: Sendable {
        let name: String
        let state: ExecutorStateDirectory
        let metadata: ExecutorStateDirectory.Metadata
        let connection: QUICConnection
        let enrollSeconds: Double
        let connectSeconds: Double
    }

    struct LoadError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// The connection settings of `ExecutorAgent.connect` (and its defaults).
    static func agentConfiguration(state: ExecutorStateDirectory, metadata: ExecutorStateDirectory.Metadata) throws -> QUICConfiguration {
        let defaults = ExecutorAgent.Configuration(host: "", port: 0)
        var quic = QUICConfiguration(
            identity: TLSIdentity(certFile: state.certificatePath, keyFile: state.keyPath, caFile: state.caPath),
            peerPolicy: .exact(try SPIFFEID.accessPoint(trustDomain: metadata.trustDomain)))
        quic.alpn = controlALPN
        quic.idleTimeout = defaults.idleTimeout
        quic.keepAliveInterval = defaults.keepAlive
        return quic
    }

    static func median(_ sorted: [Double]) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }

    static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((Double(sorted.count) * p).rounded(.up)) - 1
        return sorted[min(max(rank, 0), sorted.count - 1)]
    }

    /// User + system CPU seconds of process `pid` (Linux /proc), nil when unreadable.
    static func processCPUSeconds(_ pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // Fields after "(comm)": state is field 3, utime 14, stime 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func ownCPUSeconds() -> Double { processCPUSeconds(getpid()) ?? 0 }
}
