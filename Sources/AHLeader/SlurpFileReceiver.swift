import AHFollowerHelper
import Crypto
import Foundation

/// One follower's answer to one file set, written into a private staging directory as it
/// streams in: each file is created new (O_EXCL, 0600), hashed while written, and kept
/// only when its size and SHA-256 equal what the sender announced; then it gets the
/// sender's mode and mtime. Every path is checked before anything is created: relative,
/// no `.`/`..`/empty segments, no NUL or control characters, bounded length. Called on the
/// connection's reader (synchronously: see `SlurpReceiver`).
final class SlurpFileReceiver: SlurpReceiver, @unchecked Sendable {
    struct ReceivedFile: Sendable, Equatable {
        var path: String
        var size: Int64
        var sha256: String
        var mode: UInt32
        var mtimeNanos: Int64
    }

    enum Outcome: Sendable {
        /// The set arrived whole and every file verified.
        case completed(files: [ReceivedFile], skipped: [SlurpSkipped])
        /// The follower refused the set, or a file failed (verification, size, the sender's
        /// read): the set from this host is not usable. Not worth a retry.
        case failed(String)
        /// The connection ended mid-way (the follower or its path died): worth one retry.
        case lost(String)
    }

    let directory: URL
    /// Test-only fault (AH_TEST_SLURP_CORRUPT=PATH): flips the first byte of that file's data
    /// between the sender and the receiver's hash — a corruption no real run can produce
    /// (SSH's MAC would catch it on the wire), to show a mismatch is never moved into place.
    let corruptPath: String?
    /// Asked once when this receiver gives up on the set (the sender should stop).
    let onAbandon: @Sendable () -> Void

    private let lock = NSLock()
    // Guarded by `lock`.
    private var current: (header: SlurpFileHeader, fd: Int32, hasher: SHA256, received: Int64, corrupted: Bool)?
    private var files: [ReceivedFile] = []
    private var seen: Set<String> = []
    private var failure: String?
    private var outcome: Outcome?
    private var waiter: CheckedContinuation<Outcome, Never>?
    private var lastActivity = ContinuousClock.now
    private(set) var bytes: Int64 = 0

    static let maximumPathLength = 4096
    static let maximumSegmentLength = 255

    init(directory: URL, corruptPath: String?, onAbandon: @escaping @Sendable () -> Void) {
        self.directory = directory
        self.corruptPath = corruptPath
        self.onAbandon = onAbandon
    }

    /// When the last frame of this set arrived (the watchdog's clock).
    var idleSince: ContinuousClock.Instant { lock.withLock { lastActivity } }

