@testable import AHFollowerHelper
import Foundation
import XCTest

/// The wire format on its own: frames and messages encoded, split anywhere, decoded back.
final class FrameTests: XCTestCase {
    func testFramesSurviveAnySplitOfTheByteStream() throws {
        let frames = [
            HelperRawFrame(kind: .message, job: 0, payload: HelperMessage.probe(id: 7).jsonBytes()),
            HelperRawFrame(kind: .stdout, job: 3, payload: Array(0...255)),
            HelperRawFrame(kind: .stderr, job: UInt32.max, payload: []),
            HelperRawFrame(kind: 200, job: 1, payload: [1, 2, 3]),
        ]
        let bytes = frames.flatMap(HelperWire.encode)
        XCTAssertEqual(Array(bytes[0..<9]), [0, 0, 0, UInt8(5 + frames[0].payload.count), 0, 0, 0, 0, 0], "length, kind, job id")
        for chunkSize in [1, 2, 5, 9, 13, 100, bytes.count] {
            var decoder = HelperFrameDecoder()
            var decoded: [HelperRawFrame] = []
            var offset = 0
            while offset < bytes.count {
                decoder.append(bytes[offset..<min(offset + chunkSize, bytes.count)])
                offset += chunkSize
                while let frame = try decoder.next() { decoded.append(frame) }
            }
            XCTAssertEqual(decoded, frames, "chunks of \(chunkSize)")
            XCTAssertEqual(decoder.bufferedByteCount, 0)
        }
    }

    func testOversizedLengthIsRefusedFromItsPrefixAlone() {
        var decoder = HelperFrameDecoder()
        decoder.append([0x00, 0x10, 0x00, 0x06])  // 1 MiB + 6: one byte over
        XCTAssertThrowsError(try decoder.next()) { error in
            XCTAssertEqual(error as? HelperFrameError, .tooLarge(length: (1 << 20) + 6, limit: 1 << 20))
            XCTAssertEqual((error as? HelperFrameError)?.code, "frame-too-large")
        }
        var exact = HelperFrameDecoder()
        exact.append([0x00, 0x10, 0x00, 0x00, 1, 0, 0, 0, 1])
        XCTAssertNil(try exact.next(), "a frame of exactly 1 MiB is allowed; it is just incomplete")

        var short = HelperFrameDecoder()
        short.append([0, 0, 0, 4, 0, 0, 0, 0])
        XCTAssertThrowsError(try short.next()) { XCTAssertEqual($0 as? HelperFrameError, .tooShort(length: 4)) }
    }

    func testMessagesRoundTrip() throws {
        let messages: [HelperMessage] = [
            .hello(HelperHello(version: 1, ahVersion: "0.4.0", os: "linux", pid: 42)),
            .run(RunRequest(job: 9, argv: ["sh", "-c", "echo 'ü' \"$X\""], env: ["X": "a=b"], cwd: "/tmp", timeoutMillis: 1500)),
            .run(RunRequest(job: 10, argv: ["true"])),
            .cancel(job: 9),
            .probe(id: UInt64.max),
            .probeReply(id: 1),
            .started(job: 9, pid: 1234),
            .exited(job: 9, JobExit(exitCode: 7, durationMs: 12)),
            .exited(job: 9, JobExit(signal: "SIGKILL", durationMs: 2001, timedOut: true)),
            .error(HelperErrorMessage(code: "duplicate-job", message: "job 9 is already running", job: 9)),
        ]
        for message in messages {
            XCTAssertEqual(try HelperMessage.decode(message.jsonBytes()), message)
        }
    }

    func testExitedIsOneFlatObject() throws {
        let json = String(decoding: HelperMessage.exited(job: 3, JobExit(exitCode: 0, durationMs: 5)).jsonBytes(), as: UTF8.self)
        XCTAssertEqual(json, #"{"cancelled":false,"durationMs":5,"exitCode":0,"job":3,"timedOut":false,"type":"exited"}"#)
    }

    func testUnknownTypeAndMalformedMessagesAreDistinguished() {
        XCTAssertThrowsError(try HelperMessage.decode(Array(#"{"type":"future-begin","root":"x"}"#.utf8))) {
            XCTAssertEqual($0 as? HelperMessageError, .unknownType("future-begin"))
        }
        XCTAssertThrowsError(try HelperMessage.decode(Array(#"{"type":"run","argv":["x"]}"#.utf8))) {
            XCTAssertEqual(($0 as? HelperMessageError)?.code, "bad-message")
            XCTAssertTrue("\($0)".contains("job"), "names the missing field: \($0)")
        }
        XCTAssertThrowsError(try HelperMessage.decode(Array("not json".utf8))) {
            XCTAssertEqual(($0 as? HelperMessageError)?.code, "bad-message")
        }
        XCTAssertThrowsError(try HelperMessage.decode(Array(#"{"type":"cancel","job":-1}"#.utf8))) {
            XCTAssertEqual(($0 as? HelperMessageError)?.code, "bad-message", "job ids are unsigned 32-bit")
        }
    }

    func testRunRequestValidationNamesTheBadValue() {
        XCTAssertNil(RunRequest(job: 1, argv: ["true"], env: ["A": "b"], cwd: "/", timeoutMillis: 1).problem)
        XCTAssertEqual(RunRequest(job: 0, argv: ["true"]).problem, "job id 0 is reserved")
        XCTAssertEqual(RunRequest(job: 2, argv: []).problem, "argv is empty (job 2)")
        XCTAssertNotNil(RunRequest(job: 2, argv: ["a\u{0}b"]).problem)
        XCTAssertTrue(RunRequest(job: 2, argv: ["true"], env: ["A=B": "c"]).problem?.contains("'A=B'") == true)
        XCTAssertTrue(RunRequest(job: 2, argv: ["true"], timeoutMillis: 0).problem?.contains("timeoutMillis 0") == true)
    }

    func testSignalNamesAndWaitStatus() {
        XCTAssertEqual(ProcessStatus(waitStatus: 7 << 8), .exited(7))
        XCTAssertEqual(ProcessStatus(waitStatus: SIGKILL), .signalled(SIGKILL))
        XCTAssertEqual(ProcessStatus(waitStatus: SIGSEGV | 0x80), .signalled(SIGSEGV), "core dumped")
        XCTAssertEqual(ProcessStatus.name(ofSignal: SIGSEGV), "SIGSEGV")
        XCTAssertEqual(ProcessStatus.name(ofSignal: 63), "SIG63")
    }
}
