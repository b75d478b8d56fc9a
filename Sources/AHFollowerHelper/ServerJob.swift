import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One running command on the helper: two pipe readers (stdout, stderr) and a waiter, each
/// a thread of its own that blocks in read/waitpid. Its `exited` report goes out after the
/// main process was reaped and both pipes reached their end, so every output frame of a job
/// precedes its exit.
///
/// The child leads its own session and process group (pgid == pid), so signals go to
/// `-pid`: the whole tree the command started, not just the main process. When the main
/// process ends while others of its group still run (a `sleep 1000 &`), those get SIGTERM
/// and, after the grace, SIGKILL: a job never leaves processes behind.
final class ServerJob: @unchecked Sendable {
    enum Ending {
        case timeout
        case cancel
        case shutdown
    }

    let id: UInt32
    let pid: pid_t
    private let sink: FrameSink
    private let grace: Duration
    private let onFinished: @Sendable (UInt32) -> Void
    private let startedAt = ContinuousClock.now

    private let lock = NSLock()
    // Guarded by `lock`.
    private var status: ProcessStatus?
    private var exitedAt: ContinuousClock.Instant?
    private var openPipes = 2
    private var ending: Ending?
    private var pipesAbandoned = false
    private var finished = false

    init(id: UInt32, pid: pid_t, sink: FrameSink, grace: Duration, onFinished: @escaping @Sendable (UInt32) -> Void) {
        self.id = id
        self.pid = pid
        self.sink = sink
        self.grace = grace
        self.onFinished = onFinished
    }

    /// Starts reading the pipes and waiting for the child; arms the timeout.
    func start(stdout: Int32, stderr: Int32, timeout: Duration?) {
        Self.thread(name: "job \(id) stdout") { self.pump(fd: stdout, kind: .stdout) }
        Self.thread(name: "job \(id) stderr") { self.pump(fd: stderr, kind: .stderr) }
        Self.thread(name: "job \(id) wait") { self.awaitExit() }
        if let timeout {
            after(timeout) { [weak self] in self?.terminate(.timeout) }
        }
    }

    /// SIGTERM to the whole group now, SIGKILL after the grace unless it is gone by then.
    /// The first ending wins (a cancel after a timeout still reports the timeout).
    func terminate(_ reason: Ending) {
        let proceed: Bool = lock.withLock {
            guard status == nil, ending == nil else { return false }
            ending = reason
            return true
        }
        guard proceed else { return }
        signalGroup(SIGTERM)
        after(grace) { [weak self] in self?.killIfRunning() }
    }

    /// SIGKILL to the group unless the job already reported its end.
    func killIfRunning() {
        guard !lock.withLock({ finished }) else { return }
        signalGroup(SIGKILL)
    }

    private func signalGroup(_ signal: Int32) {
        _ = kill(-pid, signal)
    }

    private func pump(fd: Int32, kind: HelperFrameKind) {
        var buffer = [UInt8](repeating: 0, count: HelperWire.outputChunkSize)
        while !lock.withLock({ pipesAbandoned }) {
            // Wake up now and then to notice abandonment: a process that left the group
            // (its own setsid) may hold the pipe open forever.
            var pollFD = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pollFD, 1, 200)
            if ready < 0 && errno != EINTR { break }
            if ready <= 0 { continue }
            let count = read(fd, &buffer, buffer.count)
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                break
            }
            if count == 0 { break }
            // Blocks while the leader is not reading (see FrameSink): that is the backpressure.
            guard sink.send(frame: HelperWire.encode(kind: kind.rawValue, job: id, payload: buffer[0..<count])) else { break }
        }
        close(fd)
        lock.withLock { openPipes -= 1 }
        finishIfDone()
    }

    private func awaitExit() {
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0 {
            // EINTR: retry. ECHILD cannot happen (nobody else reaps this pid); treat as killed.
            if errno != EINTR {
                raw = SIGKILL
                break
            }
        }
        lock.withLock {
            status = ProcessStatus(waitStatus: raw)
            exitedAt = .now
        }
        if kill(-pid, 0) == 0 {
            // Left-overs of the group (background children): end them like a timeout would.
            signalGroup(SIGTERM)
            after(grace) { [weak self] in self?.killIfRunning() }
        }
        // Pipes still open a second after the grace belong to processes that escaped the
        // group; stop waiting for them.
        after(grace + .seconds(1)) { [weak self] in
            guard let self else { return }
            self.lock.withLock { self.pipesAbandoned = true }
        }
        finishIfDone()
    }

    private func finishIfDone() {
        let report: JobExit? = lock.withLock {
            guard let status, openPipes == 0, !finished else { return nil }
            finished = true
            let duration = (exitedAt ?? .now) - startedAt
            var exit = JobExit(durationMs: Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000),
                               timedOut: ending == .timeout, cancelled: ending == .cancel || ending == .shutdown)
            switch status {
            case .exited(let code): exit.exitCode = code
            case .signalled(let signal): exit.signal = ProcessStatus.name(ofSignal: signal)
            }
            return exit
        }
        guard let report else { return }
        // The main process was reaped, so a live group here still holds the pid: no reuse.
        if kill(-pid, 0) == 0 { signalGroup(SIGKILL) }
        sink.send(.exited(job: id, report))
        onFinished(id)
    }

    private func after(_ delay: Duration, _ work: @escaping @Sendable () -> Void) {
        let nanoseconds = delay.components.seconds * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(nanoseconds)), execute: work)
    }

    private static func thread(name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread(block: body)
        thread.name = name
        // Readers hold a 64 KiB buffer on the heap; a small stack is plenty.
        thread.stackSize = 256 * 1024
        thread.start()
    }
}
