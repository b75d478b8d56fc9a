@testable import AHLeader
import AHTestSupport
import Foundation
import Logging
import ServiceLifecycle
import XCTest

/// The leader service's socket side, in-process, with a request handler that answers from a
/// script (the engine is covered by the fleet tests; here the daemon is under test: framing,
/// concurrency, idle exit, stop, permissions).
final class LeaderDaemonTests: XCTestCase {
    /// Answers `run` by echoing the argv back as output after the given delay; `list` at once.
    struct ScriptedHandler: LeaderRequestHandler {
        let delay: Duration
        func handle(_ request: LeaderRequest, emit: @escaping @Sendable (LeaderEvent) async -> Void) async throws -> LeaderResult {
            switch request {
            case .run(let run):
                await emit(.output(host: "h", stream: .stdout, text: run.argv.joined(separator: " ")))
                try await Task.sleep(for: delay)
                if run.argv == ["fail"] { throw LeaderFailure.usage("scripted failure naming 'fail'") }
                return .run(RunReport(hosts: [], commands: nil, summary: .init(passed: [], failed: [], unreachable: [])))
            case .stop: return .stopped
            default: return .list(FollowersListReport(followers: []))
            }
        }
        func shutdown() async {}
    }

    func makeDaemon(idleExit: Duration = .seconds(60), delay: Duration = .milliseconds(500)) throws -> (LeaderDaemon, LeaderPaths, TemporaryDirectory) {
        let directory = try TemporaryDirectory(prefix: "ah-leader")
        let paths = LeaderPaths(stateDirectory: directory.url, fleetConfig: directory.file("fleet.toml").path, version: "test")
        var logger = Logger(label: "test")
        logger.logLevel = .error
        return (LeaderDaemon(paths: paths, handler: ScriptedHandler(delay: delay), idleExit: idleExit, logger: logger), paths, directory)
    }

    func testRequestsAreServedConcurrentlyAndStopEndsTheService() async throws {
        let (daemon, paths, directory) = try makeDaemon()
        _ = directory
        let service = Task { try await daemon.run() }
        let client = LeaderClient(paths: paths, autostart: nil)
        var up = false
        // The socket accepting connections is the observable (the service has no ready hook): poll it.
        for _ in 0..<100 where !up {
            up = await client.isRunning()
            if !up { try await Task.sleep(for: .milliseconds(20)) }
        }
        XCTAssertTrue(up)
        var info = stat()
        XCTAssertEqual(stat(paths.socket.path, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o600, "the socket is the user's alone")

        // Four requests that each take 0.5 s finish together, not one after another.
        let started = ContinuousClock.now
        let outputs = OutputBox()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<4 {
                group.addTask {
                    var request = RunRequest()
                    request.argv = ["job", "\(index)"]
                    _ = try await client.send(.run(request)) { event in
                        if case .output(_, _, let text) = event { outputs.add(text) }
                    }
                }
            }
            try await group.waitForAll()
        }
        XCTAssertLessThan(ContinuousClock.now - started, .milliseconds(1500))
        XCTAssertEqual(outputs.all.sorted(), ["job 0", "job 1", "job 2", "job 3"])

        // A handler failure reaches the client with its exit code and message.
        var failing = RunRequest()
        failing.argv = ["fail"]
        do {
            _ = try await client.send(.run(failing)) { _ in }
            XCTFail("expected a failure")
        } catch let failure as LeaderFailure {
            XCTAssertEqual(failure.exitCode, 2)
            XCTAssertTrue(failure.description.contains("'fail'"))
        }

        guard case .stopped = try await client.send(.stop, onEvent: { _ in }) else { return XCTFail("not stopped") }
        try await service.value
        XCTAssertFalse(FileManager.default.fileExists(atPath: paths.socket.path), "the socket is removed")
    }

    func testIdleServiceExitsAndASecondOneForTheSameSocketDoesNotStart() async throws {
        let (daemon, paths, directory) = try makeDaemon(idleExit: .seconds(1))
        _ = directory
        let service = Task { try await daemon.run() }
        let client = LeaderClient(paths: paths, autostart: nil)
        for _ in 0..<100 where !(await client.isRunning()) { try await Task.sleep(for: .milliseconds(20)) }
        let second = LeaderDaemon(paths: paths, handler: ScriptedHandler(delay: .zero), idleExit: .seconds(60), logger: Logger(label: "t"))
        do {
            try await second.run()
            XCTFail("a second service must not start")
        } catch is LeaderDaemon.AlreadyRunning {}
        let before = ContinuousClock.now
        try await service.value
        XCTAssertLessThan(ContinuousClock.now - before, .seconds(5), "idle exit after about a second")
        let stillRunning = await client.isRunning()
        XCTAssertFalse(stillRunning)
    }
}

final class OutputBox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ text: String) { lock.withLock { items.append(text) } }
    var all: [String] { lock.withLock { items } }
}
