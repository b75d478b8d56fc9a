import Foundation
import Logging

/// What a job reports, in order: `started`, output as it comes, `exited` last.
public enum JobEvent: Sendable, Equatable {
    case started(pid: Int32)
    case stdout([UInt8])
    case stderr([UInt8])
    case exited(JobExit)
}

/// The leader's end of a follower helper connection, over any byte transport: `inbound`
/// delivers what the helper wrote (its stdout), `write` sends to its stdin. Many jobs run at
/// once on one connection; each has its own event stream.
///
/// If the transport ends before a job reported its exit, that job's stream throws
/// `FollowerHelperError.jobLost` — its outcome is unknown, never a success.
///
/// Inbound frames are read as they come and handed to the jobs' streams, which buffer
/// what their consumers have not taken yet: consume each job's stream promptly (the
/// helper itself never buffers; its backpressure reaches the transport).
public final class HelperClient: Sendable {
    /// The helper's hello (its `ah` version, OS, pid).
    public let serverHello: HelperHello
    let connection: ClientConnection

    private init(serverHello: HelperHello, connection: ClientConnection) {
        self.serverHello = serverHello
        self.connection = connection
    }

    /// Starts reading `inbound`, sends the hello and waits (at most `timeout`) for the
    /// helper's. Throws `FollowerHelperError`: `.incompatibleVersion` or `.refused` naming
    /// both versions, `.handshakeTimedOut`, `.connectionLost`.
    /// - Parameters:
    ///   - closeOutbound: ends the helper's input (EOF on the channel's stdin); `close()`
    ///     calls it. The helper then ends its jobs and exits.
    public static func connect<Inbound: AsyncSequence & Sendable>(
        inbound: Inbound,
        write: @escaping @Sendable ([UInt8]) async throws -> Void,
        closeOutbound: @escaping @Sendable () async -> Void = {},
        ahVersion: String,
        timeout: Duration = .seconds(10),
        logger: Logger = Logger(label: "ah.follower-helper")
    ) async throws -> HelperClient where Inbound.Element == [UInt8] {
        try await connect(inbound: inbound, write: write, closeOutbound: closeOutbound, ahVersion: ahVersion, timeout: timeout,
                          logger: logger, helloVersion: HelperWire.protocolVersion)
    }

    /// `helloVersion`: what this side claims to speak (tests claim another to see the refusal).
    static func connect<Inbound: AsyncSequence & Sendable>(
        inbound: Inbound,
        write: @escaping @Sendable ([UInt8]) async throws -> Void,
        closeOutbound: @escaping @Sendable () async -> Void,
        ahVersion: String,
        timeout: Duration,
        logger: Logger,
        helloVersion: Int
    ) async throws -> HelperClient where Inbound.Element == [UInt8] {
        let connection = ClientConnection(ahVersion: ahVersion, write: write, closeOutbound: closeOutbound, logger: logger)
        connection.startReading(inbound)
        connection.send(.hello(HelperHello(version: helloVersion, ahVersion: ahVersion)))
        do {
            let hello = try await connection.hello.wait(timeout: timeout, onTimeout: .handshakeTimedOut(timeout))
            return HelperClient(serverHello: hello, connection: connection)
        } catch {
            await connection.close(.connectionLost("the handshake failed"))
            throw error
        }
    }

    /// A job id not used before on this connection (1, 2, 3, …).
    public func makeJobID() -> UInt32 {
        connection.makeJobID()
    }

    /// Starts `request` on the follower. The stream yields `started`, output chunks, and
    /// `exited` as the last element; it throws `.jobRefused` when the helper refused the
    /// request and `.jobLost` when the connection ended first. Cancelling the consuming task
    /// (ending the stream early) cancels the job.
    public func run(_ request: RunRequest) -> AsyncThrowingStream<JobEvent, any Error> {
        let (stream, continuation) = AsyncThrowingStream<JobEvent, any Error>.makeStream()
        let job = request.job
        continuation.onTermination = { [connection] termination in
            if case .cancelled = termination { connection.abandon(job: job) }
        }
        if let refusal = connection.register(job: job, continuation) {
            continuation.finish(throwing: refusal)
            return stream
        }
        connection.send(.run(request))
        return stream
    }

