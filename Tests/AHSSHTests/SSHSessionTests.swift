import AHSSH
import AHTestSupport
import Foundation
import NIOCore
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// AHSSH against a real OpenSSH sshd on 127.0.0.1 (root needed: sshd's privilege separation).
final class SSHSessionTests: XCTestCase {
    func testExecOverASocketWeDialledReturnsOutputAndExitZero() async throws {
        try Requirement.sshd()
        let fixture = try await SSHFixture.start()
        let session = try await fixture.connect()
        XCTAssertTrue(session.isAlive)
        XCTAssertEqual(session.hostKeySHA256, fixture.fingerprint)
        let local = try await ProcessRunner.run(URL(fileURLWithPath: "/bin/uname"), ["-a"])
        let result = try await session.run("uname -a")
        XCTAssertEqual(result.stdout, local.stdoutString)
        XCTAssertEqual(result.stderr, "")
        XCTAssertEqual(result.exit, .exited(0))
        await session.close()
        await fixture.stop()
    }

    func testExitCodeAndStderrAreSeparate() async throws {
        try Requirement.sshd()
        let fixture = try await SSHFixture.start()
        let session = try await fixture.connect()
        let channel = try await session.exec("echo out; echo err >&2; exit 7")
        let (stdout, stderr) = try await channel.collectOutput(limit: 1024)
        XCTAssertEqual(String(buffer: stdout), "out\n")
        XCTAssertEqual(String(buffer: stderr), "err\n")
        let exit = try await channel.waitForExit()
        XCTAssertEqual(exit, .exited(7))
        XCTAssertEqual(channel.exitStatus, 7)
        XCTAssertNil(channel.exitSignal)

        let killed = try await session.run("kill -TERM $$")
        XCTAssertEqual(killed.exit, .signalled("TERM"))
        await session.close()
        await fixture.stop()
    }

    func testSixteenConcurrentChannelsOnOneSession() async throws {
        try Requirement.sshd()
        let fixture = try await SSHFixture.start()
        let session = try await fixture.connect()
        let outputs = try await withThrowingTaskGroup(of: (Int, String, SSHExit).self) { group in
            for index in 0..<16 {
                group.addTask {
                    let result = try await session.run("sleep 0.2; echo channel-\(index); exit \(index)")
                    return (index, result.stdout, result.exit)
                }
            }
            var collected: [Int: (String, SSHExit)] = [:]
            for try await (index, stdout, exit) in group { collected[index] = (stdout, exit) }
            return collected
        }
        XCTAssertEqual(outputs.count, 16)
        for index in 0..<16 {
            XCTAssertEqual(outputs[index]?.0, "channel-\(index)\n")
            XCTAssertEqual(outputs[index]?.1, .exited(Int32(index)))
        }
        XCTAssertTrue(session.isAlive)
        await session.close()
        await fixture.stop()
    }

