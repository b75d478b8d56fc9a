import CLibSSH2
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What `SSHSession.connect` was asked for.
struct SessionOptions {
    var expectedHostKeys: [String]
    var user: String
    var auth: SSHAuthentication
    var keepalive: Duration?
    var connectTimeout: Duration
}

/// One libssh2 session and its channels, driven by one dedicated thread.
///
/// Confinement: libssh2 sessions are not thread-safe, so every libssh2 call on this
/// session happens on `thread`, in `drive()`. Swift tasks talk to it only through
/// `execute(_:)`, which queues a closure under `lock` and wakes the thread through a pipe;
/// the closures record requests (and their continuations) and return, and `drive()` then
/// makes the libssh2 calls. Results go back by resuming continuations and yielding to the
/// output sequences, after the libssh2 call returned: no application code runs inside
/// libssh2. The thread sleeps in poll(2) on the socket (in the directions libssh2 last
/// blocked on) and the wake pipe, with a timeout for keepalives and retries.
///
/// Everything below `lock`'s section is touched only on the loop thread (Swift 5 mode, no
/// Sendable checking: this comment is the rule).
final class SessionCore {
    // MARK: Cross-thread

    private let lock = NIOLock()
    private var tasks: [() -> Void] = []
    private var wakePending = false
    private let wakeRead: Int32
    private let wakeWrite: Int32
    let alive = NIOLockedValueBox(false)
    let logger: Logger

    // MARK: Loop thread only

