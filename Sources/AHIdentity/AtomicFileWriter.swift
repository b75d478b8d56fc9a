#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Writes a file so that readers see either the old content or the complete new content, and
/// the new file carries its final permission bits from the moment it exists.
///
/// Private keys must never be world-readable, not even for a moment between `write` and
/// `chmod`; so the temp file is created by `open(O_CREAT|O_EXCL, mode)` with the final mode,
/// in the destination's directory (so `rename` is atomic), fsynced, renamed over the
/// destination, and the directory is fsynced so the rename survives a crash.
public enum AtomicFileWriter {
    public static func write(_ bytes: [UInt8], to url: URL, mode: mode_t) throws {
        let directory = url.deletingLastPathComponent().path
        let temp = directory + "/." + url.lastPathComponent + ".tmp-" + randomSuffix()
        let fd = open(temp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, mode)
        guard fd >= 0 else { throw posixError("create \(temp)") }
        var renamed = false
        defer {
            if !renamed { unlink(temp) }
        }
        do {
            defer { close(fd) }
            // The umask can only remove bits; fchmod makes the mode exactly what was asked for
            // (e.g. 0644 certificates under umask 077). It never widens a key beyond `mode`.
            guard fchmod(fd, mode) == 0 else { throw posixError("chmod \(temp)") }
            try writeAll(fd, bytes, path: temp)
            guard fsync(fd) == 0 else { throw posixError("fsync \(temp)") }
        }
        guard rename(temp, url.path) == 0 else { throw posixError("rename \(temp) to \(url.path)") }
        renamed = true
        let dirFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            _ = fsync(dirFD)
            close(dirFD)
        }
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { buffer in
                posixWrite(fd, buffer.baseAddress, buffer.count)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw posixError("write \(path)")
            }
            offset += n
        }
    }

    private static func randomSuffix() -> String {
        String(UInt64.random(in: 0...UInt64.max), radix: 36)
    }

    private static func posixError(_ what: String) -> IdentityError {
        IdentityError("\(what): \(String(cString: strerror(errno)))")
    }
}

/// `write(2)`, named apart from `AtomicFileWriter.write` which would otherwise shadow it.
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, buffer, count)
    #elseif canImport(Musl)
    return Musl.write(fd, buffer, count)
    #else
    return Darwin.write(fd, buffer, count)
    #endif
}
