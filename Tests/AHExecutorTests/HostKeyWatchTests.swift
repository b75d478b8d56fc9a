import AHControl
@testable import AHExecutor
import Logging
import NIOConcurrencyHelpers
import XCTest

/// Host keys re-read while connected: a change is reported, an unchanged read is not, and a
/// tunnel reaching an sshd whose keys were unknown triggers a read at once (no waiting for
/// the interval, which the tests set to an hour).
final class HostKeyWatchTests: XCTestCase {
    static let ed25519 = SSHHostKey(algorithm: "ssh-ed25519", publicKey: "AAAAC3NzaC1lZDI1NTE5AAAAIHx", fingerprint: "SHA256:a")
    static let rsa = SSHHostKey(algorithm: "ssh-rsa", publicKey: "AAAAB3NzaC1yc2EAAAADAQAB", fingerprint: "SHA256:b")

    /// What the "sshd" answers, changed by the test; counts reads.
    final class FakeSSHD: Sendable {
        let state = NIOLockedValueBox((keys: [SSHHostKey](), reads: 0))
        var reads: Int { state.withLockedValue { $0.reads } }
        func set(_ keys: [SSHHostKey]) { state.withLockedValue { $0.keys = keys } }
        func read() -> (keys: [SSHHostKey], error: String?) {
            state.withLockedValue {
                $0.reads += 1
                return ($0.keys, $0.keys.isEmpty ? "connection refused" : nil)
            }
        }
    }

    private func makeWatch(_ sshd: FakeSSHD) -> HostKeyWatch {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return HostKeyWatch(read: { sshd.read() }, logger: logger)
    }

    func testRefreshReportsOnlyChanges() async {
        let sshd = FakeSSHD()
        let watch = makeWatch(sshd)
        let first = await watch.refresh()
        XCTAssertNil(first, "nothing before, nothing now")
        sshd.set([Self.ed25519])
        let second = await watch.refresh()
        XCTAssertEqual(second, [Self.ed25519])
        XCTAssertEqual(watch.current, [Self.ed25519])
        let third = await watch.refresh()
        XCTAssertNil(third, "unchanged")
        sshd.set([Self.ed25519, Self.rsa])
        let fourth = await watch.refresh()
        XCTAssertEqual(fourth, [Self.ed25519, Self.rsa], "re-keyed")
    }

    func testTunnelReachingAnUnknownSSHDReadsAtOnceAndReports() async throws {
        let sshd = FakeSSHD()
        let watch = makeWatch(sshd)
        await watch.refresh()
        let (reports, report) = AsyncStream.makeStream(of: [SSHHostKey].self)
        let watching = Task { await watch.watch(every: .seconds(3600)) { report.yield($0) } }
        defer { watching.cancel() }
        // sshd comes up after the agent; the first tunnel to it asks for the keys.
        sshd.set([Self.ed25519])
        var iterator = reports.makeAsyncIterator()
        // The watcher may not have registered yet: nudge until it has (each nudge is a no-op
        // until then), then expect exactly the new keys.
        let nudger = Task {
            while !Task.isCancelled {
                watch.sshReachable()
                await Task.yield()
            }
        }
        let reported = await iterator.next()
        nudger.cancel()
        await nudger.value
        XCTAssertEqual(reported, [Self.ed25519])
        // Known keys now: a tunnel no longer triggers a read.
        let reads = sshd.reads
        watch.sshReachable()
        await Task.yield()
        XCTAssertEqual(sshd.reads, reads)
    }

    func testIntervalReadsPickUpAReKey() async {
        let sshd = FakeSSHD()
        sshd.set([Self.ed25519])
        let watch = makeWatch(sshd)
        await watch.refresh()
        let (reports, report) = AsyncStream.makeStream(of: [SSHHostKey].self)
        let watching = Task { await watch.watch(every: .milliseconds(10)) { report.yield($0) } }
        defer { watching.cancel() }
        sshd.set([Self.rsa])
        var iterator = reports.makeAsyncIterator()
        let reported = await iterator.next()
        XCTAssertEqual(reported, [Self.rsa])
    }

    func testWatchEndsWhenCancelled() async {
        let watch = makeWatch(FakeSSHD())
        let watching = Task { await watch.watch(every: .seconds(3600)) { _ in } }
        watching.cancel()
        await watching.value
    }
}
