#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A blocking TCP client for tests that must send exactly the bytes they choose (half a request
/// line, oversized heads) and observe when the server closes.
public final class RawSocket {
    private let fd: Int32

    public init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RawSocketError("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            Self.release(fd)
            throw RawSocketError("connect 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
        }
    }

    deinit { Self.release(fd) }

    /// close(2); a method named `close` on this class hides the C function.
    private static func release(_ fd: Int32) {
        #if canImport(Glibc)
        _ = Glibc.close(fd)
        #else
        _ = Darwin.close(fd)
        #endif
    }

    /// Ends the connection both ways now (the descriptor itself is released in deinit).
    public func close() {
        _ = shutdown(fd, Int32(SHUT_RDWR))
    }

    public func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { sendNoSignal(fd, $0.baseAddress, $0.count) }
            guard n >= 0 else { throw RawSocketError("send: \(String(cString: strerror(errno)))") }
            offset += n
        }
    }

    /// Reads until the server closes or `timeout` passes. `closed` is false on timeout.
    public func readUntilClose(timeout: TimeInterval) -> (text: String, closed: Bool) {
        var received = [UInt8]()
        let closed = read(into: &received, until: { _ in false }, timeout: timeout)
        return (String(decoding: received, as: UTF8.self), closed)
    }

    /// Reads until `needle` has been received (true) or the server closes / `timeout` passes.
    public func read(until needle: String, timeout: TimeInterval) -> (text: String, found: Bool) {
        var received = [UInt8]()
        var found = false
        _ = read(into: &received, until: { bytes in
            found = String(decoding: bytes, as: UTF8.self).contains(needle)
            return found
        }, timeout: timeout)
        return (String(decoding: received, as: UTF8.self), found)
    }

    /// Reads one response with a `content-length` body (keep-alive), or nil on timeout/close.
    public func readResponse(timeout: TimeInterval) -> String? {
        var received = [UInt8]()
        _ = read(into: &received, until: { bytes in
            let text = String(decoding: bytes, as: UTF8.self)
            guard let headEnd = text.range(of: "\r\n\r\n") else { return false }
            let head = text[..<headEnd.lowerBound].lowercased()
            let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
            return text.utf8.count - text[..<headEnd.upperBound].utf8.count >= length
        }, timeout: timeout)
        return received.isEmpty ? nil : String(decoding: received, as: UTF8.self)
    }

    /// True when the peer closed (EOF or reset); false when `done` said stop or time ran out.
    private func read(into received: inout [UInt8], until done: ([UInt8]) -> Bool, timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !done(received) {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { return false }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(max(1, remaining * 1000)))
            if ready == 0 { return false }
            if ready < 0 { if errno == EINTR { continue } else { return true } }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return true }
            received.append(contentsOf: buffer[0..<n])
        }
        return false
    }
}

public struct RawSocketError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// `send(2)` without SIGPIPE when the server has already closed.
private func sendNoSignal(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.send(fd, buffer, count, Int32(MSG_NOSIGNAL))
    #else
    return Darwin.send(fd, buffer, count, 0)
    #endif
}
