import CLibSSH2
import NIOConcurrencyHelpers
import NIOCore

// Channel opening (with MaxSessions queueing), exec, reads, writes, EOF, close and free:
// loop thread only (see SessionCore).
extension SessionCore {
    /// A refused open is retried when one of our channels is freed or, with none to wait
    /// for, after a backoff; this many refusals with no channel of ours open is an error.
    static let maxRefusalsWithoutChannels = 6

    // MARK: Requests from SSHExecChannel / SSHSession (posted through execute)

    func enqueueOpen(_ channel: ChannelCore) {
        guard phase == .ready else {
            channel.openContinuation?.resume(throwing: SSHError(.closed, "cannot run `\(channel.command)`: the SSH session is no longer open"))
            channel.openContinuation = nil
            channel.source.finish()
            return
        }
        openQueue.append(channel)
    }

    func enqueueWrite(channelID: Int, buffer: ByteBuffer, continuation: CheckedContinuation<Void, Error>) {
        guard let channel = channels.first(where: { $0.id == channelID }), channel.phase == .running, !channel.closeRequested else {
            continuation.resume(throwing: channelGone(channelID, doing: "write to its stdin"))
            return
        }
        guard !channel.eofRequested else {
            continuation.resume(throwing: SSHError(.invalidArgument, "cannot write to the stdin of `\(channel.command)` after sending EOF"))
            return
        }
        channel.writes.append(.init(buffer: buffer, continuation: continuation))
    }

    func enqueueEOF(channelID: Int, continuation: CheckedContinuation<Void, Error>) {
        guard let channel = channels.first(where: { $0.id == channelID }), channel.phase == .running, !channel.closeRequested else {
            continuation.resume(throwing: channelGone(channelID, doing: "send EOF"))
            return
        }
        if channel.eofSent {
            continuation.resume()
            return
        }
        channel.eofRequested = true
        channel.eofWaiters.append(continuation)
    }

    func enqueueClose(channelID: Int, continuation: CheckedContinuation<Void, Never>) {
        guard let channel = channels.first(where: { $0.id == channelID }), channel.phase != .done else {
            continuation.resume()
            return
        }
        channel.closeWaiters.append(continuation)
        if channel.phase == .running { channel.closeRequested = true }
    }

    func awaitExit(channelID: Int, continuation: CheckedContinuation<SSHExit, Error>, known: NIOLockedValueBox<SSHExit?>) {
        guard let channel = channels.first(where: { $0.id == channelID }), channel.phase != .done else {
            // Freed meanwhile: its exit was recorded before, unless the session died.
            if let exit = known.withLockedValue({ $0 }) {
                continuation.resume(returning: exit)
            } else {
                continuation.resume(throwing: channelGone(channelID, doing: "wait for its exit"))
            }
            return
        }
        channel.exitWaiters.append(continuation)
    }

    func outputDemandChanged(channelID: Int, demand: Bool) {
        channels.first(where: { $0.id == channelID })?.outputDemand = demand
    }

    func outputTerminated(channelID: Int) {
        // Nobody reads any more: keep draining (to reach EOF and the exit status) and drop.
        channels.first(where: { $0.id == channelID })?.discardOutput = true
    }

    /// The error for a request on a channel that ended: its failure, or "closed".
    private func channelGone(_ channelID: Int, doing what: String) -> SSHError {
        if let sessionError {
            return SSHError(sessionError.kind, "cannot \(what): \(sessionError.description)")
        }
        if phase == .finished || phase == .disconnecting {
            return SSHError(.closed, "cannot \(what): the SSH session is closed")
        }
        return SSHError(.closed, "cannot \(what): the channel is closed")
    }

    // MARK: Opening

    func stepOpen() -> Outcome {
        guard let channel = openQueue.first else { return .idle }
        if let raw = ah_ssh2_channel_open_session(handle.raw) {
            openQueue.removeFirst()
            openRefusals = 0
            openRetryAt = nil
            channel.handle = ChannelHandle(raw)
            channel.phase = .starting
            channels.append(channel)
            return .progress
        }
        let code = handle.lastErrno
        if code == LIBSSH2_ERROR_EAGAIN { return .wouldBlock }
        let text = handle.lastErrorText
        if code == LIBSSH2_ERROR_CHANNEL_FAILURE {
            // sshd's MaxSessions ("administratively prohibited"): wait for room.
            openRefusals += 1
            if channels.isEmpty && openRefusals > Self.maxRefusalsWithoutChannels {
                openQueue.removeFirst()
                openRefusals = 0
                openRetryAt = nil
                failOpen(channel, SSHError(.channel, "sshd refused to open a channel for `\(channel.command)` \(Self.maxRefusalsWithoutChannels + 1) times although this session had no other channel open: \(text)"))
                return .progress
            }
            // Short first retries: sshd frees a slot only after it processed our CLOSE of a
            // freed channel, so the retry right after a free is often refused once more.
            let backoff = Int64(min(2_000, 20 << min(openRefusals, 7)))
            openRetryAt = .now() + .milliseconds(backoff)
            logger.debug("sshd refused a channel; queued", metadata: ["open": "\(channels.count)", "queued": "\(openQueue.count)", "reason": "\(text)"])
            return .idle
        }
        if isFatal(code) {
            die(SSHError(.sessionDead, "opening a channel for `\(channel.command)` failed: \(describe(code))"))
            return .idle
        }
        openQueue.removeFirst()
        failOpen(channel, SSHError(.channel, "opening a channel for `\(channel.command)` failed: \(text)"))
        return .progress
    }

