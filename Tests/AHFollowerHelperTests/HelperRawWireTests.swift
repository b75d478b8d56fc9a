@testable import AHFollowerHelper
import AHTestSupport
import Foundation
import XCTest

/// The helper's answers to bytes a `HelperClient` would never send: raw frames written to
/// its stdin, its frames read back from its stdout.
final class HelperRawWireTests: XCTestCase {
    /// Reads frames from the helper until `until` says stop (or its output ends).
    private final class FrameReader {
        private var iterator: FileDescriptorReader.Iterator
        private var decoder = HelperFrameDecoder()
        private(set) var ended = false

        init(_ transport: FileDescriptorTransport) {
            iterator = transport.inbound.makeAsyncIterator()
        }

        /// The next frame, or nil at the end of the helper's output.
        func next() async throws -> HelperRawFrame? {
            while true {
                if let frame = try decoder.next() { return frame }
                guard let chunk = try await iterator.next() else {
                    ended = true
                    return nil
                }
                decoder.append(chunk)
            }
        }

        func nextMessage() async throws -> HelperMessage? {
            guard let frame = try await next() else { return nil }
            XCTAssertEqual(frame.kind, HelperFrameKind.message.rawValue)
            return try HelperMessage.decode(frame.payload)
        }
    }

    private func greet(_ helper: HelperProcess, _ reader: FrameReader) async throws {
        try await helper.transport.write(HelperWire.encode(.hello(HelperHello(ahVersion: "raw"))))
        guard case .hello(let hello)? = try await reader.nextMessage() else { return XCTFail("no hello") }
        XCTAssertEqual(hello.version, HelperWire.protocolVersion)
    }

    func testUnknownTypesAndKindsAreAnsweredAndTheConnectionStaysUsable() async throws {
        let helper = try HelperProcess()
        let reader = FrameReader(helper.transport)
        try await greet(helper, reader)

        try await helper.transport.write(HelperWire.encode(kind: 0, job: 0, payload: Array(#"{"type":"future-begin","root":"abc"}"#.utf8)))
        guard case .error(let unknownType)? = try await reader.nextMessage() else { return XCTFail("no error for an unknown type") }
        XCTAssertEqual(unknownType.code, "unknown-type")
        XCTAssertTrue(unknownType.message.contains("future-begin"), unknownType.message)

        try await helper.transport.write(HelperWire.encode(kind: 9, job: 4, payload: [1, 2, 3]))
        guard case .error(let unknownKind)? = try await reader.nextMessage() else { return XCTFail("no error for an unknown kind") }
        XCTAssertEqual(unknownKind.code, "unknown-frame-kind")

        try await helper.transport.write(HelperWire.encode(kind: 0, job: 0, payload: Array(#"{"type":"run","argv":"sh"}"#.utf8)))
        guard case .error(let bad)? = try await reader.nextMessage() else { return XCTFail("no error for a bad run") }
        XCTAssertEqual(bad.code, "bad-message")

        try await helper.transport.write(HelperWire.encode(.probe(id: 77)))
        let reply = try await reader.nextMessage()
        XCTAssertEqual(reply, .probeReply(id: 77), "still serving after the errors")
        await helper.transport.closeWrite()
        let status = try await helper.waitForExit()
        XCTAssertEqual(status, 0)
    }

    func testOversizedFrameIsRefusedAndTheHelperExits() async throws {
        let helper = try HelperProcess()
        let reader = FrameReader(helper.transport)
        try await greet(helper, reader)
        // Only the prefix: the helper must refuse before any payload arrives.
        try await helper.transport.write([0x7f, 0xff, 0xff, 0xff])
        guard case .error(let error)? = try await reader.nextMessage() else { return XCTFail("no error for an oversized frame") }
        XCTAssertEqual(error.code, "frame-too-large")
        XCTAssertTrue(error.message.contains("2147483647") && error.message.contains("1048576"), error.message)
        let after = try await reader.next()
        XCTAssertNil(after, "the helper closes its output after the refusal")
        let status = try await helper.waitForExit()
        XCTAssertEqual(status, 1)
    }

    func testTheFirstMessageMustBeAHello() async throws {
        let helper = try HelperProcess()
        let reader = FrameReader(helper.transport)
        try await helper.transport.write(HelperWire.encode(.run(RunRequest(job: 1, argv: ["true"]))))
        guard case .error(let error)? = try await reader.nextMessage() else { return XCTFail("no error") }
        XCTAssertEqual(error.code, "hello-expected")
        let after = try await reader.next()
        XCTAssertNil(after)
        let status = try await helper.waitForExit()
        XCTAssertEqual(status, 1)
    }

    /// The helper never buffers a job's output without bound: a leader that does not read
    /// stalls the job on its pipe instead.
    func testASlowLeaderStallsTheJobInsteadOfGrowingTheHelper() async throws {
        let helper = try HelperProcess()
        let reader = FrameReader(helper.transport)
        try await greet(helper, reader)
        // 200 MiB of zeros as fast as the pipe takes them, then a marker on stderr.
        try await helper.transport.write(HelperWire.encode(.run(RunRequest(job: 1, argv: ["sh", "-c", "head -c 209715200 /dev/zero; echo done >&2"]))))
        guard case .started? = try await reader.nextMessage() else { return XCTFail("no started") }
        // Not reading: give the job time to fill every buffer on the way (and more if unbounded).
        try await Task.sleep(for: .seconds(2))
        let rss = try residentKiB(helper.process.processIdentifier)
        XCTAssertLessThan(rss, 100 * 1024, "the helper's resident set grew to \(rss) KiB while the leader did not read")
        // Now drain: everything arrives, in order, then the exit.
        var bytes = 0
        var exit: JobExit?
        while exit == nil, let frame = try await reader.next() {
            if frame.kind == HelperFrameKind.stdout.rawValue { bytes += frame.payload.count }
            if frame.kind == HelperFrameKind.message.rawValue, case .exited(_, let value) = try HelperMessage.decode(frame.payload) {
                exit = value
            }
        }
        XCTAssertEqual(bytes, 209_715_200)
        XCTAssertEqual(exit?.exitCode, 0)
        await helper.transport.closeWrite()
        let status = try await helper.waitForExit()
        XCTAssertEqual(status, 0)
    }

    private func residentKiB(_ pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = try XCTUnwrap(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") })
        return try XCTUnwrap(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
    }
}