    let handle: SessionHandle
    let options: SessionOptions
    var phase = Phase.handshake
    var connectContinuation: CheckedContinuation<String, Error>?
    var connectDeadline: NIODeadline
    var serverFingerprint = ""
    var agent: AgentHandle?
    var agentIdentity: UnsafeMutablePointer<libssh2_agent_publickey>?
    var agentTried = 0
    var openQueue: [ChannelCore] = []
    var channels: [ChannelCore] = []
    /// The operation whose packet libssh2 sent only in part (EAGAIN while sending). libssh2
    /// 1.10 keeps one half-sent packet per session and refuses (LIBSSH2_ERROR_BAD_USE) any
    /// other packet until the same call is repeated, so until then nothing else runs.
    var outboundOwner: Op?
    var openRefusals = 0
    var openRetryAt: NIODeadline?
    var keepaliveNext: NIODeadline?
    var readySince = NIODeadline.now()
    var closingDeadline: NIODeadline?
    var closeWaiters: [CheckedContinuation<Void, Never>] = []
    var peerHungUp = false
    /// Why the session died, for requests that arrive afterwards.
    var sessionError: SSHError?
    var wantIn = false
    var wantOut = false
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(ah_ssh2_packet_size), alignment: 16)
    let allocator = ByteBufferAllocator()

    enum Phase: Equatable { case handshake, authenticating, ready, disconnecting, finished }

    /// A libssh2 call we may have to repeat (see `outboundOwner`).
    enum Op: Equatable {
        case handshake, authenticate, open, keepalive, disconnect
        case channel(Int, ChannelStep)
    }

    enum ChannelStep: Equatable { case exec, write, eof, read, waitClosed, close, free }

    enum Outcome: Equatable { case progress, idle, wouldBlock }

    init(fd: Int32, options: SessionOptions, logger: Logger) throws {
        handle = try SessionHandle(fd: fd)
        self.options = options
        self.logger = logger
        connectDeadline = .now() + TimeAmount(options.connectTimeout)
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else {
            let reason = String(cString: strerror(errno))
            handle.release()
            scratch.deallocate()
            throw SSHError(.connect, "could not create the session's wake-up pipe: \(reason)")
        }
        wakeRead = pipeEnds[0]
        wakeWrite = pipeEnds[1]
        for end in [wakeRead, wakeWrite, fd] {
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        }
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Starts the thread; `continuation` gets the server's host key fingerprint once
    /// authenticated, or the error.
    func start(connect continuation: CheckedContinuation<String, Error>) {
        connectContinuation = continuation
        let thread = Thread { [self] in self.run() }
        thread.name = "ah-ssh"
        thread.start()
    }

    // MARK: Posting work to the loop

    /// Runs `body` on the loop thread soon. After the loop finished, `body` still runs (on
    /// the calling thread) so that it can fail its continuation.
    func execute(_ body: @escaping () -> Void) {
        let accepted = lock.withLock { () -> Bool in
            guard phaseFinishedFlag == false else { return false }
            tasks.append(body)
            if !wakePending {
                wakePending = true
                // Under the lock: the loop closes the pipe only after setting the flag under
                // it, so this never writes to a closed descriptor whose number a new socket
                // (another session's) may already have. One byte to a non-blocking pipe.
                var byte: UInt8 = 1
                _ = write(wakeWrite, &byte, 1)
            }
            return true
        }
        guard accepted else {
            // The loop thread is gone: `afterFinish` stands in for its confinement.
            afterFinish.withLock { body() }
            return
        }
    }

    /// Set (under `lock`) when the loop ended; later tasks run inline and see `.finished`.
    private var phaseFinishedFlag = false
    /// Serialises the tasks that run after the loop ended (they only fail continuations).
    private let afterFinish = NIOLock()

    private func runTasks() {
        // Drain the pipe BEFORE taking the batch. Draining after it lost wake-ups: a task
        // posted between the unlock and the drain wrote its byte (wakePending had just been
        // cleared), the drain swallowed it, and the loop then slept in poll(2) with that task
        // queued and wakePending set, so no later post woke it either. With no socket
        // traffic and no timer (an idle session without keepalive) it slept forever: the
        // MaxSessions test hung that way once inside the full suite.
        var byte = [UInt8](repeating: 0, count: 64)
        while read(wakeRead, &byte, byte.count) > 0 {}
        let batch = lock.withLock { () -> [() -> Void] in
            let batch = tasks
            tasks.removeAll()
            wakePending = false
            return batch
        }
        for task in batch { task() }
    }

    // MARK: The loop

    private func run() {
        while true {
            runTasks()
            if phase == .finished { break }
            let again = drive()
            if phase == .finished { break }
            waitForEvents(immediately: again)
        }
        lock.withLock { phaseFinishedFlag = true }
        // Tasks posted between the last drain and the flag: run them now (they see .finished).
        afterFinish.withLock { runTasks() }
        closeDescriptor(wakeRead)
        closeDescriptor(wakeWrite)
        scratch.deallocate()
    }

    /// One round of libssh2 calls: every operation that has work is tried until none makes
    /// progress (each then waits for the socket) or the round limit keeps one busy channel
    /// from delaying requests posted meanwhile.
    private func drive() -> Bool {
        for _ in 0..<32 {
            wantIn = false
            wantOut = false
            if peerHungUp {
                die(SSHError(.sessionDead, "the server closed the SSH connection"))
                return false
            }
            if let owner = outboundOwner {
                _ = perform(owner)
                if outboundOwner != nil || phase == .finished { return false }
            }
            var progress = false
            for op in pendingOperations() {
                let outcome = perform(op)
                if phase == .finished { return false }
                if outboundOwner != nil { return false }
                if outcome == .progress { progress = true }
            }
            checkTimers()
            if phase == .finished { return false }
            if !progress { return false }
        }
        return true
    }

    /// The operations that have something to do now, in a fair order.
    private func pendingOperations() -> [Op] {
        switch phase {
        case .handshake: return [.handshake]
        case .authenticating: return [.authenticate]
        case .disconnecting: return [.disconnect]
        case .finished: return []
        case .ready:
            var ops: [Op] = []
            if !openQueue.isEmpty, openRetryAt == nil || openRetryAt! <= .now() { ops.append(.open) }
            for channel in channels { ops.append(contentsOf: channel.pendingSteps().map { .channel(channel.id, $0) }) }
            if let next = keepaliveNext, next <= .now() { ops.append(.keepalive) }
            return ops
        }
    }

    /// Runs one operation and notes which way it blocked.
    private func perform(_ op: Op) -> Outcome {
        let outcome: Outcome
        switch op {
        case .handshake: outcome = stepHandshake()
        case .authenticate: outcome = stepAuthenticate()
        case .open: outcome = stepOpen()
        case .keepalive: outcome = stepKeepalive()
        case .disconnect: outcome = stepDisconnect()
        case .channel(let id, let step):
            guard let channel = channels.first(where: { $0.id == id }) else {
                if outboundOwner == op { outboundOwner = nil }
                return .idle
            }
            outcome = stepChannel(channel, step)
        }
        guard phase != .finished else { return outcome }
        if outcome == .wouldBlock {
            let directions = libssh2_session_block_directions(handle.raw)
            if directions & LIBSSH2_SESSION_BLOCK_INBOUND != 0 { wantIn = true }
            if directions & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 {
                wantOut = true
                outboundOwner = op
                return outcome
            }
        }
        if outboundOwner == op { outboundOwner = nil }
        return outcome
    }

    /// Keepalive liveness, open retries and the connect/close deadlines.
    private func checkTimers() {
        let now = NIODeadline.now()
        switch phase {
        case .handshake, .authenticating:
            if now >= connectDeadline {
                failConnect(SSHError(.timeout, "the SSH handshake and authentication as \(options.user) did not finish within \(options.connectTimeout) (stopped while \(phase == .handshake ? "negotiating keys" : "authenticating"))"))
            }
        case .disconnecting:
            if let closingDeadline, now >= closingDeadline { finish() }
        case .ready:
            if let interval = keepaliveInterval, let deadline = livenessDeadline, now >= deadline {
                if socketIsReadable() {
                    // Bytes wait unread (every consumer is slow): the server did talk.
                    readySince = now
                } else {
                    die(SSHError(.sessionDead, "the server sent nothing for \(3 * interval) s although keepalives went out every \(interval) s; the session is considered dead"))
                }
            }
        case .finished:
            break
        }
    }

    var keepaliveInterval: Int? {
        guard let keepalive = options.keepalive else { return nil }
        return max(1, Int(keepalive.components.seconds))
    }

    /// When the session counts as dead if the server stays silent: three keepalive intervals
    /// (OpenSSH's ServerAliveCountMax) after the last bytes received.
    private var livenessDeadline: NIODeadline? {
        guard let interval = keepaliveInterval else { return nil }
        let received = handle.lastReceiveNanoseconds
        let since = max(readySince.uptimeNanoseconds, received > 0 ? UInt64(received) : 0)
        return NIODeadline.uptimeNanoseconds(since) + .seconds(Int64(3 * interval) + 1)
    }

    private func socketIsReadable() -> Bool {
        var probe = pollfd(fd: handle.fd, events: Int16(POLLIN), revents: 0)
        return poll(&probe, 1, 0) > 0 && probe.revents & Int16(POLLIN) != 0
    }

    func socketIsWritable() -> Bool {
        var probe = pollfd(fd: handle.fd, events: Int16(POLLOUT), revents: 0)
        return poll(&probe, 1, 0) > 0 && probe.revents & Int16(POLLOUT) != 0
    }

    private func waitForEvents(immediately: Bool) {
        var socketEvents = Int16(0)
        if wantIn { socketEvents |= Int16(POLLIN) }
        if wantOut { socketEvents |= Int16(POLLOUT) }
        // The peer's FIN even when no one reads (every consumer slow, or no channel).
        if phase == .ready && !wantIn { socketEvents |= ah_ssh2_pollrdhup }
        var fds = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: handle.fd, events: socketEvents, revents: 0)]
        var timeout: Int32 = -1
        if immediately {
            timeout = 0
        } else if let deadline = nextDeadline() {
            let nanoseconds = deadline.uptimeNanoseconds.subtractingReportingOverflow(NIODeadline.now().uptimeNanoseconds)
            timeout = nanoseconds.overflow ? 0 : Int32(clamping: (nanoseconds.partialValue + 999_999) / 1_000_000)
        }
        let ready = poll(&fds, 2, timeout)
        guard ready > 0 else { return }
        let hangUp = Int16(POLLHUP) | Int16(POLLERR) | ah_ssh2_pollrdhup
        if phase == .ready && !wantIn && fds[1].revents & hangUp != 0 { peerHungUp = true }
    }

    private func nextDeadline() -> NIODeadline? {
        var candidates: [NIODeadline] = []
        switch phase {
        case .handshake, .authenticating: candidates.append(connectDeadline)
        case .disconnecting: if let closingDeadline { candidates.append(closingDeadline) }
        case .ready:
            if let keepaliveNext { candidates.append(keepaliveNext) }
            if let livenessDeadline { candidates.append(livenessDeadline) }
            if !openQueue.isEmpty, let openRetryAt { candidates.append(openRetryAt) }
        case .finished: break
        }
        return candidates.min()
    }

    // MARK: Ending

    /// The session is unusable: every waiter gets `error`, the handle is released.
    func die(_ error: SSHError) {
        guard phase != .finished else { return }
        if phase == .handshake || phase == .authenticating {
            failConnect(error)
            return
        }
        if phase == .ready { logger.warning("SSH session ended", metadata: ["reason": "\(error)"]) }
        sessionError = error
        // Before any waiter wakes: whoever sees a failed channel must also see a dead session.
        alive.withLockedValue { $0 = false }
        failAllChannels(error)
        finish()
    }

    func failConnect(_ error: SSHError) {
        logger.debug("SSH connect failed", metadata: ["reason": "\(error)"])
        connectContinuation?.resume(throwing: error)
        connectContinuation = nil
        finish()
    }

    /// Releases everything; the loop exits after this.
    func finish() {
        guard phase != .finished else { return }
        alive.withLockedValue { $0 = false }
        failAllChannels(SSHError(.closed, "the SSH session was closed"))
        agent?.release()
        agent = nil
        phase = .finished
        alive.withLockedValue { $0 = false }
        handle.release()
        for channel in channels { channel.handle?.markFreedWithSession() }
        channels.removeAll()
        for waiter in closeWaiters { waiter.resume() }
        closeWaiters.removeAll()
    }

    /// `SSHSession.close()`: a clean SSH disconnect (bounded to 2 s), then release.
    func requestClose(_ continuation: CheckedContinuation<Void, Never>) {
        switch phase {
        case .finished:
            continuation.resume()
        case .handshake, .authenticating:
            closeWaiters.append(continuation)
            failConnect(SSHError(.closed, "the SSH session was closed while connecting"))
        case .disconnecting:
            closeWaiters.append(continuation)
        case .ready:
            closeWaiters.append(continuation)
            alive.withLockedValue { $0 = false }
            failAllChannels(SSHError(.closed, "the SSH session was closed"))
            phase = .disconnecting
            closingDeadline = .now() + .seconds(2)
        }
    }

    /// The owner dropped its `SSHSession` without closing it.
    func requestCloseWithoutWaiting() {
        switch phase {
        case .finished, .disconnecting: break
        case .handshake, .authenticating: failConnect(SSHError(.closed, "the SSH session was dropped while connecting"))
        case .ready:
            alive.withLockedValue { $0 = false }
            failAllChannels(SSHError(.closed, "the SSH session was closed"))
            phase = .disconnecting
            closingDeadline = .now() + .seconds(2)
        }
    }

    private func stepDisconnect() -> Outcome {
        let rc = ah_ssh2_session_disconnect(handle.raw, "closed by ah")
        if rc == LIBSSH2_ERROR_EAGAIN { return .wouldBlock }
        finish()
        return .progress
    }

    private func stepKeepalive() -> Outcome {
        guard outboundOwner == nil, socketIsWritable() else {
            keepaliveNext = .now() + .milliseconds(200)
            return .idle
        }
        var secondsToNext: Int32 = 0
        let rc = libssh2_keepalive_send(handle.raw, &secondsToNext)
        if rc != 0 {
            die(SSHError(.sessionDead, "sending a keepalive failed: \(handle.lastErrorText)"))
            return .idle
        }
        if libssh2_session_block_directions(handle.raw) & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 {
            // libssh2 1.10 ignores EAGAIN here but keeps the half-sent keepalive as the
            // session's pending packet, which no later call can complete reliably.
            die(SSHError(.sessionDead, "the socket stopped taking data while a keepalive was being sent"))
            return .idle
        }
        keepaliveNext = .now() + .seconds(Int64(max(1, secondsToNext)))
        return .idle
    }
}
