import Foundation

/// The client's end of one connection to the leader service's Unix socket, blocking.
///
/// The client is a short process that does nothing else while it waits for the answer, so
/// it reads and writes the socket directly on its own thread. It used SwiftNIO before: the
/// event-loop threads, the channel pipeline and the async streams it set up for this one
/// request were about a third of the CPU of `ah agent followers sync-fence` with nothing to
/// sync. The threads also made every first write to a page of the binary's data a TLB
/// shootdown across cores. The service side stays on SwiftNIO.
///
/// Owns `fd`: `close()` releases it, and nothing else does. Used by one thread at a time
/// (made on the caller's, then handed to the thread that runs the exchange).
final class LeaderSocket: @unchecked Sendable {
    private var fd: Int32
    private var lines = LineSplitter()
    private var ended = false

    private init(fd: Int32) { self.fd = fd }

    deinit { close() }

    /// A connection to the socket at `path`, or nil if nothing accepts there (no service,
    /// a stale socket file, a path too long for `sockaddr_un`).
    static func connect(path: String) -> LeaderSocket? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { target in
            target.copyBytes(from: bytes)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
        let status = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, length) }
        }
        guard status == 0 else {
            Glibc.close(fd)
            return nil
        }
        return LeaderSocket(fd: fd)
    }

    /// Writes `value` as one line.
    func writeLine<T: Encodable>(_ value: T) throws {
        let data = try LeaderWire.encode(value)
        try data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw LeaderFailure(exitCode: 1, "cannot write to the leader service: \(String(cString: strerror(errno)))")
                }
                offset += written
            }
        }
    }

    /// The next line without its newline, or nil at the end of the stream.
    func nextLine() throws -> [UInt8]? {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            if let line = try lines.next(ended: ended) { return line }
            if ended { return nil }
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw LeaderFailure(exitCode: 1, "cannot read from the leader service: \(String(cString: strerror(errno)))")
            }
            if count == 0 {
                ended = true
                continue
            }
            try lines.append(chunk[..<count])
        }
    }

    func close() {
        guard fd >= 0 else { return }
        Glibc.close(fd)
        fd = -1
    }
}
