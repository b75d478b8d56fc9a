import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The helper's output (its stdout): whole frames written with blocking writes, one at a
/// time. A writer waits while the leader is not reading — that wait is the backpressure: a
/// job's pipe reader blocks here, stops draining the child's pipe, and the child blocks on
/// its full pipe. Nothing is queued in memory.
final class FrameSink: @unchecked Sendable {
    private let fd: Int32
    private let lock = NSLock()
    // Guarded by `lock`.
    private var broken = false
    private let onBroken: @Sendable (String) -> Void

    /// `onBroken` runs once, on the first failed write (the leader went away).
    init(fd: Int32, onBroken: @escaping @Sendable (String) -> Void) {
        self.fd = fd
        self.onBroken = onBroken
    }

    func send(_ message: HelperMessage) {
        send(frame: HelperWire.encode(message))
    }

    /// False when the output is gone (the frame was not, and will never be, delivered).
    @discardableResult
    func send(frame: [UInt8]) -> Bool {
        let failure: String? = lock.withLock {
            if broken { return nil }
            if let reason = writeAll(frame) {
                broken = true
                return reason
            }
            return nil
        }
        if let failure {
            onBroken(failure)
            return false
        }
        return lock.withLock { !broken }
    }

    private func writeAll(_ frame: [UInt8]) -> String? {
        frame.withUnsafeBytes { bytes -> String? in
            var offset = 0
            while offset < bytes.count {
                let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if written >= 0 {
                    offset += written
                    continue
                }
                switch errno {
                case EINTR:
                    continue
                case EAGAIN, EWOULDBLOCK:
                    // A non-blocking descriptor handed to us: wait until it takes more.
                    var pollFD = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&pollFD, 1, -1)
                default:
                    return "writing to the leader failed: \(String(cString: strerror(errno)))"
                }
            }
            return nil
        }
    }
}
