import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a helper stopped.
public enum HelperServerStop: Sendable, Equatable, CustomStringConvertible {
    /// Its input ended: the leader (or its SSH session) went away. The normal end.
    case inputClosed
    /// Writing to the leader failed.
    case outputFailed(String)
    /// The leader sent something this helper refuses (incompatible version, broken frame).
    case refused(String)

    public var description: String {
        switch self {
        case .inputClosed: return "the leader closed the helper's input"
        case .outputFailed(let reason): return reason
        case .refused(let reason): return reason
        }
    }
}

/// The follower side of `ah agent follower-helper`: reads frames from `input` (stdin),
/// writes frames to `output` (stdout), runs commands as children in their own process
/// groups. When the input ends, every running job's group is terminated (SIGTERM, SIGKILL
/// after the grace) before `run()` returns: no orphans survive the leader.
public final class HelperServer: Sendable {
    public struct Configuration: Sendable {
        /// Jobs running at once; a `run` beyond that is refused with `too-many-jobs`.
        public var maximumJobs = 1024
        /// Between SIGTERM and SIGKILL when a job times out, is cancelled or the helper stops.
        public var terminationGrace: Duration = .seconds(2)

        public init() {}
    }

    private let input: Int32
    private let core: ServerCore

    public init(input: Int32 = 0, output: Int32 = 1, ahVersion: String, configuration: Configuration = Configuration(),
                logger: Logger) {
        self.input = input
        self.core = ServerCore(output: output, ahVersion: ahVersion, configuration: configuration, logger: logger)
    }

    /// Serves until the input ends or the leader is refused, then ends every job.
    public func run() async -> HelperServerStop {
        // A vanished leader must show as a failed write (EPIPE), not kill the helper before
        // it could end its jobs. Children get SIGPIPE back at exec (ChildSpawner).
        signal(SIGPIPE, SIG_IGN)
        let stop = await withCheckedContinuation { (continuation: CheckedContinuation<HelperServerStop, Never>) in
            core.onStop(continuation)
            let thread = Thread { [core, input] in core.readLoop(input: input) }
            thread.name = "helper input"
            thread.start()
        }
        await core.endAllJobs()
        return stop
    }
}

/// The helper's state: the job table, the handshake, the stop signal. Shared by the input
/// thread and the jobs' threads, hence the lock.
private final class ServerCore: @unchecked Sendable {
    private let ahVersion: String
    private let configuration: Configuration
    private let logger: Logger
    // Set once at the end of init (its callback needs `self`), read-only afterwards.
    private var sink: FrameSink!

    private let lock = NSLock()
    // Guarded by `lock`.
    private var jobs: [UInt32: ServerJob] = [:]
    private var stopReason: HelperServerStop?
    private var stopContinuation: CheckedContinuation<HelperServerStop, Never>?
    private var drainWaiters: [CheckedContinuation<Void, Never>] = []
    /// Running slurps (SlurpSender.swift).
    private let slurps = SlurpSenders()
    /// The sync receiver (SyncReceiver.swift): its own thread, fed in order.
    private let syncs = SyncReceivers()

    typealias Configuration = HelperServer.Configuration

    init(output: Int32, ahVersion: String, configuration: Configuration, logger: Logger) {
        self.ahVersion = ahVersion
        self.configuration = configuration
        self.logger = logger
        sink = FrameSink(fd: output) { [weak self] reason in self?.stop(.outputFailed(reason)) }
    }

    // MARK: stopping

    func onStop(_ continuation: CheckedContinuation<HelperServerStop, Never>) {
        let early: HelperServerStop? = lock.withLock {
            if let stopReason { return stopReason }
            stopContinuation = continuation
            return nil
        }
        if let early { continuation.resume(returning: early) }
    }

    private func stop(_ reason: HelperServerStop) {
        let continuation: CheckedContinuation<HelperServerStop, Never>? = lock.withLock {
            guard stopReason == nil else { return nil }
            stopReason = reason
            defer { stopContinuation = nil }
            return stopContinuation
        }
        if reason == .inputClosed {
            logger.info("Leader went away; ending the running jobs")
        } else {
            logger.warning("Follower helper stopping: \(reason)")
        }
        continuation?.resume(returning: reason)
    }