    /// Asks the helper to end `job`'s process group (SIGTERM, SIGKILL after its grace).
    /// The job's stream still ends with its `exited` (marked cancelled).
    public func cancel(job: UInt32) {
        connection.send(.cancel(job: job))
    }

    /// One probe round trip (health check, RTT).
    public func probe(timeout: Duration) async throws -> Duration {
        let started = ContinuousClock.now
        try await connection.probe(timeout: timeout)
        return .now - started
    }

    /// True until the connection ended or `close()` was called.
    public var isOpen: Bool { connection.isOpen }

    /// Ends every open job's stream with `.closed`, stops reading and closes the helper's
    /// input (the helper then ends the jobs' process groups and exits).
    public func close() async {
        await connection.close(.closed)
    }
}

/// The shared state of one connection: the open jobs and probes, the handshake, the
/// outbound queue. Frames are written in order by one writer task.
final class ClientConnection: @unchecked Sendable {
    let hello = OneShot<HelperHello>()
    /// Open slurps (SlurpRoutes.swift).
    let slurps = SlurpRoutes()
    /// Open syncs (SyncRoutes.swift).
    let syncs = SyncRoutes()
    private let ahVersion: String
    private let logger: Logger
    private let closeOutbound: @Sendable () async -> Void
    private let outbound = OutboundFrames()

    private let lock = NSLock()
    // Guarded by `lock`.
    private var jobs: [UInt32: AsyncThrowingStream<JobEvent, any Error>.Continuation] = [:]
    private var probes: [UInt64: OneShot<Void>] = [:]
    private var nextProbe: UInt64 = 0
    private var nextJob: UInt32 = 0
    private var failure: FollowerHelperError?
    private var reader: Task<Void, Never>?
    private var outboundClosed = false

    init(ahVersion: String, write: @escaping @Sendable ([UInt8]) async throws -> Void,
         closeOutbound: @escaping @Sendable () async -> Void, logger: Logger) {
        self.ahVersion = ahVersion
        self.logger = logger
        self.closeOutbound = closeOutbound
        let outbound = self.outbound
        Task { [weak self] in
            while let bytes = await outbound.next() {
                do {
                    try await write(bytes)
                } catch {
                    self?.fail(.connectionLost("writing to the follower helper failed: \(error)"))
                    return
                }
            }
        }
    }

    var isOpen: Bool { lock.withLock { failure == nil } }

    func startReading<Inbound: AsyncSequence & Sendable>(_ inbound: Inbound) where Inbound.Element == [UInt8] {
        let task = Task { [weak self] in
            var decoder = HelperFrameDecoder()
            do {
                for try await chunk in inbound {
                    decoder.append(chunk)
                    while let frame = try decoder.next() {
                        guard let self else { return }
                        self.receive(frame)
                    }
                    if self?.isOpen != true { return }
                }
                self?.fail(.connectionLost("the follower helper's output ended"))
            } catch let error as HelperFrameError {
                self?.fail(.protocolViolation(error.description))
            } catch {
                self?.fail(.connectionLost("reading from the follower helper failed: \(error)"))
            }
        }
        lock.withLock { reader = task }
    }

    func send(_ message: HelperMessage) {
        outbound.append(HelperWire.encode(message))
    }

    /// A frame already encoded (sync data), queued behind what was sent before.
    func send(frame: [UInt8]) {
        outbound.append(frame)
    }

    func makeJobID() -> UInt32 {
        lock.withLock {
            repeat { nextJob &+= 1 } while nextJob == 0 || jobs[nextJob] != nil
            return nextJob
        }
    }

