@testable import AHFollowerHelper
import AHTestSupport
import Crypto
import Foundation
import Logging
import XCTest

/// The real `ah agent follower-helper` driven by `HelperClient` over its stdin/stdout.
final class HelperProcessTests: XCTestCase {
    func testHandshakeExposesTheHelpersHello() async throws {
        let helper = try HelperProcess()
        let client = try await helper.connect()
        XCTAssertEqual(client.serverHello.version, 1)
        XCTAssertEqual(client.serverHello.os, "linux")
        XCTAssertEqual(client.serverHello.pid, helper.process.processIdentifier)
        XCTAssertFalse(client.serverHello.ahVersion.isEmpty)
        await client.close()
        let status = try await helper.waitForExit()
        XCTAssertEqual(status, 0, "a closed input is the normal end")
    }

    func testExitCodesSignalsAndStartedPid() async throws {
        let helper = try HelperProcess()
        let client = try await helper.connect()
        let zero = try await client.collect(RunRequest(job: 1, argv: ["sh", "-c", "exit 0"]))
        XCTAssertEqual(zero.exit?.exitCode, 0)
        XCTAssertNil(zero.exit?.signal)
        XCTAssertNotNil(zero.pid)
        let seven = try await client.collect(RunRequest(job: 2, argv: ["sh", "-c", "exit 7"]))
        XCTAssertEqual(seven.exit?.exitCode, 7)
        XCTAssertEqual(seven.exit?.timedOut, false)
        let segv = try await client.collect(RunRequest(job: 3, argv: ["sh", "-c", "kill -SEGV $$"]))
        XCTAssertEqual(segv.exit?.signal, "SIGSEGV")
        XCTAssertNil(segv.exit?.exitCode)
        let killed = try await client.collect(RunRequest(job: 4, argv: ["sh", "-c", "kill -KILL $$"]))
        XCTAssertEqual(killed.exit?.signal, "SIGKILL")
        XCTAssertEqual(killed.exit?.timedOut, false)
        await client.close()
    }

    func testStdoutAndStderrArriveSeparatedAndInOrder() async throws {
        let helper = try HelperProcess()
        let client = try await helper.connect()
        // 500 lines to each stream, interleaved as fast as the shell writes them.
        let script = "i=0; while [ $i -lt 500 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done"
        let record = try await client.collect(RunRequest(job: 1, argv: ["sh", "-c", script]))
        XCTAssertEqual(record.stdoutText, (0..<500).map { "out\($0)\n" }.joined())
        XCTAssertEqual(record.stderrText, (0..<500).map { "err\($0)\n" }.joined())
        XCTAssertEqual(record.exit?.exitCode, 0)
        // Across the two streams, order is arrival order: what was written half a second
        // earlier arrives first.
        let paced = try await client.collect(RunRequest(job: 2, argv: ["sh", "-c", "echo first; sleep 0.5; echo second >&2; sleep 0.5; echo third"]))
        XCTAssertEqual(paced.chunks.map { "\($0.stream):\($0.text)" }, ["o:first\n", "e:second\n", "o:third\n"])
        await client.close()
    }

    func testEnvironmentAndWorkingDirectory() async throws {
        let directory = try TemporaryDirectory(prefix: "ah-helper-cwd")
        let helper = try HelperProcess()
        let client = try await helper.connect()
        let record = try await client.collect(RunRequest(job: 1, argv: ["sh", "-c", "printf '%s|%s|' \"$GREETING\" \"$PWD\"; pwd -P"],
                                                         env: ["GREETING": "hi there $x 'q'"], cwd: directory.url.path))
        let realPath = URL(fileURLWithPath: directory.url.path).resolvingSymlinksInPath().path
        XCTAssertEqual(record.stdoutText, "hi there $x 'q'|\(directory.url.path)|\(realPath)\n")
        let missing = try await client.collect(RunRequest(job: 2, argv: ["true"], cwd: "/nonexistent/dir"))
        XCTAssertNil(missing.pid, "no started for a job that could not start")
        XCTAssertEqual(missing.exit?.error, "the working directory '/nonexistent/dir' is not a directory")
        let noProgram = try await client.collect(RunRequest(job: 3, argv: ["/nonexistent/program"]))
        XCTAssertTrue(noProgram.exit?.error?.contains("could not start '/nonexistent/program'") == true, "\(String(describing: noProgram.exit))")
        await client.close()
    }

    func testFiftyMiBOfOutputArrivesIntact() async throws {
        let directory = try TemporaryDirectory(prefix: "ah-helper-large")
        let file = directory.file("random.bin")
        var generator = SystemRandomNumberGenerator()
        var data = Data(count: 50 << 20)
        data.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for index in words.indices { words[index] = generator.next() }
        }
        try data.write(to: file)
        let expected = SHA256.hash(data: data)

