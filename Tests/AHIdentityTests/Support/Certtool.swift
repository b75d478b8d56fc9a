import Foundation

/// Runs GnuTLS's `certtool` (Debian gnutls-bin): the transport loads our files with GnuTLS,
/// so GnuTLS accepting them is the check that matters, not our own parser agreeing with itself.
enum Certtool {
    static let path = "/usr/bin/certtool"

    struct Outcome {
        var status: Int32
        var output: String
    }

    static var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: path) }

    static func run(_ arguments: [String]) throws -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        // Read to EOF before waiting, or a full pipe would block certtool forever.
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Outcome(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }

    static func verify(leaf: String, ca: String) throws -> Outcome {
        try run(["--verify", "--verify-profile", "medium", "--load-ca-certificate", ca, "--infile", leaf])
    }
}
