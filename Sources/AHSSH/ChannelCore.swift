import NIOConcurrencyHelpers
import NIOCore

/// One exec channel's state on its session's loop thread (see SessionCore). The public
/// `SSHExecChannel` reaches it only through `SessionCore.execute`.
final class ChannelCore {
    enum Phase: Equatable {
        /// Waiting to be opened (behind other opens, or until sshd's MaxSessions leaves room).
        case queued
        /// Open; the exec request is on its way.
        case starting
        case running
        /// We asked to close: libssh2_channel_close (EOF, CLOSE, the server's CLOSE).
        case closing
        /// Closed both ways: libssh2_channel_free.
        case freeing
        case done
    }

    struct PendingWrite {
        var buffer: ByteBuffer
        let continuation: CheckedContinuation<Void, Error>
    }

    let id: Int
    let command: String
    var phase = Phase.queued
    var handle: ChannelHandle?
    var openContinuation: CheckedContinuation<Void, Error>?
    let source: SSHOutput.Producer.Source
    var outputDemand = true
    var discardOutput = false
    var outputFinished = false
    var writes: [PendingWrite] = []
    var eofRequested = false
    var eofSent = false
    var eofWaiters: [CheckedContinuation<Void, Error>] = []
    var closeRequested = false
    var closeWaiters: [CheckedContinuation<Void, Never>] = []
    var exitWaiters: [CheckedContinuation<SSHExit, Error>] = []
    var exit: SSHExit?
    var failure: SSHError?
    /// What `SSHExecChannel`'s synchronous properties read from any thread.
    let shared: NIOLockedValueBox<SSHExit?>

    init(id: Int, command: String, source: SSHOutput.Producer.Source, shared: NIOLockedValueBox<SSHExit?>) {
        self.id = id
        self.command = command
        self.source = source
        self.shared = shared
    }

    var wantsOutput: Bool { !outputFinished && (outputDemand || discardOutput) }

    /// The libssh2 steps that have work now.
    func pendingSteps() -> [SessionCore.ChannelStep] {
        switch phase {
        case .queued, .done: return []
        case .starting: return [.exec]
        case .closing: return [.close]
        case .freeing: return [.free]
        case .running:
            if closeRequested { return [.close] }
            var steps: [SessionCore.ChannelStep] = []
            if !writes.isEmpty { steps.append(.write) } else if eofRequested && !eofSent { steps.append(.eof) }
            if wantsOutput { steps.append(.read) }
            if outputFinished { steps.append(.waitClosed) }
            return steps
        }
    }
}