    /// nil when registered; otherwise why the job cannot run.
    func register(job: UInt32, _ continuation: AsyncThrowingStream<JobEvent, any Error>.Continuation) -> FollowerHelperError? {
        lock.withLock {
            if let failure { return failure == .closed ? .closed : .jobLost(job: job, reason: failure.description) }
            if jobs[job] != nil { return .duplicateJob(job) }
            jobs[job] = continuation
            return nil
        }
    }

    /// The consumer stopped listening: forget the job and have the helper end it.
    func abandon(job: UInt32) {
        let known = lock.withLock { jobs.removeValue(forKey: job) != nil }
        if known { send(.cancel(job: job)) }
    }

    func probe(timeout: Duration) async throws {
        let waiter = OneShot<Void>()
        let id: UInt64 = try lock.withLock {
            if let failure { throw failure }
            nextProbe &+= 1
            probes[nextProbe] = waiter
            return nextProbe
        }
        send(.probe(id: id))
        defer { _ = lock.withLock { probes.removeValue(forKey: id) } }
        try await waiter.wait(timeout: timeout, onTimeout: .probeTimedOut(timeout))
    }

    private func receive(_ frame: HelperRawFrame) {
        switch HelperFrameKind(rawValue: frame.kind) {
        case .stdout?:
            lock.withLock { jobs[frame.job] }?.yield(.stdout(frame.payload))
        case .stderr?:
            lock.withLock { jobs[frame.job] }?.yield(.stderr(frame.payload))
        case .slurpData?:
            slurps.data(job: frame.job, frame.payload)
        case .syncData?:
            logger.debug("Ignored sync data from a follower helper (it only flows to helpers)")
        case .message?:
            do {
                receive(try HelperMessage.decode(frame.payload))
            } catch {
                // A newer helper's message type: nothing this build could do with it.
                logger.debug("Ignored a follower helper message", metadata: ["reason": "\(error)"])
            }
        case nil:
            logger.debug("Ignored a follower helper frame of unknown kind", metadata: ["kind": "\(frame.kind)"])
        }
    }

    private func receive(_ message: HelperMessage) {
        switch message {
        case .hello(let serverHello):
            if serverHello.version == HelperWire.protocolVersion {
                hello.resolve(.success(serverHello))
            } else {
                let error = FollowerHelperError.incompatibleVersion(leader: HelperWire.protocolVersion, leaderAH: ahVersion,
                                                                    helper: serverHello.version,
                                                                    helperAH: String(serverHello.ahVersion.prefix(64)))
                hello.resolve(.failure(error))
            }
        case .started(let job, let pid):
            lock.withLock { jobs[job] }?.yield(.started(pid: pid))
        case .exited(let job, let exit):
            if let continuation = lock.withLock({ jobs.removeValue(forKey: job) }) {
                continuation.yield(.exited(exit))
                continuation.finish()
            }
        case .probeReply(let id):
            lock.withLock { probes[id] }?.resolve(.success(()))
        case .error(let error):
            let code = String(error.code.prefix(64))
            let text = String(error.message.prefix(1024))
            if let job = error.job, let continuation = lock.withLock({ jobs.removeValue(forKey: job) }) {
                continuation.finish(throwing: FollowerHelperError.jobRefused(job: job, code: code, message: text))
            } else {
                // Before the handshake this is the refusal (e.g. `version`); after it, a complaint.
                hello.resolve(.failure(.refused(code: code, message: text)))
                logger.warning("The follower helper reported an error", metadata: ["code": "\(code)", "message": "\(text)"])
            }
        case .run, .cancel, .probe:
            logger.debug("Ignored a follower helper message meant for a helper", metadata: ["type": "\(message.type)"])
        case .slurp(let slurp):
            slurps.receive(slurp)
        case .sync(let message):
            syncs.receive(message)
        }
    }

