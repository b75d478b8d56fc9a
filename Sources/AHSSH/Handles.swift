import CLibSSH2
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Who owns which libssh2 pointer. Every type here is confined to its session's loop thread
// (see SessionLoop); none is Sendable.

/// libssh2_init must run once per process before any session; Swift runs a static `let`
/// initializer exactly once, thread-safely.
enum LibSSH2Library {
    static let initResult: Int32 = libssh2_init(0)
}

/// Owns one `LIBSSH2_SESSION *`, the `ah_ssh2_io` its socket callbacks write to, and the
/// connected socket. Released exactly once by `release()`: `shutdown(2)` (so that libssh2,
/// while freeing, cannot block on or talk to a peer we are done with), `libssh2_session_free`
/// (which also frees every channel still open on it), the io state, `close(2)`. A graceful
/// `libssh2_session_disconnect` is the loop's job before that, because it can return EAGAIN.
final class SessionHandle {
    let raw: OpaquePointer
    let fd: Int32
    private let io: UnsafeMutablePointer<ah_ssh2_io>
    private(set) var isReleased = false

    /// Takes ownership of `fd` even when it throws (the socket is closed then).
    init(fd: Int32) throws {
        self.fd = fd
        guard LibSSH2Library.initResult == 0 else {
            _ = closeDescriptor(fd)
            throw SSHError(.connect, "libssh2 could not be initialised (libssh2_init returned \(LibSSH2Library.initResult))")
        }
        io = .allocate(capacity: 1)
        io.initialize(to: ah_ssh2_io(last_receive_ns: 0))
        guard let session = ah_ssh2_session_new(io) else {
            io.deallocate()
            _ = closeDescriptor(fd)
            throw SSHError(.connect, "libssh2 could not allocate a session")
        }
        raw = session
        libssh2_session_set_blocking(session, 0)
    }

    /// Monotonic nanoseconds of the last time the server sent us bytes (0: never).
    var lastReceiveNanoseconds: Int64 { io.pointee.last_receive_ns }

    var lastErrno: Int32 { libssh2_session_last_errno(raw) }

    /// libssh2's text for the last error (owned by the session: copied at once).
    var lastErrorText: String {
        var message: UnsafeMutablePointer<CChar>?
        var length: Int32 = 0
        let code = libssh2_session_last_error(raw, &message, &length, 0)
        guard let message, length > 0 else { return "libssh2 error \(code)" }
        return String(cString: message)
    }

    func release() {
        guard !isReleased else { return }
        isReleased = true
        _ = shutdown(fd, Int32(SHUT_RDWR))
        // After shutdown nothing can block, so EAGAIN cannot recur; bounded anyway.
        var attempts = 0
        while libssh2_session_free(raw) == LIBSSH2_ERROR_EAGAIN && attempts < 8 { attempts += 1 }
        io.deinitialize(count: 1)
        io.deallocate()
        _ = closeDescriptor(fd)
    }
}

/// Owns one `LIBSSH2_CHANNEL *` from `libssh2_channel_open_ex` until `libssh2_channel_free`
/// returned other than EAGAIN (`markFreed`), or until its session was freed, which frees the
/// channel with it (`markFreedWithSession`). `raw` is nil afterwards.
final class ChannelHandle {
    private(set) var raw: OpaquePointer?

    init(_ raw: OpaquePointer) { self.raw = raw }

    func markFreed() { raw = nil }
    func markFreedWithSession() { raw = nil }
}

/// Owns one `LIBSSH2_AGENT *` for the duration of authentication. `release()` runs
/// `libssh2_agent_disconnect` and `libssh2_agent_free`, once; identities handed out by
/// `libssh2_agent_get_identity` belong to the agent and die with it.
final class AgentHandle {
    let raw: OpaquePointer
    private var isReleased = false

    init(_ raw: OpaquePointer) { self.raw = raw }

    func release() {
        guard !isReleased else { return }
        isReleased = true
        _ = libssh2_agent_disconnect(raw)
        libssh2_agent_free(raw)
    }
}

/// close(2) under a name that methods called `close` cannot hide.
@discardableResult
func closeDescriptor(_ fd: Int32) -> Int32 {
    #if canImport(Glibc)
    return Glibc.close(fd)
    #else
    return Darwin.close(fd)
    #endif
}