    private func failOpen(_ channel: ChannelCore, _ error: SSHError) {
        channel.failure = error
        channel.openContinuation?.resume(throwing: error)
        channel.openContinuation = nil
        channel.source.finish(error)
        channel.phase = .done
    }

    /// Socket-level and protocol errors end the whole session, not one channel.
    func isFatal(_ code: Int32) -> Bool {
        switch code {
        case LIBSSH2_ERROR_SOCKET_SEND, LIBSSH2_ERROR_SOCKET_RECV, LIBSSH2_ERROR_SOCKET_DISCONNECT,
             LIBSSH2_ERROR_SOCKET_TIMEOUT, LIBSSH2_ERROR_TIMEOUT, LIBSSH2_ERROR_KEX_FAILURE,
             LIBSSH2_ERROR_DECRYPT, LIBSSH2_ERROR_PROTO, LIBSSH2_ERROR_BANNER_RECV, LIBSSH2_ERROR_BANNER_SEND,
             LIBSSH2_ERROR_INVALID_MAC, LIBSSH2_ERROR_ENCRYPT, LIBSSH2_ERROR_HOSTKEY_SIGN, LIBSSH2_ERROR_ALLOC:
            return true
        default:
            return false
        }
    }

    // MARK: Per-channel steps

    func stepChannel(_ channel: ChannelCore, _ step: ChannelStep) -> Outcome {
        guard let raw = channel.handle?.raw else { return .idle }
        switch step {
        case .exec: return stepExec(channel, raw)
        case .write: return stepWrite(channel, raw)
        case .eof: return stepEOF(channel, raw)
        case .read: return stepRead(channel, raw)
        case .waitClosed: return stepWaitClosed(channel, raw)
        case .close: return stepClose(channel, raw)
        case .free: return stepFree(channel, raw)
        }
    }

    private func stepExec(_ channel: ChannelCore, _ raw: OpaquePointer) -> Outcome {
        let rc = ah_ssh2_channel_exec(raw, channel.command)
        if rc == LIBSSH2_ERROR_EAGAIN { return .wouldBlock }
        guard rc == 0 else {
            let text = handle.lastErrorText
            if isFatal(rc) {
                die(SSHError(.sessionDead, "starting `\(channel.command)` failed: \(describe(rc))"))
                return .idle
            }
            let error = SSHError(.channel, "sshd refused to run `\(channel.command)`: \(text)")
            channel.failure = error
            channel.openContinuation?.resume(throwing: error)
            channel.openContinuation = nil
            channel.source.finish(error)
            channel.outputFinished = true
            channel.phase = .freeing
            return .progress
        }
        channel.phase = .running
        channel.openContinuation?.resume()
        channel.openContinuation = nil
        return .progress
    }

