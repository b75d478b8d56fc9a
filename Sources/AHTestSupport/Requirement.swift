import Foundation
import XCTest

/// What a test needs from the machine (root, sshd, certtool, a Python module). Locally a
/// missing requirement skips the test with the reason; under CI (`CI` set, as .ci/run runs)
/// it fails it, because .ci/run installs everything and a silently skipped suite would
/// hide a broken install step.
public enum Requirement {
    /// Returns when `condition` holds; otherwise skips (locally) or fails (under CI) the test.
    public static func check(_ condition: Bool, _ reason: String, file: StaticString = #filePath, line: UInt = #line) throws {
        guard !condition else { return }
        if isRunningUnderCI { throw Missing(description: "CI is set but \(reason)") }
        throw XCTSkip(reason, file: file, line: line)
    }

    /// Real sshd and root (privilege separation), as .ci/run provides.
    public static func sshd(file: StaticString = #filePath, line: UInt = #line) throws {
        try check(SSHDaemon.isAvailable, "needs root and openssh-server (installed by .ci/run)", file: file, line: line)
    }

    public struct Missing: Error, CustomStringConvertible {
        public let description: String
    }
}