    /// sshd (MaxSessions 3) refuses opens beyond three channels ("no more sessions"); the
    /// session queues them and opens each when one of its channels is freed. Everything
    /// runs under a deadline: this test once hung inside the full suite (a lost wake-up of
    /// the session thread, see SessionCore.runTasks), and a hang must fail, not stall CI.
    func testChannelsBeyondMaxSessionsWaitInsteadOfFailing() async throws {
        try Requirement.sshd()
        let fixture = try await SSHFixture.start(maxSessions: 3)
        let session = try await fixture.connect()
        let (results, elapsed) = try await withDeadline(60, "8 commands on a session that sshd limits to 3 channels") {
            let started = ContinuousClock.now
            let results = try await withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<8 {
                    group.addTask { try await session.run("sleep 0.4; echo \(index)").stdout }
                }
                var all: [String] = []
                for try await stdout in group { all.append(stdout) }
                return all
            }
            return (results, ContinuousClock.now - started)
        }
        XCTAssertEqual(results.sorted(), (0..<8).map { "\($0)\n" }.sorted())
        // Three at a time: at least three rounds of 0.4 s; and sshd did refuse opens.
        XCTAssertGreaterThanOrEqual(elapsed, .milliseconds(1_200))
        XCTAssertTrue(fixture.daemon.process.stderr.contains("no more sessions"), fixture.daemon.process.stderr)
        XCTAssertTrue(session.isAlive)
        try await withDeadline(10, "closing the session") { await session.close() }
        await fixture.stop()
    }

    /// Requests that cause no SSH traffic (closing channels that already ended) reach the
    /// session thread only through its wake-up pipe: thousands of them from four tasks at
    /// once, on a session with no keepalive, must all be answered. Before the fix in
    /// SessionCore.runTasks one post in a few thousand was lost and its caller hung.
    func testRequestsWithoutTrafficAlwaysWakeTheSessionThread() async throws {
        try Requirement.sshd()
        let fixture = try await SSHFixture.start()
        let session = try await fixture.connect()
        let channel = try await session.exec("true")
        _ = try await channel.collectOutput(limit: 1024)
        let exit = try await channel.waitForExit()
        XCTAssertEqual(exit, .exited(0))
        let answered = try await withDeadline(60, "20,000 requests posted to an idle session") {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        for _ in 0..<5_000 { await channel.close() }
                        return 5_000
                    }
                }
                return try await group.reduce(0, +)
            }
        }
        XCTAssertEqual(answered, 20_000)
        let after = try await session.run("echo still")
        XCTAssertEqual(after.stdout, "still\n")
        try await withDeadline(10, "closing the session") { await session.close() }
        await fixture.stop()
    }

    func testStdinIsEchoedIntactThroughCat() async throws {
        try Requirement.sshd()
        let fixture = try await SSHFixture.start()
        let session = try await fixture.connect()
        let size = 8 << 20
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var payload = [UInt8](repeating: 0, count: size)
        for index in 0..<size {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            payload[index] = UInt8(truncatingIfNeeded: state)
        }
        let channel = try await session.exec("cat")
        let input = payload
        let writer = Task {
            var offset = 0
            while offset < input.count {
                let end = min(offset + 100_000, input.count)
                try await channel.write(Array(input[offset..<end]))
                offset = end
            }
            try await channel.sendEOF()
        }
        let (stdout, stderr) = try await channel.collectOutput(limit: size + 1)
        try await writer.value
        XCTAssertEqual(stdout.readableBytes, size)
        XCTAssertTrue(Array(stdout.readableBytesView) == payload, "the bytes came back changed")
        XCTAssertEqual(stderr.readableBytes, 0)
        let exit = try await channel.waitForExit()
        XCTAssertEqual(exit, .exited(0))
        await session.close()
        await fixture.stop()
    }

    func testHostKeyMismatchIsRefusedBeforeAuthentication() async throws {
        try Requirement.sshd()
        let fixture = try await SSHFixture.start()
        let wrong = "SHA256:" + String(repeating: "A", count: 43)
        do {
            _ = try await fixture.connect(expected: [wrong])
            XCTFail("connected to a server with an unexpected host key")
        } catch let error as SSHError {
            XCTAssertEqual(error.kind, .hostKey)
            XCTAssertTrue(error.description.contains(wrong), error.description)
            XCTAssertTrue(error.description.contains(fixture.fingerprint), error.description)
        }
        do {
            _ = try await fixture.connect(expected: [])
            XCTFail("connected without any expected host key")
        } catch let error as SSHError {
            XCTAssertEqual(error.kind, .hostKey)
            XCTAssertTrue(error.description.contains(fixture.fingerprint), error.description)
        }
        // Control: a good connection does log the acceptance, so its absence above means
        // the refused attempts never authenticated.
        let session = try await fixture.connect()
        try await fixture.daemon.process.waitForStderr(containing: "Accepted publickey", timeout: 10)
        XCTAssertEqual(fixture.daemon.process.stderr.components(separatedBy: "Accepted publickey").count - 1, 1,
                       fixture.daemon.process.stderr)
        await session.close()
        await fixture.stop()
    }

    func testWrongClientKeyIsRefusedWithAClearError() async throws {
        try Requirement.sshd()
        let fixture = try await SSHFixture.start()
        let otherKey = fixture.directory.file("other_key").path
        let keygen = try await ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/ssh-keygen"), ["-q", "-t", "ecdsa", "-N", "", "-f", otherKey])
        XCTAssertTrue(keygen.exit.succeeded, keygen.transcript)
        do {
            _ = try await fixture.connect(auth: .keyFile(otherKey))
            XCTFail("logged in with a key that is not authorized")
        } catch let error as SSHError {
            XCTAssertEqual(error.kind, .authentication)
            XCTAssertTrue(error.description.contains(otherKey), error.description)
            XCTAssertTrue(error.description.contains(fixture.user), error.description)
        }
        do {
            _ = try await fixture.connect(auth: .keyFile(fixture.directory.file("missing_key").path))
            XCTFail("logged in with a key file that does not exist")
        } catch let error as SSHError {
            XCTAssertEqual(error.kind, .authentication)
            XCTAssertTrue(error.description.contains("missing_key"), error.description)
        }
        await fixture.stop()
    }

    func testKilledServerFailsOpenChannelsWithoutHanging() async throws {
        try Requirement.sshd()
        let fixture = try await SSHFixture.start()
        let session = try await fixture.connect()
        let channel = try await session.exec("echo started; sleep 60")
        let sshd = fixture.daemon.process.processIdentifier
        let outcome: String = try await withDeadline(15, "the output after sshd was killed") {
            var iterator = channel.output.makeAsyncIterator()
            let first = try await iterator.next()
            guard first.map({ String(buffer: $0.bytes) }) == "started\n" else { return "unexpected first output" }
            guard SSHFixture.signalDescendants(of: sshd, signal: SIGKILL) > 0 else { return "no sshd session process" }
            do {
                while try await iterator.next() != nil {}
                return "ended without error"
            } catch let error as SSHError {
                return "\(error.kind)"
            }
        }
        XCTAssertEqual(outcome, "sessionDead")
        do {
            _ = try await channel.waitForExit()
            XCTFail("an exit was reported for a command whose session died")
        } catch let error as SSHError {
            XCTAssertEqual(error.kind, .sessionDead)
        }
        XCTAssertFalse(session.isAlive)
        do {
            _ = try await session.exec("true")
            XCTFail("exec succeeded on a dead session")
        } catch is SSHError {}
        await fixture.stop()
    }

    func testKeepaliveDetectsAServerThatStoppedAnswering() async throws {
        try Requirement.sshd()
        let fixture = try await SSHFixture.start()
        let session = try await fixture.connect(keepalive: .seconds(1))
        let channel = try await session.exec("sleep 60")
        // Alive and idle for longer than the dead-after time: keepalives are answered. The
        // passing time is what is under test (libssh2's keepalive takes no injected clock).
        try await Task.sleep(for: .seconds(5))
        XCTAssertTrue(session.isAlive)
        XCTAssertGreaterThan(fixture.killSessionProcesses(signal: SIGSTOP), 0)
        let started = ContinuousClock.now
        let kind: String = try await withDeadline(20, "keepalive detection") {
            do {
                _ = try await channel.waitForExit()
                return "exit"
            } catch let error as SSHError {
                return "\(error.kind)"
            }
        }
        XCTAssertEqual(kind, "sessionDead")
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(10))
        XCTAssertFalse(session.isAlive)
        await fixture.stop()
    }

    func testCloseDisconnectsCleanly() async throws {
        try Requirement.sshd()
        let fixture = try await SSHFixture.start()
        let session = try await fixture.connect()
        let channel = try await session.exec("sleep 60")
        await session.close()
        XCTAssertFalse(session.isAlive)
        try await fixture.daemon.process.waitForStderr(containing: "Received disconnect from 127.0.0.1", timeout: 10)
        do {
            _ = try await channel.waitForExit()
            XCTFail("a channel survived closing its session")
        } catch let error as SSHError {
            XCTAssertEqual(error.kind, .closed)
        }
        do {
            _ = try await session.exec("true")
            XCTFail("exec succeeded after close")
        } catch let error as SSHError {
            XCTAssertEqual(error.kind, .closed)
        }
        await session.close()
        await fixture.stop()
    }

    func testClosingAChannelEarlyReturnsPromptlyAndFreesItsSlot() async throws {
        try Requirement.sshd()
        let fixture = try await SSHFixture.start(maxSessions: 1)
        let session = try await fixture.connect()
        // `yes` writes until sshd, on our CLOSE, shuts its stdout: SIGPIPE ends it, and sshd
        // frees the session slot the next channel needs.
        let noisy = try await session.exec("yes")
        try await withDeadline(10, "closing a channel whose command keeps writing") { await noisy.close() }
        XCTAssertNotNil(noisy.exitReport)
        let next = try await withDeadline(10, "a channel after closing the only other one") {
            try await session.run("echo next")
        }
        XCTAssertEqual(next.stdout, "next\n")
        // A command that neither reads nor writes outlives its channel on sshd's side, but
        // close() still returns once EOF and CLOSE are sent.
        let quiet = try await session.exec("sleep 20")
        try await withDeadline(10, "closing a channel whose command is silent") { await quiet.close() }
        XCTAssertEqual(quiet.exitReport, .unknown)
        await session.close()
        await fixture.stop()
    }
}