    private func stepWrite(_ channel: ChannelCore, _ raw: OpaquePointer) -> Outcome {
        guard var pending = channel.writes.first else { return .idle }
        // Repeated calls after EAGAIN pass the same bytes, as libssh2 requires.
        let written = pending.buffer.withUnsafeReadableBytes { bytes in
            libssh2_channel_write_ex(raw, 0, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        if written == Int(LIBSSH2_ERROR_EAGAIN) { return .wouldBlock }
        guard written >= 0 else {
            let code = Int32(written)
            let text = handle.lastErrorText
            if isFatal(code) {
                die(SSHError(.sessionDead, "writing to the stdin of `\(channel.command)` failed: \(describe(code))"))
                return .idle
            }
            failWrites(channel, SSHError(.channel, "writing to the stdin of `\(channel.command)` failed: \(text)"))
            return .progress
        }
        pending.buffer.moveReaderIndex(forwardBy: written)
        if pending.buffer.readableBytes == 0 {
            channel.writes.removeFirst()
            pending.continuation.resume()
        } else {
            channel.writes[0] = pending
        }
        return written > 0 ? .progress : .wouldBlock
    }

    private func failWrites(_ channel: ChannelCore, _ error: SSHError) {
        let writes = channel.writes
        channel.writes.removeAll()
        for write in writes { write.continuation.resume(throwing: error) }
        let waiters = channel.eofWaiters
        channel.eofWaiters.removeAll()
        for waiter in waiters { waiter.resume(throwing: error) }
    }

    private func stepEOF(_ channel: ChannelCore, _ raw: OpaquePointer) -> Outcome {
        let rc = libssh2_channel_send_eof(raw)
        if rc == LIBSSH2_ERROR_EAGAIN { return .wouldBlock }
        channel.eofSent = true
        let waiters = channel.eofWaiters
        channel.eofWaiters.removeAll()
        if rc == 0 {
            for waiter in waiters { waiter.resume() }
        } else {
            let error = SSHError(.channel, "sending EOF to `\(channel.command)` failed: \(handle.lastErrorText)")
            if isFatal(rc) { die(SSHError(.sessionDead, error.description)) }
            for waiter in waiters { waiter.resume(throwing: error) }
        }
        return .progress
    }

    /// Reads stdout and stderr alternately while the consumer wants more, at most a few
    /// packets per round so that one busy channel cannot starve the others.
    private func stepRead(_ channel: ChannelCore, _ raw: OpaquePointer) -> Outcome {
        var delivered = false
        var blocked = false
        rounds: for _ in 0..<8 {
            var got = false
            for stream: Int32 in [0, Int32(SSH_EXTENDED_DATA_STDERR)] {
                guard channel.wantsOutput else { break rounds }
                let count = libssh2_channel_read_ex(raw, stream, scratch.baseAddress!.assumingMemoryBound(to: CChar.self), scratch.count)
                if count > 0 {
                    deliver(channel, stream: stream == 0 ? .stdout : .stderr, count: count)
                    got = true
                    delivered = true
                } else if count == Int(LIBSSH2_ERROR_EAGAIN) {
                    blocked = true
                } else if count < 0 {
                    let code = Int32(count)
                    let text = handle.lastErrorText
                    if isFatal(code) {
                        die(SSHError(.sessionDead, "reading the output of `\(channel.command)` failed: \(describe(code))"))
                    } else {
                        failChannel(channel, SSHError(.channel, "reading the output of `\(channel.command)` failed: \(text)"))
                    }
                    return .idle
                }
            }
            if !got { break }
        }
        if libssh2_channel_eof(raw) != 0 {
            channel.outputFinished = true
            channel.source.finish()
            return .progress
        }
        if delivered { return .progress }
        // libssh2 answers 0 (not EAGAIN) in some states with nothing to read; the socket
        // decides when to try again either way.
        wantIn = true
        return blocked ? .wouldBlock : .idle
    }

    private func deliver(_ channel: ChannelCore, stream: SSHOutputChunk.Stream, count: Int) {
        guard !channel.discardOutput else { return }
        let bytes = allocator.buffer(bytes: UnsafeRawBufferPointer(rebasing: scratch[0..<count]))
        switch channel.source.yield(SSHOutputChunk(stream: stream, bytes: bytes)) {
        case .produceMore: break
        case .stopProducing: channel.outputDemand = false
        case .dropped: channel.discardOutput = true
        }
    }

    /// After the server's EOF: wait for its CLOSE, which in OpenSSH follows the exit report.
    private func stepWaitClosed(_ channel: ChannelCore, _ raw: OpaquePointer) -> Outcome {
        let rc = libssh2_channel_wait_closed(raw)
        if rc == LIBSSH2_ERROR_EAGAIN { return .wouldBlock }
        if rc != 0 && isFatal(rc) {
            die(SSHError(.sessionDead, "waiting for `\(channel.command)` to end failed: \(describe(rc))"))
            return .idle
        }
        finishChannel(channel, raw, closedInOrder: rc == 0)
        return .progress
    }

    /// `SSHExecChannel.close()`: EOF and CLOSE. The caller is answered once both are sent;
    /// the channel is freed after the server's CLOSE, which sshd sends only when the
    /// command has exited (until then it also keeps the MaxSessions slot).
    private func stepClose(_ channel: ChannelCore, _ raw: OpaquePointer) -> Outcome {
        channel.phase = .closing
        let rc = libssh2_channel_close(raw)
        if rc == LIBSSH2_ERROR_EAGAIN {
            // Blocked only inbound: EOF and CLOSE are out, libssh2 waits for the server's CLOSE.
            if libssh2_session_block_directions(handle.raw) & LIBSSH2_SESSION_BLOCK_OUTBOUND == 0, channel.exit == nil {
                finishChannel(channel, raw, closedInOrder: false)
                channel.phase = .closing
            }
            return .wouldBlock
        }
        if rc != 0 && isFatal(rc) {
            die(SSHError(.sessionDead, "closing the channel of `\(channel.command)` failed: \(describe(rc))"))
            return .idle
        }
        if channel.exit == nil { finishChannel(channel, raw, closedInOrder: false) }
        channel.phase = .freeing
        return .progress
    }

    /// Records how the command ended, fails what is left, and moves on to freeing.
    private func finishChannel(_ channel: ChannelCore, _ raw: OpaquePointer, closedInOrder: Bool) {
        var signal: UnsafeMutablePointer<CChar>?
        var signalLength = 0
        _ = libssh2_channel_get_exit_signal(raw, &signal, &signalLength, nil, nil, nil, nil)
        var signalName: String?
        if let signal {
            signalName = String(cString: signal)
            libssh2_free(handle.raw, signal)
        }
        let status = libssh2_channel_get_exit_status(raw)
        let exit: SSHExit
        if let signalName, !signalName.isEmpty {
            exit = .signalled(signalName)
        } else if closedInOrder || status != 0 {
            exit = .exited(status)
        } else {
            exit = .unknown
        }
        channel.exit = exit
        channel.shared.withLockedValue { $0 = exit }
        failWrites(channel, SSHError(.closed, "`\(channel.command)` ended (\(exit)) before its stdin was written"))
        if !channel.outputFinished {
            channel.outputFinished = true
            channel.source.finish()
        }
        for waiter in channel.exitWaiters { waiter.resume(returning: exit) }
        channel.exitWaiters.removeAll()
        for waiter in channel.closeWaiters { waiter.resume() }
        channel.closeWaiters.removeAll()
        channel.phase = .freeing
    }

    /// libssh2's text for `code`, with what the socket-level codes mean for us.
    func describe(_ code: Int32) -> String {
        let text = handle.lastErrorText
        switch code {
        case LIBSSH2_ERROR_SOCKET_RECV, LIBSSH2_ERROR_SOCKET_DISCONNECT:
            return "the connection to the server broke or was closed by it (libssh2: \(text))"
        case LIBSSH2_ERROR_SOCKET_SEND:
            return "sending to the server failed (libssh2: \(text))"
        default:
            return "libssh2: \(text) (error \(code))"
        }
    }

    private func stepFree(_ channel: ChannelCore, _ raw: OpaquePointer) -> Outcome {
        let rc = libssh2_channel_free(raw)
        if rc == LIBSSH2_ERROR_EAGAIN { return .wouldBlock }
        channel.handle?.markFreed()
        channel.phase = .done
        channels.removeAll { $0 === channel }
        // Room for a queued open (sshd's MaxSessions): try it now, with a fresh backoff.
        openRetryAt = nil
        openRefusals = 0
        let exit = channel.exit ?? .unknown
        if let failure = channel.failure {
            for waiter in channel.exitWaiters { waiter.resume(throwing: failure) }
        } else {
            for waiter in channel.exitWaiters { waiter.resume(returning: exit) }
        }
        channel.exitWaiters.removeAll()
        for waiter in channel.closeWaiters { waiter.resume() }
        channel.closeWaiters.removeAll()
        return .progress
    }

    /// A channel-level failure: everything waiting on it gets `error`, then it is freed.
    private func failChannel(_ channel: ChannelCore, _ error: SSHError) {
        channel.failure = error
        failWrites(channel, error)
        if !channel.outputFinished {
            channel.outputFinished = true
            channel.source.finish(error)
        }
        channel.phase = .freeing
    }

    /// The session is going away: every channel, queued or open, fails with `error`.
    func failAllChannels(_ error: SSHError) {
        let queued = openQueue
        openQueue.removeAll()
        for channel in queued { failOpen(channel, error) }
        for channel in channels where channel.phase != .done {
            channel.failure = channel.failure ?? error
            channel.openContinuation?.resume(throwing: error)
            channel.openContinuation = nil
            failWrites(channel, error)
            if !channel.outputFinished {
                channel.outputFinished = true
                channel.source.finish(error)
            }
            for waiter in channel.exitWaiters { waiter.resume(throwing: error) }
            channel.exitWaiters.removeAll()
            for waiter in channel.closeWaiters { waiter.resume() }
            channel.closeWaiters.removeAll()
            channel.phase = .done
        }
    }
}
