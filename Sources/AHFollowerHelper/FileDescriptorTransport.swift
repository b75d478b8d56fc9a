import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `HelperClient` transport over two file descriptors (the pipes of a locally spawned
/// `ah agent follower-helper`). `inbound` reads only when asked for the next chunk, so a
/// consumer that stops asking stops the peer (nothing is read ahead). Writes happen in order
/// on a serial queue. The transport owns both descriptors. The process must ignore SIGPIPE
/// (a write to a helper that exited must fail, not kill the caller).
public final class FileDescriptorTransport: Sendable {
    public let inbound: FileDescriptorReader
    private let writeFD: Int32
    private let queue = DispatchQueue(label: "ah.follower-helper.transport.write")
    // Touched only on `queue`.
    private let writeClosed = ClosedFlag()

    public init(readFD: Int32, writeFD: Int32) {
        self.writeFD = writeFD
        inbound = FileDescriptorReader(fd: readFD)
    }

    public func write(_ bytes: [UInt8]) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            queue.async { [writeFD, writeClosed] in
                guard !writeClosed.value else {
                    continuation.resume(throwing: TransportError(description: "the write side is closed"))
                    return
                }
                var offset = 0
                let failure: String? = bytes.withUnsafeBytes { raw in
                    while offset < raw.count {
                        let written = systemWrite(writeFD, raw.baseAddress! + offset, raw.count - offset)
                        if written >= 0 {
                            offset += written
                        } else if errno != EINTR {
                            return "writing failed: \(String(cString: strerror(errno)))"
                        }
                    }
                    return nil
                }
                if let failure {
                    continuation.resume(throwing: TransportError(description: failure))
                } else {
                    continuation.resume()
                }
            }
        }
    }

    /// Closes the write side after what was already written (the peer reads EOF).
    public func closeWrite() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async { [writeFD, writeClosed] in
                if !writeClosed.value {
                    writeClosed.value = true
                    close(writeFD)
                }
                continuation.resume()
            }
        }
    }

    public struct TransportError: Error, CustomStringConvertible {
        public let description: String
    }
}

/// Chunks read from a descriptor on demand (each `next()` is one read(2) of up to 64 KiB,
/// on a queue of its own); ends at EOF, when the descriptor is closed.
public struct FileDescriptorReader: AsyncSequence, Sendable {
    public typealias Element = [UInt8]
    private let state: ReaderState

    init(fd: Int32) {
        state = ReaderState(fd: fd)
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(state: state)
    }

    public struct Iterator: AsyncIteratorProtocol {
        fileprivate let state: ReaderState

        public mutating func next() async throws -> [UInt8]? {
            try await state.read()
        }
    }
}

/// The descriptor of a `FileDescriptorReader`, read and closed only on its queue.
private final class ReaderState: @unchecked Sendable {
    private let queue = DispatchQueue(label: "ah.follower-helper.transport.read")
    private let fd: Int32
    // Touched only on `queue`.
    private var ended = false

    init(fd: Int32) {
        self.fd = fd
    }

    func read() async throws -> [UInt8]? {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[UInt8]?, any Error>) in
            queue.async {
                guard !self.ended else { return continuation.resume(returning: nil) }
                var buffer = [UInt8](repeating: 0, count: 64 * 1024)
                while true {
                    let count = systemRead(self.fd, &buffer, buffer.count)
                    if count > 0 { return continuation.resume(returning: Array(buffer[0..<count])) }
                    if count < 0 && errno == EINTR { continue }
                    let failure = count < 0 ? String(cString: strerror(errno)) : nil
                    self.ended = true
                    close(self.fd)
                    if let failure {
                        return continuation.resume(throwing: FileDescriptorTransport.TransportError(description: "reading failed: \(failure)"))
                    }
                    return continuation.resume(returning: nil)
                }
            }
        }
    }
}

private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(fd, buffer, count)
}

/// write(2); a free function because `write` inside the class names its method.
private func systemWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, bytes, count)
}

/// A flag read and written only on one serial queue.
private final class ClosedFlag: @unchecked Sendable {
    var value = false
}
