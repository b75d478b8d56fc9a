#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// `DATA_DIR/jwt-signing-key.pem`: reading it, and creating it without ever exposing the key.
///
/// Creation writes a temp file opened `O_CREAT|O_EXCL` with mode 0600 in the same directory
/// (so the key is never readable by others, not even between write and chmod), fsyncs it, and
/// publishes it with `link(2)` rather than `rename(2)`: link refuses to replace an existing
/// file, so two `ah serve` processes starting at once cannot overwrite a key that one of them
/// has already used to mint tokens; the loser simply loads the winner's key.
enum SigningKeyFile {
    static let fileName = "jwt-signing-key.pem"

    static func path(in directory: String) -> String {
        URL(fileURLWithPath: directory).appendingPathComponent(fileName).path
    }

    /// The PEM text, or nil when there is no file. Refuses a file that group or others can
    /// read or write: a leaked signing key lets anyone mint admin tokens.
    static func read(at path: String) throws -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw UserTokenError.keyFile("cannot stat \(path): \(errnoText())")
        }
        guard info.st_mode & 0o077 == 0 else {
            let mode = String(info.st_mode & 0o777, radix: 8)
            throw UserTokenError.keyFile("\(path) has mode \(mode); it must not be accessible to group or others (chmod 600 \(path))")
        }
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw UserTokenError.keyFile("cannot read \(path): \(error.localizedDescription)")
        }
    }

    /// Creates the file with `pem` unless it exists. Returns false when another process created
    /// it first (the caller then reads theirs). The directory must exist: creating it (0700)
    /// is `ah serve`'s job, and a typo in --data-dir should not silently make a new one.
    static func createExclusively(_ pem: String, at path: String) throws -> Bool {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw UserTokenError.keyFile("data directory \(directory) does not exist")
        }
        let temp = directory + "/." + fileName + ".tmp-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        let fd = open(temp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw UserTokenError.keyFile("cannot create \(temp): \(errnoText())") }
        defer { unlink(temp) }  // after link (or failure) only the final name should remain
        do {
            defer { close(fd) }
            // The umask can only narrow 0600; fchmod pins it exactly.
            guard fchmod(fd, 0o600) == 0 else { throw UserTokenError.keyFile("cannot chmod \(temp): \(errnoText())") }
            try writeAll(fd, Array(pem.utf8), path: temp)
            guard fsync(fd) == 0 else { throw UserTokenError.keyFile("cannot fsync \(temp): \(errnoText())") }
        }
        guard link(temp, path) == 0 else {
            if errno == EEXIST { return false }
            throw UserTokenError.keyFile("cannot create \(path): \(errnoText())")
        }
        // Make the new name durable: a crash must not lose a key that already signed tokens.
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            _ = fsync(directoryFD)
            close(directoryFD)
        }
        return true
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { posixWrite(fd, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw UserTokenError.keyFile("cannot write \(path): \(errnoText())")
            }
            offset += written
        }
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// `write(2)`, named apart so that no `write` method in scope shadows it.
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, buffer, count)
    #elseif canImport(Musl)
    return Musl.write(fd, buffer, count)
    #else
    return Darwin.write(fd, buffer, count)
    #endif
}