    /// SIGTERM to every group, SIGKILL to what is left after the grace, then a short wait
    /// for the exit reports (bounded: the leader may not read them any more).
    func endAllJobs() async {
        let running = lock.withLock { Array(jobs.values) }
        guard !running.isEmpty else { return }
        for job in running { job.terminate(.shutdown) }
        if await waitForNoJobs(timeout: configuration.terminationGrace) { return }
        for job in lock.withLock({ Array(jobs.values) }) { job.killIfRunning() }
        _ = await waitForNoJobs(timeout: .seconds(2))
    }

    private func waitForNoJobs(timeout: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let empty: Bool = self.lock.withLock {
                        if self.jobs.isEmpty { return true }
                        self.drainWaiters.append(continuation)
                        return false
                    }
                    if empty { continuation.resume() }
                }
                return true
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            if !first {
                // Release the drain waiter so the group can finish.
                let waiters = self.lock.withLock { () -> [CheckedContinuation<Void, Never>] in
                    defer { self.drainWaiters = [] }
                    return self.drainWaiters
                }
                waiters.forEach { $0.resume() }
            }
            group.cancelAll()
            return first
        }
    }

    private func jobFinished(_ id: UInt32) {
        let waiters: [CheckedContinuation<Void, Never>] = lock.withLock {
            jobs[id] = nil
            guard jobs.isEmpty else { return [] }
            defer { drainWaiters = [] }
            return drainWaiters
        }
        waiters.forEach { $0.resume() }
    }

    // MARK: input

    func readLoop(input: Int32) {
        var decoder = HelperFrameDecoder()
        var greeted = false
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while lock.withLock({ stopReason == nil }) {
            let count = read(input, &buffer, buffer.count)
            if count < 0 {
                if errno == EINTR { continue }
                logger.warning("Reading the leader's frames failed: \(String(cString: strerror(errno)))")
                break
            }
            if count == 0 { break }
            decoder.append(buffer[0..<count])
            do {
                while let frame = try decoder.next() {
                    if let refusal = handle(frame, greeted: &greeted) {
                        stop(.refused(refusal))
                        return
                    }
                }
            } catch {
                sink.send(.error(HelperErrorMessage(code: error.code, message: error.description)))
                stop(.refused(error.description))
                return
            }
        }
        stop(.inputClosed)
    }

    /// Handles one frame; a non-nil result is why the connection ends (after the error
    /// message saying so was sent).
    private func handle(_ frame: HelperRawFrame, greeted: inout Bool) -> String? {
        guard let kind = HelperFrameKind(rawValue: frame.kind) else {
            complain("unknown-frame-kind", "this helper does not know frame kind \(frame.kind); the frame was skipped")
            return nil
        }
        if kind == .syncData, greeted {
            syncs.data(frame, sink: sink, logger: logger)
            return nil
        }
        guard kind == .message else {
            complain("unexpected-frame", "this helper receives no output frames (kind \(frame.kind)); the frame was skipped")
            return nil
        }
        let message: HelperMessage
        do {
            message = try HelperMessage.decode(frame.payload)
        } catch {
            complain(error.code, error.description)
            return greeted ? nil : "the first message was not a hello (\(error))"
        }
        guard greeted else {
            guard case .hello(let hello) = message else {
                let reason = "the first message must be a hello, not '\(message.type)'"
                complain("hello-expected", reason)
                return reason
            }
            guard hello.version == HelperWire.protocolVersion else {
                let reason = "the leader (ah \(hello.ahVersion.prefix(64))) speaks follower helper protocol version \(hello.version), "
                    + "this helper (ah \(ahVersion)) speaks version \(HelperWire.protocolVersion); install the same ah version on both"
                complain("version", reason)
                return reason
            }
            greeted = true
            logger.info("Leader connected", metadata: ["leaderVersion": "\(hello.ahVersion.prefix(64))", "leaderPID": "\(hello.pid)"])
            sink.send(.hello(HelperHello(ahVersion: ahVersion)))
            return nil
        }
        switch message {
        case .run(let request):
            start(request)
        case .cancel(let job):
            lock.withLock { jobs[job] }?.terminate(.cancel)
        case .probe(let id):
            sink.send(.probeReply(id: id))
        case .error(let error):
            logger.warning("The leader reported an error", metadata: ["code": "\(error.code.prefix(64))", "message": "\(error.message.prefix(512))"])
        case .hello, .probeReply, .started, .exited:
            complain("unexpected-type", "the helper does not accept '\(message.type)' messages (after the hello)")
        case .sync(let message):
            syncs.handle(message, sink: sink, logger: logger)
        case .slurp(let slurp):
            slurps.handle(slurp, sink: sink, workingDirectory: FileManager.default.currentDirectoryPath, logger: logger) {
                complain($0, $1, job: slurp.job)
            }
        }
        return nil
    }

    private func complain(_ code: String, _ message: String, job: UInt32? = nil) {
        logger.warning("Refused a leader message", metadata: ["code": "\(code)", "reason": "\(message)"])
        sink.send(.error(HelperErrorMessage(code: code, message: message, job: job)))
    }

    // MARK: jobs

    private func start(_ request: RunRequest) {
        if let problem = request.problem {
            complain("bad-request", problem, job: request.job)
            return
        }
        let refusal: (code: String, message: String)? = lock.withLock {
            if stopReason != nil { return ("shutting-down", "the helper is shutting down") }
            if jobs[request.job] != nil { return ("duplicate-job", "job \(request.job) is already running") }
            if jobs.count >= configuration.maximumJobs {
                return ("too-many-jobs", "\(jobs.count) jobs are running, the limit is \(configuration.maximumJobs)")
            }
            return nil
        }
        if let refusal {
            complain(refusal.code, refusal.message, job: request.job)
            return
        }
        let child: SpawnedChild
        do {
            child = try ChildSpawner.spawn(argv: request.argv, addedEnvironment: request.env, cwd: request.cwd)
        } catch {
            logger.info("Could not start a job", metadata: ["job": "\(request.job)", "error": "\(error)"])
            sink.send(.exited(job: request.job, JobExit(durationMs: 0, error: error.description)))
            return
        }
        let job = ServerJob(id: request.job, pid: child.pid, sink: sink, grace: configuration.terminationGrace) { [weak self] id in
            self?.jobFinished(id)
        }
        // A stop that came in since the check above (a failed write, from a job's thread)
        // may already have ended the table's jobs: end this one too.
        let stopping: Bool = lock.withLock {
            jobs[request.job] = job
            return stopReason != nil
        }
        logger.debug("Started a job", metadata: ["job": "\(request.job)", "pid": "\(child.pid)"])
        sink.send(.started(job: request.job, pid: child.pid))
        job.start(stdout: child.stdout, stderr: child.stderr, timeout: request.timeoutMillis.map { .milliseconds($0) })
        if stopping { job.terminate(.shutdown) }
    }
}

extension RunRequest {
    /// What makes a run request impossible to carry out, as a sentence naming the value.
    var problem: String? {
        if job == 0 { return "job id 0 is reserved" }
        guard let program = argv.first, !program.isEmpty else { return "argv is empty (job \(job))" }
        if argv.contains(where: { $0.utf8.contains(0) }) { return "an argument contains a NUL byte (job \(job))" }
        for (key, value) in env {
            if key.isEmpty || key.contains("=") || key.utf8.contains(0) {
                return "environment name '\(key.prefix(64))' is empty or contains '=' or NUL (job \(job))"
            }
            if value.utf8.contains(0) { return "the value of \(key.prefix(64)) contains a NUL byte (job \(job))" }
        }
        if let cwd = cwd, cwd.isEmpty || cwd.utf8.contains(0) {
            return "the working directory '\(cwd.prefix(256))' is empty or contains a NUL byte (job \(job))"
        }
        if let timeout = timeoutMillis, !(1...2_592_000_000).contains(timeout) {
            return "timeoutMillis \(timeout) is outside 1 … 2592000000 (30 days) (job \(job))"
        }
        return nil
    }
}
