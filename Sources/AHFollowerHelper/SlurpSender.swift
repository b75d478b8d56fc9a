import Crypto
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The helper's side of slurp: one thread per `slurp-start` that walks the set and streams
/// it (header, kind-4 data frames, SHA-256, then `slurp-end`). Writes go through the shared
/// `FrameSink`, one frame at a time, so a big file never holds up other jobs' output for
/// longer than one frame, and a leader that stops reading stops the sender (backpressure).
final class SlurpSenders: @unchecked Sendable {
    /// Data frames carry at most this many bytes (well inside the 1 MiB frame bound; big
    /// enough that the 9-byte header and the per-frame work are noise).
    static let chunkSize = 256 * 1024

    private let lock = NSLock()
    // Guarded by `lock`: running slurps and whether they were asked to stop.
    private var running: [UInt32: Bool] = [:]

    /// Handles a slurp message from the leader; `complain` answers what makes no sense here.
    func handle(_ message: SlurpMessage, sink: FrameSink, workingDirectory: String, logger: Logger,
                complain: (String, String) -> Void) {
        switch message {
        case .start(let start):
            if start.job == 0 {
                complain("bad-request", "job id 0 is reserved (slurp '\(start.name.prefix(64))')")
                return
            }
            let duplicate: Bool = lock.withLock {
                if running[start.job] != nil { return true }
                running[start.job] = false
                return false
            }
            if duplicate {
                sink.send(.slurp(.end(SlurpEnd(job: start.job, files: 0, bytes: 0, error: "job \(start.job) is already running",
                                               code: "duplicate-job"))))
                return
            }
            let thread = Thread { [self] in
                let end = send(start, sink: sink, workingDirectory: workingDirectory, logger: logger)
                _ = lock.withLock { running.removeValue(forKey: start.job) }
                sink.send(.slurp(.end(end)))
            }
            thread.name = "slurp \(start.job)"
            thread.stackSize = 512 * 1024
            thread.start()
        case .cancel(let job):
            lock.withLock { if running[job] != nil { running[job] = true } }
        case .file, .fileEnd, .end:
            complain("unexpected-type", "the helper does not accept '\(message.type)' messages (it sends them)")
        }
    }

    private func cancelled(_ job: UInt32) -> Bool { lock.withLock { running[job] ?? true } }

    /// Walks and sends one set; returns its `slurp-end`.
    private func send(_ start: SlurpStart, sink: FrameSink, workingDirectory: String, logger: Logger) -> SlurpEnd {
        let root = start.root ?? workingDirectory
        var walk: SlurpWalk
        do {
            walk = try SlurpWalk(root: root, include: start.include, exclude: start.exclude)
            try walk.run()
        } catch {
            logger.info("Refused a slurp", metadata: ["set": "\(start.name.prefix(64))", "reason": "\(error)"])
            return SlurpEnd(job: start.job, files: 0, bytes: 0, error: error.description, code: "bad-request")
        }
        var files = 0
        var bytes: Int64 = 0
        var skipped = walk.skipped
        var frame = [UInt8](repeating: 0, count: 9 + Self.chunkSize)
        for entry in walk.entries {
            if cancelled(start.job) {
                return SlurpEnd(job: start.job, files: files, bytes: bytes, skipped: skipped, error: "cancelled by the leader", code: "cancelled")
            }
            // Opened by its real path, refusing a symlink swapped in since the walk.
            let fd = open(entry.realPath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            if fd < 0 {
                skipped.append(SlurpSkipped(path: entry.path, reason: "cannot be opened: \(String(cString: strerror(errno)))"))
                continue
            }
            defer { close(fd) }
            var info = stat()
            guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
                skipped.append(SlurpSkipped(path: entry.path, reason: "is no longer a regular file"))
                continue
            }
            let size = Int64(info.st_size)
            #if canImport(Darwin)
            let mtime = Int64(info.st_mtimespec.tv_sec) * 1_000_000_000 + Int64(info.st_mtimespec.tv_nsec)
            #else
            let mtime = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
            #endif
            let header = SlurpFileHeader(job: start.job, path: entry.path, size: size, mode: UInt32(info.st_mode) & 0o7777, mtimeNanos: mtime)
            guard sink.send(frame: HelperWire.encode(.slurp(.file(header)))) else {
                return SlurpEnd(job: start.job, files: files, bytes: bytes, skipped: skipped, error: "the leader went away", code: "failed")
            }
            var hasher = SHA256()
            var remaining = size
            var failure: String?
            while remaining > 0 {
                let want = Int(min(Int64(Self.chunkSize), remaining))
                let count = frame.withUnsafeMutableBytes { raw in read(fd, raw.baseAddress! + 9, want) }
                if count < 0 {
                    if errno == EINTR { continue }
                    failure = "reading it failed: \(String(cString: strerror(errno)))"
                    break
                }
                if count == 0 {
                    failure = "it shrank from \(size) bytes while being sent"
                    break
                }
                frame.withUnsafeBytes { raw in hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: raw[9..<(9 + count)])) }
                Self.writeHeader(into: &frame, payload: count, job: start.job)
                let sent = count == Self.chunkSize ? sink.send(frame: frame) : sink.send(frame: Array(frame[0..<(9 + count)]))
                guard sent else {
                    return SlurpEnd(job: start.job, files: files, bytes: bytes, skipped: skipped, error: "the leader went away", code: "failed")
                }
                remaining -= Int64(count)
                bytes += Int64(count)
                if remaining > 0, cancelled(start.job) {
                    failure = "cancelled by the leader"
                    break
                }
            }
            let digest = failure == nil ? hasher.finalize().map { String(format: "%02x", $0) }.joined() : nil
            if failure == nil { files += 1 }
            guard sink.send(frame: HelperWire.encode(.slurp(.fileEnd(SlurpFileEnd(job: start.job, sha256: digest, error: failure))))) else {
                return SlurpEnd(job: start.job, files: files, bytes: bytes, skipped: skipped, error: "the leader went away", code: "failed")
            }
        }
        return SlurpEnd(job: start.job, files: files, bytes: bytes, skipped: skipped)
    }

    /// Length, kind 4 and job id in the first 9 bytes (the payload is already in place).
    private static func writeHeader(into frame: inout [UInt8], payload: Int, job: UInt32) {
        let length = UInt32(HelperWire.minimumFrameLength + payload)
        frame[0] = UInt8(truncatingIfNeeded: length >> 24)
        frame[1] = UInt8(truncatingIfNeeded: length >> 16)
        frame[2] = UInt8(truncatingIfNeeded: length >> 8)
        frame[3] = UInt8(truncatingIfNeeded: length)
        frame[4] = HelperFrameKind.slurpData.rawValue
        frame[5] = UInt8(truncatingIfNeeded: job >> 24)
        frame[6] = UInt8(truncatingIfNeeded: job >> 16)
        frame[7] = UInt8(truncatingIfNeeded: job >> 8)
        frame[8] = UInt8(truncatingIfNeeded: job)
    }
}