        let helper = try HelperProcess()
        let client = try await helper.connect()
        var hasher = SHA256()
        var count = 0
        var stderr: [UInt8] = []
        var exit: JobExit?
        for try await event in client.run(RunRequest(job: 1, argv: ["cat", file.path])) {
            switch event {
            case .stdout(let bytes):
                hasher.update(data: bytes)
                count += bytes.count
                XCTAssertLessThanOrEqual(bytes.count, HelperWire.outputChunkSize)
            case .stderr(let bytes): stderr += bytes
            case .exited(let value): exit = value
            case .started: break
            }
        }
        XCTAssertEqual(count, data.count)
        XCTAssertEqual(hasher.finalize(), expected)
        XCTAssertEqual(stderr, [])
        XCTAssertEqual(exit?.exitCode, 0)
        await client.close()
    }

    func testTimeoutKillsTheWholeProcessTree() async throws {
        let helper = try HelperProcess()
        let client = try await helper.connect()
        // Two grandchildren in the background, their pids on stdout, then the shell waits.
        let script = "sleep 1000 & echo $!; sleep 1000 & echo $!; wait"
        let record = try await client.collect(RunRequest(job: 1, argv: ["sh", "-c", script], timeoutMillis: 500))
        XCTAssertEqual(record.exit?.timedOut, true)
        XCTAssertEqual(record.exit?.signal, "SIGTERM")
        let pids = record.stdoutText.split(separator: "\n").compactMap { Int32($0) }
        XCTAssertEqual(pids.count, 2, record.stdoutText)
        let alive = await waitUntilGone(pids + [record.pid ?? 0])
        XCTAssertEqual(alive, [], "processes of the timed-out job still running")
        await client.close()
    }

    func testTimeoutEscalatesToSIGKILLWhenTERMIsIgnored() async throws {
        let helper = try HelperProcess()
        let client = try await helper.connect()
        // `trap '' TERM` makes the shell and the sleep it starts ignore SIGTERM.
        let started = ContinuousClock.now
        let record = try await client.collect(RunRequest(job: 1, argv: ["sh", "-c", "trap '' TERM; sleep 1000; echo survived"],
                                                         timeoutMillis: 300))
        XCTAssertEqual(record.exit?.signal, "SIGKILL")
        XCTAssertEqual(record.exit?.timedOut, true)
        XCTAssertEqual(record.stdoutText, "")
        let elapsed = ContinuousClock.now - started
        XCTAssertGreaterThanOrEqual(elapsed, .milliseconds(2300), "SIGKILL only after the 2 s grace")
        XCTAssertLessThan(elapsed, .seconds(10))
        await client.close()
    }

    func testCancelEndsTheJobsGroup() async throws {
        let helper = try HelperProcess()
        let client = try await helper.connect()
        var pids: [Int32] = []
        var exit: JobExit?
        for try await event in client.run(RunRequest(job: 5, argv: ["sh", "-c", "sleep 1000 & echo $!; wait"])) {
            switch event {
            case .started(let pid): pids.append(pid)
            case .stdout(let bytes):
                pids += String(decoding: bytes, as: UTF8.self).split(separator: "\n").compactMap { Int32($0) }
                client.cancel(job: 5)
            case .stderr: break
            case .exited(let value): exit = value
            }
        }
        XCTAssertEqual(exit?.cancelled, true)
        XCTAssertEqual(exit?.timedOut, false)
        XCTAssertEqual(exit?.signal, "SIGTERM")
        XCTAssertEqual(pids.count, 2)
        let alive = await waitUntilGone(pids)
        XCTAssertEqual(alive, [])
        await client.close()
    }

    func testClosingTheHelpersInputEndsRunningJobsAndTheHelper() async throws {
        let helper = try HelperProcess()
        let client = try await helper.connect()
        let (pidsReady, pidsContinuation) = AsyncStream<[Int32]>.makeStream()
        let job = Task {
            try await client.collect(RunRequest(job: 1, argv: ["sh", "-c", "echo $$; sleep 1000 & echo $!; wait"])) { text in
                let pids = text.split(separator: "\n").compactMap { Int32($0) }
                if pids.count == 2 { pidsContinuation.yield(pids) }
            }
        }
        var iterator = pidsReady.makeAsyncIterator()
        let firstPids = await iterator.next()
        let pids = try XCTUnwrap(firstPids)
        // What an SSH channel's EOF looks like to the helper: its stdin closes.
        await helper.transport.closeWrite()
        let status = try await helper.waitForExit()
        XCTAssertEqual(status, 0)
        let alive = await waitUntilGone(pids)
        XCTAssertEqual(alive, [], "jobs outlived the helper")
        // The helper reported the job's end before it exited (its output was still open).
        let record = try await job.value
        XCTAssertEqual(record.exit?.cancelled, true)
        await client.close()
    }

    func testLostConnectionFailsOpenJobsInsteadOfReportingSuccess() async throws {
        let helper = try HelperProcess()
        let client = try await helper.connect()
        let stream = client.run(RunRequest(job: 1, argv: ["sh", "-c", "echo ready; exec sleep 1000"]))
        var pid: Int32?
        do {
            for try await event in stream {
                if case .started(let value) = event { pid = value }
                if case .stdout = event { kill(helper.process.processIdentifier, SIGKILL) }
            }
            XCTFail("the job's stream ended without an error")
        } catch let error as FollowerHelperError {
            guard case .jobLost(let job, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(job, 1)
            XCTAssertTrue(error.description.contains("before job 1 reported its exit"), error.description)
        }
        // A SIGKILLed helper cannot clean up; do it here.
        if let pid { kill(-pid, SIGKILL) }
        XCTAssertFalse(client.isOpen)
        do {
            _ = try await client.probe(timeout: .seconds(1))
            XCTFail("a probe on a lost connection succeeded")
        } catch {}
    }

    func testProbeRoundTripAndManyConcurrentJobs() async throws {
        let helper = try HelperProcess()
        let client = try await helper.connect()
        let rtt = try await client.probe(timeout: .seconds(5))
        XCTAssertLessThan(rtt, .seconds(1))
        let records = try await withThrowingTaskGroup(of: (Int, JobRecord).self) { group in
            for index in 1...40 {
                group.addTask {
                    (index, try await client.collect(RunRequest(job: client.makeJobID(), argv: ["sh", "-c", "echo job\(index); exit \(index % 5)"])))
                }
            }
            group.addTask { (0, JobRecord(exit: JobExit(durationMs: Int(try await client.probe(timeout: .seconds(5)).components.seconds)))) }
            return try await group.reduce(into: [Int: JobRecord]()) { $0[$1.0] = $1.1 }
        }
        for index in 1...40 {
            XCTAssertEqual(records[index]?.stdoutText, "job\(index)\n")
            XCTAssertEqual(records[index]?.exit?.exitCode, Int32(index % 5))
        }
        await client.close()
    }

    func testDuplicateJobIdsAreRefused() async throws {
        let helper = try HelperProcess()
        let client = try await helper.connect()
        let first = client.run(RunRequest(job: 9, argv: ["sleep", "1000"]))
        do {
            for try await _ in client.run(RunRequest(job: 9, argv: ["true"])) {}
            XCTFail("a second job 9 was accepted")
        } catch {
            XCTAssertEqual(error as? FollowerHelperError, .duplicateJob(9))
        }
        client.cancel(job: 9)
        var exit: JobExit?
        for try await event in first { if case .exited(let value) = event { exit = value } }
        XCTAssertEqual(exit?.cancelled, true)
        // The helper refuses what the client would let through: job id 0.
        do {
            for try await _ in client.run(RunRequest(job: 0, argv: ["true"])) {}
            XCTFail("job 0 was accepted")
        } catch {
            XCTAssertEqual(error as? FollowerHelperError, .jobRefused(job: 0, code: "bad-request", message: "job id 0 is reserved"))
        }
        await client.close()
    }

    func testIncompatibleLeaderIsRefusedNamingBothVersions() async throws {
        let helper = try HelperProcess()
        do {
            _ = try await helper.connect(ahVersion: "9.9.9", helloVersion: 2)
            XCTFail("a version 2 leader was accepted")
        } catch let error as FollowerHelperError {
            guard case .refused(let code, let message) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(code, "version")
            XCTAssertTrue(message.contains("version 2") && message.contains("version 1") && message.contains("ah 9.9.9"), message)
        }
        let status = try await helper.waitForExit()
        XCTAssertEqual(status, 1, "a refused leader ends the helper with status 1")
    }

    func testIncompatibleHelperIsRefusedNamingBothVersions() async throws {
        // A scripted helper of protocol version 3.
        let (inbound, feed) = AsyncStream<[UInt8]>.makeStream()
        let write: @Sendable ([UInt8]) async throws -> Void = { _ in
            feed.yield(HelperWire.encode(.hello(HelperHello(version: 3, ahVersion: "7.0.0", os: "linux", pid: 1))))
        }
        do {
            _ = try await HelperClient.connect(inbound: inbound, write: write, ahVersion: "0.4.0", timeout: .seconds(5))
            XCTFail("a version 3 helper was accepted")
        } catch let error as FollowerHelperError {
            XCTAssertEqual(error, .incompatibleVersion(leader: 1, leaderAH: "0.4.0", helper: 3, helperAH: "7.0.0"))
            XCTAssertTrue(error.description.contains("version 3") && error.description.contains("version 1"), error.description)
        }
    }

    func testHandshakeDeadline() async throws {
        let (inbound, _) = AsyncStream<[UInt8]>.makeStream()
        do {
            _ = try await HelperClient.connect(inbound: inbound, write: { _ in }, ahVersion: "0.4.0", timeout: .milliseconds(200))
            XCTFail("connected to a silent peer")
        } catch {
            XCTAssertEqual(error as? FollowerHelperError, .handshakeTimedOut(.milliseconds(200)))
        }
    }
}
