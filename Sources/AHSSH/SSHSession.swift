import Logging
import NIOConcurrencyHelpers
import NIOCore

/// An authenticated SSH connection (libssh2) with exec channels multiplexed on it.
///
/// One dedicated thread drives the session non-blocking (see `SessionCore`); the methods
/// here post requests to it and await the answer. Channels beyond sshd's MaxSessions wait
/// in a queue instead of failing. When the session dies (socket closed or reset,
/// keepalives unanswered) every channel fails with an `SSHError` and `isAlive` turns false.
public final class SSHSession: @unchecked Sendable {
    let core: SessionCore
    /// The server's host key as OpenSSH prints it (`SHA256:...`), one of the expected ones.
    public let hostKeySHA256: String

    private init(core: SessionCore, hostKeySHA256: String) {
        self.core = core
        self.hostKeySHA256 = hostKeySHA256
    }

    deinit {
        let core = self.core
        core.execute { core.requestCloseWithoutWaiting() }
    }

    /// Sets up SSH on an already connected socket (a direct TCP dial, or a tunnel whose
    /// HTTP CONNECT exchange is done). The session owns `fd` from the call on, also when it
    /// throws, and closes it.
    ///
    /// Order: handshake; the server's host key must be one of `expectedHostKeySHA256`
    /// (`SHA256:base64`, as `ssh-keygen -lf` prints; an empty list refuses every server)
    /// before anything about us is sent; then public key authentication as `user`.
    /// `keepalive`: send one after this long without (rounded to whole seconds, at least 1);
    /// no answer for three intervals = dead. `connectTimeout` bounds handshake + auth.
    public static func connect(
        socket fd: Int32,
        expectedHostKeySHA256: [String],
        user: String,
        auth: SSHAuthentication,
        keepalive: Duration?,
        connectTimeout: Duration,
        logger: Logger
    ) async throws -> SSHSession {
        if let problem = validate(expectedHostKeySHA256: expectedHostKeySHA256, user: user, auth: auth) {
            closeDescriptor(fd)
            throw problem
        }
        let options = SessionOptions(expectedHostKeys: expectedHostKeySHA256, user: user, auth: auth,
                                     keepalive: keepalive, connectTimeout: connectTimeout)
        let core = try SessionCore(fd: fd, options: options, logger: logger)
        let fingerprint = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                core.start(connect: continuation)
            }
        } onCancel: {
            core.execute { core.failConnect(SSHError(.closed, "connecting the SSH session was cancelled")) }
        }
        return SSHSession(core: core, hostKeySHA256: fingerprint)
    }

    private static func validate(expectedHostKeySHA256: [String], user: String, auth: SSHAuthentication) -> SSHError? {
        for fingerprint in expectedHostKeySHA256 where !SSHHostKeyFingerprint.normalized(fingerprint).hasPrefix("SHA256:") {
            return SSHError(.invalidArgument, "the expected host key fingerprint \"\(fingerprint)\" is not of the form SHA256:base64 (as ssh-keygen -lf prints it)")
        }
        if user.isEmpty || user.utf8.contains(0) || user.utf8.count > 256 {
            return SSHError(.invalidArgument, "the SSH user name \"\(user)\" is empty, too long or contains a NUL byte")
        }
        if case .keyFile(let path) = auth, path.isEmpty || path.utf8.contains(0) {
            return SSHError(.invalidArgument, "the SSH key file path \"\(path)\" is empty or contains a NUL byte")
        }
        return nil
    }

    /// False once the session died or was closed.
    public var isAlive: Bool { core.alive.withLockedValue { $0 } }

    /// The longest command accepted by `exec` (sshd's own limit is larger).
    public static let maxCommandLength = 256 * 1024

    /// Runs `command` on a new exec channel and returns once sshd accepted it. Waits (does
    /// not fail) while sshd's MaxSessions is reached, until one of this session's channels
    /// closes.
    public func exec(_ command: String) async throws -> SSHExecChannel {
        guard !command.utf8.contains(0), command.utf8.count <= Self.maxCommandLength else {
            throw SSHError(.invalidArgument, "the command \(command.prefix(80).debugDescription) contains a NUL byte or is longer than \(Self.maxCommandLength) bytes")
        }
        let core = self.core
        let shared = NIOLockedValueBox<SSHExit?>(nil)
        let id = ChannelIDs.next()
        let delegate = OutputDemand(core: core, channelID: id)
        let made = SSHOutput.Producer.makeSequence(
            backPressureStrategy: .init(lowWatermark: SSHOutput.lowWatermark, highWatermark: SSHOutput.highWatermark),
            finishOnDeinit: false,
            delegate: delegate
        )
        let channel = ChannelCore(id: id, command: command, source: made.source, shared: shared)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            channel.openContinuation = continuation
            core.execute { core.enqueueOpen(channel) }
        }
        return SSHExecChannel(session: self, id: id, command: command, output: SSHOutput(producer: made.sequence), exit: shared)
    }

    /// Disconnects cleanly (SSH_MSG_DISCONNECT, at most 2 s) and releases the session;
    /// open channels fail with `SSHError.Kind.closed`. Idempotent.
    public func close() async {
        let core = self.core
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            core.execute { core.requestClose(continuation) }
        }
    }
}

/// Channel ids are process-wide so that the delegate can name its channel before the loop
/// has seen it.
enum ChannelIDs {
    private static let counter = NIOLockedValueBox(0)
    static func next() -> Int { counter.withLockedValue { $0 += 1; return $0 } }
}
