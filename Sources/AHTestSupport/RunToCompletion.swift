// `ProcessRunner.run` on swift-subprocess: a process that runs to completion within one
// scope, which is exactly the shape of Subprocess's `run` (the `Execution` is valid only
// inside its body). Output is read while the process runs, into a box the timeout path can
// still read for the transcript; the timeout signals the process from inside the body.

import Foundation
import NIOConcurrencyHelpers
import Subprocess

#if canImport(System)
import System
#else
import SystemPackage
#endif

enum RunToCompletion {
    /// What the child wrote so far and whether the deadline fired.
    private final class Collected: Sendable {
        private struct State {
            var stdout = Data()
            var stderr = Data()
            var timedOut = false
        }

        private let state = NIOLockedValueBox(State())

        func append(_ buffer: SubprocessOutputSequence.Buffer, toStdout: Bool) {
            let bytes = buffer.withUnsafeBytes { Data($0) }
            state.withLockedValue {
                if toStdout { $0.stdout.append(bytes) } else { $0.stderr.append(bytes) }
            }
        }

        func markTimedOut() { state.withLockedValue { $0.timedOut = true } }
        var output: (stdout: Data, stderr: Data, timedOut: Bool) {
            state.withLockedValue { ($0.stdout, $0.stderr, $0.timedOut) }
        }
    }

    /// Which of the body's tasks finished.
    private enum Finished: Sendable {
        case reader
        case deadline
    }

    static func run(
        _ executable: URL,
        _ arguments: [String],
        environment: [String: String],
        currentDirectory: URL?,
        stdin: Data?,
        timeout: Double
    ) async throws -> ProcessResult {
        guard FileManager.default.isExecutableFile(atPath: executable.path) else {
            throw ProcessError.executableNotFound(executable.path)
        }
        let command = ChildProcess.commandLine(executable: executable, arguments: arguments)
        var overrides: [Environment.Key: String?] = [:]
        for (key, value) in environment { overrides[Environment.Key(stringLiteral: key)] = value }
        let configuration = Configuration(
            executable: .path(FilePath(executable.path)),
            arguments: Arguments(arguments),
            environment: .inherit.updating(overrides),
            workingDirectory: currentDirectory.map { FilePath($0.path) })
        let collected = Collected()
        let status: TerminationStatus
        do {
            if let stdin {
                // A child that exits without reading its stdin must cost an error, not a
                // SIGPIPE that ends the whole test process.
                ChildProcess.ignoreSIGPIPE
                status = try await collect(configuration, input: .data(stdin), into: collected, timeout: timeout)
            } else {
                status = try await collect(configuration, input: .none, into: collected, timeout: timeout)
            }
        } catch let error as SubprocessError {
            throw ProcessError.launchFailed(command: command, reason: "\(error)")
        }
        let exit: ProcessExit
        switch status {
        case .exited(let code): exit = .exited(code)
        case .signaled(let signal): exit = .signalled(signal)
        }
        let (stdout, stderr, timedOut) = collected.output
        if timedOut {
            throw ProcessError.timedOut(
                what: "the process to exit", seconds: timeout,
                transcript: ChildProcess.formatTranscript(command: command, exit: exit, stdout: stdout, stderr: stderr))
        }
        return ProcessResult(command: command, exit: exit, stdout: stdout, stderr: stderr)
    }

    /// Runs the process, reading both streams to their end; after `timeout` seconds it gets
    /// SIGTERM and, 2 s later, SIGKILL (the streams then end and the body returns).
    private static func collect<Input: InputProtocol>(
        _ configuration: Configuration,
        input: Input,
        into collected: Collected,
        timeout: Double
    ) async throws -> TerminationStatus {
        let result = try await Subprocess.run(configuration, input: input, output: .sequence, error: .sequence) { execution in
            try await withThrowingTaskGroup(of: Finished.self) { group in
                group.addTask {
                    for try await buffer in execution.standardOutput { collected.append(buffer, toStdout: true) }
                    return .reader
                }
                group.addTask {
                    for try await buffer in execution.standardError { collected.append(buffer, toStdout: false) }
                    return .reader
                }
                group.addTask {
                    try await Task.sleep(nanoseconds: UInt64(timeout * 1e9))
                    collected.markTimedOut()
                    try? execution.send(signal: .terminate)
                    try await Task.sleep(nanoseconds: 2_000_000_000)
                    try? execution.send(signal: .kill)
                    return .deadline
                }
                // Both streams at their end (the child exited, or whatever still held them is
                // cut off by Subprocess once it did): stop the deadline.
                var readersDone = 0
                while let finished = try await group.next() {
                    if case .reader = finished { readersDone += 1 }
                    if readersDone == 2 { break }
                }
                group.cancelAll()
            }
        }
        return result.terminationStatus
    }
}
