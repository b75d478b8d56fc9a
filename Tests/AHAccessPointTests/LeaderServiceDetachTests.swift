import AHTestSupport
import Foundation
import XCTest

/// An auto-started leader service outlives the command that started it: it must not keep
/// any descriptor of its caller open, or a caller waiting for EOF hangs until the service's
/// idle exit.
final class LeaderServiceDetachTests: XCTestCase {
    func testAutoStartedServiceKeepsNoInheritedDescriptor() async throws {
        try Requirement.sshd()
        let fleet = try LeaderFixture()
        try await fleet.start(accessPointFollowers: [("s1", [:])])
        do { try await check(fleet) } catch {
            await fleet.stop()
            throw error
        }
        await fleet.stop()
    }

    private func check(_ fleet: LeaderFixture) async throws {
        // fd 3 of `ah` is the write end of the pipe `cat` reads: the pipeline ends only when
        // every holder of that end has closed it (the shell's own fds are not inherited by
        // the test's `ProcessRunner`, which closes all but stdio).
        let ah = try BuiltProducts.ah().path
        let script = "'\(ah)' agent followers session --json --fleet-config '\(fleet.configPath)' 3>&1 | cat"
        let started = Date()
        let result = try await ProcessRunner.run(URL(fileURLWithPath: "/bin/sh"), ["-c", script],
                                                 environment: ["XDG_STATE_HOME": fleet.stateHome, "AH_TOKEN_FILE": ""],
                                                 timeout: 60)
        XCTAssertEqual(result.exit, .exited(0), result.transcript)
        XCTAssertTrue(result.stdoutString.contains("\"id\""), result.stdoutString)
        XCTAssertLessThan(Date().timeIntervalSince(started), 30, "the pipeline waited for the service to close fd 3")
        // The service is still running (it was started, not run in-process).
        let again = try await fleet.followers(["session", "--json"])
        XCTAssertEqual(again.exit, .exited(0), again.transcript)
        XCTAssertEqual(again.stdoutString, result.stdoutString, "the second command reached the same service (same session)")
    }
}
