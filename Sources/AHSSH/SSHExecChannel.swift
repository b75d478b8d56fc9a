import NIOConcurrencyHelpers
import NIOCore

/// A command running on an exec channel of an `SSHSession` (which it keeps alive).
///
/// - `output`: stdout and stderr as tagged chunks, ending after the server's EOF.
/// - `write(_:)` returns once libssh2 took the bytes, which it does only within the
///   channel's SSH window: a command that does not read stdin stops the writer instead of
///   growing a buffer. `sendEOF()` after the last write.
/// - `waitForExit()` returns how the command ended once the server closed the channel.
/// - `close()` ends the channel early (EOF, CLOSE).
public final class SSHExecChannel: @unchecked Sendable {
    public let command: String
    public let output: SSHOutput
    private let session: SSHSession
    private let id: Int
    private let exit: NIOLockedValueBox<SSHExit?>

    init(session: SSHSession, id: Int, command: String, output: SSHOutput, exit: NIOLockedValueBox<SSHExit?>) {
        self.session = session
        self.id = id
        self.command = command
        self.output = output
        self.exit = exit
    }

    private var core: SessionCore { session.core }

    /// Writes to the command's stdin; returns when libssh2 has taken every byte.
    public func write(_ bytes: ByteBuffer) async throws {
        guard bytes.readableBytes > 0 else { return }
        let core = self.core
        let id = self.id
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            core.execute { core.enqueueWrite(channelID: id, buffer: bytes, continuation: continuation) }
        }
    }

    public func write(_ bytes: [UInt8]) async throws {
        try await write(ByteBuffer(bytes: bytes))
    }

    /// Closes the command's stdin (after every write so far).
    public func sendEOF() async throws {
        let core = self.core
        let id = self.id
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            core.execute { core.enqueueEOF(channelID: id, continuation: continuation) }
        }
    }

    /// Waits until the server closed the channel and returns how the command ended; throws
    /// when the session died first. Keep reading `output` meanwhile (or drop it): unread
    /// output holds the channel open.
    public func waitForExit() async throws -> SSHExit {
        if let known = exit.withLockedValue({ $0 }) { return known }
        let core = self.core
        let id = self.id
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<SSHExit, Error>) in
            core.execute { core.awaitExit(channelID: id, continuation: continuation, known: self.exit) }
        }
    }

    /// Closes the channel (EOF, CLOSE) and frees it; the exit status is whatever had
    /// arrived by then. Idempotent; returns at once when the channel is already closed.
    public func close() async {
        let core = self.core
        let id = self.id
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            core.execute { core.enqueueClose(channelID: id, continuation: continuation) }
        }
    }

    /// How the command ended, once the channel closed; nil before.
    public var exitReport: SSHExit? { exit.withLockedValue { $0 } }

    /// The exit status the server reported; nil while running, after a signal, or when no
    /// exit status arrived (see `SSHExit.unknown`: libssh2 1.10 alone cannot tell).
    public var exitStatus: Int32? {
        if case .exited(let status) = exitReport { return status }
        return nil
    }

    /// The signal that killed the command (name without "SIG"), if the server said so.
    public var exitSignal: String? {
        if case .signalled(let name) = exitReport { return name }
        return nil
    }

    /// Reads `output` to its end into two buffers; throws when more than `limit` bytes
    /// arrive in total (the rest is not read) or the session dies.
    public func collectOutput(limit: Int) async throws -> (stdout: ByteBuffer, stderr: ByteBuffer) {
        var stdout = ByteBuffer()
        var stderr = ByteBuffer()
        for try await chunk in output {
            var bytes = chunk.bytes
            guard stdout.readableBytes + stderr.readableBytes + bytes.readableBytes <= limit else {
                throw SSHError(.invalidArgument, "the output of `\(command)` exceeded \(limit) bytes")
            }
            switch chunk.stream {
            case .stdout: stdout.writeBuffer(&bytes)
            case .stderr: stderr.writeBuffer(&bytes)
            }
        }
        return (stdout, stderr)
    }
}