    /// Ends the connection once: open jobs throw `.jobLost` (or `.closed`), probes and the
    /// handshake fail, nothing more is written.
    func fail(_ error: FollowerHelperError) {
        let pending: (jobs: [UInt32: AsyncThrowingStream<JobEvent, any Error>.Continuation], probes: [OneShot<Void>])? = lock.withLock {
            guard failure == nil else { return nil }
            failure = error
            defer {
                jobs = [:]
                probes = [:]
            }
            return (jobs, Array(probes.values))
        }
        guard let pending else { return }
        slurps.failAll(error)
        syncs.failAll(error)
        outbound.finish()
        hello.resolve(.failure(error))
        for (job, continuation) in pending.jobs {
            continuation.finish(throwing: error == .closed ? .closed : FollowerHelperError.jobLost(job: job, reason: error.description))
        }
        for probe in pending.probes { probe.resolve(.failure(error)) }
    }

    func close(_ reason: FollowerHelperError) async {
        fail(reason)
        let (task, alreadyClosed): (Task<Void, Never>?, Bool) = lock.withLock {
            defer { outboundClosed = true }
            return (reader, outboundClosed)
        }
        task?.cancel()
        if !alreadyClosed { await closeOutbound() }
    }
}

/// Frames waiting to be written to the helper's stdin. What queued while the previous write
/// ran goes out as one write: a fence sends a message per file, and written one by one
/// each became an SSH packet of its own, which sshd relayed to the helper with a buffer
/// operation and a pipe write each — sshd used 59 % of the CPU of a first fence of 50,000
/// small files (bench/fence). Large frames (file chunks) go out as they are, uncopied.
final class OutboundFrames: @unchecked Sendable {
    /// Frames below this are joined with their neighbours.
    static let joinBelow = 32 * 1024
    /// The most one joined write holds.
    static let maxJoined = 256 * 1024

    private let lock = NSLock()
    // Guarded by `lock`.
    private var frames: [[UInt8]] = []
    private var head = 0
    private var waiter: CheckedContinuation<[UInt8]?, Never>?
    private var finished = false

    func append(_ frame: [UInt8]) {
        let wake: (CheckedContinuation<[UInt8]?, Never>, [UInt8])? = lock.withLock {
            guard !finished, !frame.isEmpty else { return nil }
            frames.append(frame)
            guard let waiter else { return nil }
            self.waiter = nil
            return (waiter, take())
        }
        if let (waiter, bytes) = wake { waiter.resume(returning: bytes) }
    }

    /// No more frames; a waiting `next` gets nil.
    func finish() {
        let waiting: CheckedContinuation<[UInt8]?, Never>? = lock.withLock {
            finished = true
            frames = []
            head = 0
            defer { waiter = nil }
            return waiter
        }
        waiting?.resume(returning: nil)
    }

    /// The next bytes to write, once there are any; nil after `finish`. One caller at a time.
    func next() async -> [UInt8]? {
        await withCheckedContinuation { (continuation: CheckedContinuation<[UInt8]?, Never>) in
            let ready: [UInt8]?? = lock.withLock {
                if head < frames.count { return .some(take()) }
                if finished { return .some(nil) }
                waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Under `lock`, with at least one frame queued: a large frame alone, else small frames
    /// joined up to `maxJoined`.
    private func take() -> [UInt8] {
        defer {
            if head == frames.count {
                frames.removeAll(keepingCapacity: true)
                head = 0
            } else if head >= 1024, head * 2 >= frames.count {
                // A writer that never catches up must not grow the array of spent slots.
                frames.removeFirst(head)
                head = 0
            }
        }
        // Each taken frame's slot is emptied at once, so its bytes are freed with the write.
        let first = frames[head]
        frames[head] = []
        head += 1
        guard first.count < Self.joinBelow, head < frames.count else { return first }
        var joined = first
        joined.reserveCapacity(Self.maxJoined)
        while head < frames.count, frames[head].count < Self.joinBelow, joined.count + frames[head].count <= Self.maxJoined {
            joined += frames[head]
            frames[head] = []
            head += 1
        }
        return joined
    }
}