    /// Waits for the set to end (completed, failed or lost).
    func result() async -> Outcome {
        await withCheckedContinuation { continuation in
            let ready: Outcome? = lock.withLock {
                if let outcome { return outcome }
                waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Ends the set from outside (the watchdog found the follower silent).
    func abandon(_ reason: String) {
        finish(.lost(reason))
    }

    // MARK: SlurpReceiver

    func slurpFile(_ header: SlurpFileHeader) {
        lock.withLock { lastActivity = .now }
        if let problem = Self.pathProblem(header.path) { return fail("the follower sent an unusable path: \(problem)") }
        guard header.encoding == "identity" else {
            return fail("\(header.path): encoding '\(header.encoding.prefix(32))' is not one this leader reads")
        }
        guard header.size >= 0 else { return fail("\(header.path): a negative size (\(header.size))") }
        let opened: String? = lock.withLock {
            guard failure == nil, outcome == nil else { return nil }
            if current != nil { return "\(header.path) started before the previous file ended" }
            if seen.contains(header.path) { return "\(header.path) was sent twice" }
            seen.insert(header.path)
            let target = directory.appendingPathComponent(header.path)
            do {
                try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            } catch {
                return "cannot create the directory for \(header.path): \(error.localizedDescription)"
            }
            let fd = open(target.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else { return "cannot create \(target.path): \(String(cString: strerror(errno)))" }
            current = (header, fd, SHA256(), 0, false)
            return nil
        }
        if let opened { fail(opened) }
    }

    func slurpData(_ bytes: [UInt8]) {
        let problem: String? = lock.withLock {
            lastActivity = .now
            guard failure == nil, outcome == nil else { return nil }
            guard var file = current else { return "data arrived outside a file" }
            guard file.received + Int64(bytes.count) <= file.header.size else {
                return "\(file.header.path): more bytes than the \(file.header.size) announced"
            }
            var data = bytes
            if !file.corrupted, let corruptPath, corruptPath == file.header.path, !data.isEmpty {
                data[0] ^= 0xFF
                file.corrupted = true
            }
            file.hasher.update(data: data)
            let written = data.withUnsafeBytes { raw -> String? in
                var offset = 0
                while offset < raw.count {
                    let count = write(file.fd, raw.baseAddress! + offset, raw.count - offset)
                    if count < 0 {
                        if errno == EINTR { continue }
                        return "writing \(file.header.path) on the leader failed: \(String(cString: strerror(errno)))"
                    }
                    offset += count
                }
                return nil
            }
            file.received += Int64(bytes.count)
            self.bytes += Int64(bytes.count)
            current = file
            return written
        }
        if let problem { fail(problem) }
    }

    func slurpFileEnd(_ end: SlurpFileEnd) {
        let problem: String? = lock.withLock {
            lastActivity = .now
            guard failure == nil, outcome == nil else { return nil }
            guard let file = current else { return "a file end arrived outside a file" }
            current = nil
            let digest = file.hasher.finalize().map { String(format: "%02x", $0) }.joined()
            let target = directory.appendingPathComponent(file.header.path)
            if let error = end.error {
                close(file.fd)
                unlink(target.path)
                return "\(file.header.path): the follower could not send it whole: \(error.prefix(300))"
            }
            guard file.received == file.header.size else {
                close(file.fd)
                unlink(target.path)
                return "\(file.header.path): \(file.received) bytes arrived, \(file.header.size) were announced"
            }
            guard let claimed = end.sha256, claimed == digest else {
                close(file.fd)
                unlink(target.path)
                return "\(file.header.path): checksum mismatch (the follower sent SHA-256 \(end.sha256?.prefix(64) ?? "none"), "
                    + "the leader received \(digest)); not moved into place"
            }
            // setuid/setgid/sticky bits are not carried over from another machine.
            fchmod(file.fd, mode_t(file.header.mode & 0o777))
            let seconds = file.header.mtimeNanos / 1_000_000_000
            let nanos = file.header.mtimeNanos % 1_000_000_000
            var times = [timespec(tv_sec: Int(seconds), tv_nsec: Int(nanos)), timespec(tv_sec: Int(seconds), tv_nsec: Int(nanos))]
            futimens(file.fd, &times)
            close(file.fd)
            files.append(ReceivedFile(path: file.header.path, size: file.header.size, sha256: digest, mode: file.header.mode & 0o777,
                                      mtimeNanos: file.header.mtimeNanos))
            return nil
        }
        if let problem { fail(problem) }
    }

    func slurpEnd(_ end: SlurpEnd) {
        if let error = end.error {
            finish(.failed("the follower refused or stopped the set: \(error.prefix(500))"))
            return
        }
        let result: Outcome = lock.withLock {
            if let failure { return .failed(failure) }
            if current != nil { return .failed("the set ended in the middle of a file") }
            return .completed(files: files, skipped: end.skipped)
        }
        finish(result)
    }

    func slurpLost(_ error: FollowerHelperError) {
        finish(.lost("\(error)"))
    }

    // MARK: ending

    /// Records the first problem and asks the sender to stop; the set ends with it when the
    /// helper confirms (`slurpEnd`), or at once when the connection is gone.
    private func fail(_ problem: String) {
        let first: Bool = lock.withLock {
            guard failure == nil else { return false }
            failure = problem
            if let file = current {
                close(file.fd)
                unlink(directory.appendingPathComponent(file.header.path).path)
                current = nil
            }
            return true
        }
        guard first else { return }
        onAbandon()
        finish(.failed(problem))
    }

    private func finish(_ result: Outcome) {
        let continuation: CheckedContinuation<Outcome, Never>? = lock.withLock {
            guard outcome == nil else { return nil }
            outcome = result
            if let file = current {
                close(file.fd)
                current = nil
            }
            defer { waiter = nil }
            return waiter
        }
        continuation?.resume(returning: result)
    }

    /// nil when `path` is a safe relative path to create under the staging directory.
    static func pathProblem(_ path: String) -> String? {
        if path.isEmpty { return "an empty path" }
        if path.utf8.count > maximumPathLength { return "a path longer than \(maximumPathLength) bytes" }
        if path.hasPrefix("/") { return "'\(path.prefix(200))' is absolute" }
        if path.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
            return "'\(path.prefix(200))' contains control characters"
        }
        for segment in path.split(separator: "/", omittingEmptySubsequences: false) {
            if segment.isEmpty || segment == "." || segment == ".." { return "'\(path.prefix(200))' has an empty, '.' or '..' segment" }
            if segment.utf8.count > maximumSegmentLength { return "'\(path.prefix(200))' has a name longer than \(maximumSegmentLength) bytes" }
        }
        return nil
    }
}
