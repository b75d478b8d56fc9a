@testable import AHHTTPServer
import AHTestSupport
import Foundation
import XCTest

/// The listener under connection pressure: the configured cap, and running out of file
/// descriptors in a real `ah serve`.
final class ConnectionLimitTests: XCTestCase {
    private var server: HTTPAPIServer?

    override func tearDown() async throws {
        await server?.close()
    }

    /// A readyz over a fresh connection; nil if the server closed it without an answer.
    private func readyz(port: Int) -> String? {
        guard let raw = try? RawSocket(port: port), (try? raw.send("GET /api/v1/readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) != nil
        else { return nil }
        let text = raw.readUntilClose(timeout: 5).text
        return text.isEmpty ? nil : text
    }

    /// Retries readyz until it answers or `seconds` pass (each refused try returns at once).
    private func readyzEventually(port: Int, seconds: Double) async -> String? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let text = readyz(port: port) { return text }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    func testConnectionsOverTheCapAreClosedAndReadyzRecovers() async throws {
        var configuration = HTTPServerConfiguration()
        configuration.maxConnections = 3
        let started = try await HTTPAPIServer.start(host: "127.0.0.1", port: 0, responder: TestResponder(route: { _ in .problem(.notFound("none")) }),
                                                    configuration: configuration)
        server = started
        var held: [RawSocket] = []
        for _ in 0..<3 {
            let raw = try RawSocket(port: started.port)
            try raw.send("GET /api/v1/readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            XCTAssertEqual(raw.readResponse(timeout: 5)?.hasPrefix("HTTP/1.1 200"), true, "within the cap, served")
            held.append(raw)
        }
        let over = try RawSocket(port: started.port)
        try? over.send("GET /api/v1/readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        let refused = over.readUntilClose(timeout: 5)
        XCTAssertTrue(refused.closed, "over the cap the connection is closed")
        XCTAssertEqual(refused.text, "", "and nothing is answered")
        held.removeLast().close()
        let answer = await readyzEventually(port: started.port, seconds: 10)
        XCTAssertEqual(answer?.hasPrefix("HTTP/1.1 200"), true, "a slot freed: readyz answers again")
    }

    /// `ah serve` with a small RLIMIT_NOFILE, flooded with idle connections until `accept`
    /// fails with EMFILE: the process must not spin, and readyz answers once the flood ends.
    func testOutOfFileDescriptorsPausesAcceptingWithoutSpinning() async throws {
        let ah = try BuiltProducts.ah()
        let directory = try TemporaryDirectory(prefix: "ah-nofile")
        let (process, _) = try await ProcessRunner.startAndAwait(
            URL(fileURLWithPath: "/bin/sh"),
            ["-c", #"ulimit -n 64 && exec "$0" "$@""#, ah.path, "serve", "--data-dir", directory.path,
             "--quic-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"],
            linePrefix: "quic listening on ")
        defer { Task { _ = await process.terminate(grace: 5) } }
        let http = try await process.waitForLine(withPrefix: "http listening on ", timeout: 10)
        let port = try XCTUnwrap(Int(http.split(separator: ":").last ?? ""))
        XCTAssertEqual(readyz(port: port)?.hasPrefix("HTTP/1.1 200"), true)

        // More connections than descriptors: the kernel completes them (backlog), the server
        // cannot accept them all.
        var flood: [RawSocket] = []
        for _ in 0..<100 { flood.append(try RawSocket(port: port)) }
        try await process.waitForStderr(containing: "cannot accept connections", timeout: 10)

        let before = try cpuSeconds(of: process.processIdentifier)
        try await Task.sleep(for: .seconds(1))
        let used = try cpuSeconds(of: process.processIdentifier) - before
        XCTAssertLessThan(used, 0.3, "ah serve used \(used) s of CPU in 1 s while out of descriptors")

        for raw in flood { raw.close() }
        flood.removeAll()
        let answer = await readyzEventually(port: port, seconds: 10)
        XCTAssertEqual(answer?.hasPrefix("HTTP/1.1 200"), true, "readyz answers once descriptors are free: \(process.stderr.suffix(2000))")
    }

    /// User + system CPU time of a process so far, from /proc.
    private func cpuSeconds(of pid: Int32) throws -> Double {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        // Fields after the command name (which is in parentheses and may contain spaces).
        let fields = stat[stat.index(after: try XCTUnwrap(stat.lastIndex(of: ")")))...].split(separator: " ")
        // utime and stime are fields 14 and 15 of the whole line: 12th and 13th after ")".
        let ticks = try XCTUnwrap(Double(fields[11])) + XCTUnwrap(Double(fields[12]))
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
