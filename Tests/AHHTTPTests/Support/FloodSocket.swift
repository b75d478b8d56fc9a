#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A TCP client that sends without blocking, to see how much a server lets a client push
/// (a server that stops reading makes `send` fail with EAGAIN once the buffers are full).
final class FloodSocket {
    private let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RawSocketFailure("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            _ = close(fd)
            throw RawSocketFailure("connect 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
        }
    }

    deinit { _ = close(fd) }

    func sendAll(_ text: String) throws {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n >= 0 else { throw RawSocketFailure("send: \(String(cString: strerror(errno)))") }
            offset += n
        }
    }

    /// Sends 64 KiB blocks without blocking until the socket has accepted nothing for `quiet`
    /// seconds or `limit` bytes went out; returns how many bytes went out.
    func pushUntilStalled(limit: Int, quiet: Double) -> Int {
        let block = [UInt8](repeating: UInt8(ascii: "z"), count: 64 * 1024)
        var total = 0
        var lastProgress = Date()
        while total < limit {
            let n = block.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if n > 0 {
                total += n
                lastProgress = Date()
                continue
            }
            guard n < 0, errno == EAGAIN || errno == EWOULDBLOCK else { return total }  // closed or reset
            if Date().timeIntervalSince(lastProgress) >= quiet { return total }
            // Wait for writability (or the quiet period to end) instead of spinning.
            var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&descriptor, 1, 50)
        }
        return total
    }

    /// Everything the server sends until it closes or `timeout` passes.
    func readUntilClose(timeout: Double) -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var received = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while deadline.timeIntervalSinceNow > 0 {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(max(1, deadline.timeIntervalSinceNow * 1000)))
            if ready <= 0 { if ready < 0 && errno == EINTR { continue } else { break } }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            received.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: received, as: UTF8.self)
    }
}

struct RawSocketFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
