@testable import AHFollowerHelper
import AHTestSupport
import Crypto
import Foundation
import XCTest

/// The sender side of slurp: glob matching, the workspace fence, and the stream a real
/// `ah agent follower-helper` sends for a set.
final class SlurpSenderTests: XCTestCase {
    func testGlobSegments() throws {
        let cases: [(String, String, Bool)] = [
            ("dist/*", "dist/app", true), ("dist/*", "dist/sub/app", false), ("dist/*", "distx/app", false),
            ("*.exe", "a.exe", true), ("*.exe", "dir/a.exe", false), ("a?c", "abc", true), ("a?c", "ac", false),
            ("[ab]x", "bx", true), ("[!ab]x", "bx", false), ("[a-c]x", "cx", true), ("[^a-c]x", "dx", true),
            ("**/*.txt", "a.txt", true), ("**/*.txt", "a/b/c.txt", true), ("x/**/y", "x/y", true), ("x/**/y", "x/1/2/y", true),
            ("x/**", "x/1/2", true), ("target/release/*.app/**", "target/release/My.app/Contents/x", true),
            ("a\\*", "a*", true), ("a\\*", "ab", false), ("./dist//a", "dist/a", true), ("[unclosed", "[unclosed", true),
            ("*a*b*", "xxaYYbZ", true), ("*a*b", "aXbXc", false),
        ]
        for (pattern, path, expected) in cases {
            XCTAssertEqual(try SlurpPattern(pattern).matches(path.split(separator: "/").map(String.init)), expected, "\(pattern) ~ \(path)")
        }
        XCTAssertTrue(try SlurpPattern("*.d").excludes(["target", "release", "x.d"]), "an exclude without / matches a name at any depth")
        XCTAssertTrue(try SlurpPattern("target/tmp").excludes(["target", "tmp", "deep", "file"]), "a directory excludes its tree")
        XCTAssertFalse(try SlurpPattern("target/tmp").excludes(["other", "target", "tmp"]))
    }

    func testPatternsLeavingTheWorkspaceAreRefused() {
        for pattern in ["/etc/passwd", "../x", "a/../../b", "dist/..", "\\\\server\\share", "C:\\x", "c:/x", "", ".", "./"] {
            XCTAssertThrowsError(try SlurpPattern(pattern), pattern)
        }
    }

    func testWalkFollowsTheWorkspaceFence() throws {
        let directory = try TemporaryDirectory()
        let workspace = try Self.workspace(in: directory)
        var walk = try SlurpWalk(root: workspace.path, include: ["dist", "links/*", "target/release/*"], exclude: ["*.d"])
        try walk.run()
        XCTAssertEqual(walk.entries.map(\.path), ["dist/a.txt", "dist/sub/b.bin", "links/inside", "target/release/app"])
        let skipped = Dictionary(uniqueKeysWithValues: walk.skipped.map { ($0.path, $0.reason) })
        XCTAssertTrue(skipped["links/escape"]?.contains("outside the workspace") == true, "\(walk.skipped)")
        XCTAssertTrue(skipped["links/escape-dir"]?.contains("outside the workspace") == true, "\(walk.skipped)")
        XCTAssertTrue(skipped["links/dir"]?.contains("directory") == true, "\(walk.skipped)")
        XCTAssertNil(skipped["target/release/app.d"])

        // A directory reached through a symlink that leaves the workspace yields nothing.
        var through = try SlurpWalk(root: workspace.path, include: ["links/escape-dir/*", "links/escape-dir/secret"], exclude: [])
        try through.run()
        XCTAssertEqual(through.entries, [])
        XCTAssertFalse(through.skipped.isEmpty)
        XCTAssertThrowsError(try SlurpWalk(root: workspace.path, include: ["../outside/secret"], exclude: []))
        XCTAssertThrowsError(try SlurpWalk(root: directory.file("missing").path, include: ["x"], exclude: []))
    }

    func testHelperStreamsASetWithChecksumsModesAndMtimes() async throws {
        let directory = try TemporaryDirectory()
        let workspace = try Self.workspace(in: directory)
        let big = [UInt8]((0..<(SlurpSenders.chunkSize * 3 + 17)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try Data(big).write(to: workspace.appendingPathComponent("dist/big.bin"))
        chmod(workspace.appendingPathComponent("dist/a.txt").path, 0o751)
        let helper = try HelperProcess()
        let client = try await helper.connect()
        let collector = SlurpCollector()
        client.slurp(SlurpStart(job: client.makeJobID(), name: "dist", include: ["dist/**", "links/*"], exclude: ["sub"],
                                root: workspace.path), receiver: collector)
        let end = try await collector.finished()
        XCTAssertNil(end.error)
        XCTAssertEqual(collector.files.map(\.header.path), ["dist/a.txt", "dist/big.bin", "links/inside"])
        XCTAssertEqual(end.files, 3)
        XCTAssertTrue(end.skipped.contains { $0.path == "links/escape" }, "\(end.skipped)")
        for file in collector.files {
            let expected = try Data(contentsOf: workspace.appendingPathComponent(file.header.path))
            XCTAssertEqual(file.data, [UInt8](expected), file.header.path)
            XCTAssertEqual(file.header.size, Int64(expected.count))
            XCTAssertEqual(file.sha256, SHA256.hash(data: expected).map { String(format: "%02x", $0) }.joined())
        }
        XCTAssertEqual(collector.files[0].header.mode, 0o751)
        let attributes = try FileManager.default.attributesOfItem(atPath: workspace.appendingPathComponent("dist/a.txt").path)
        let mtime = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        XCTAssertEqual(Double(collector.files[0].header.mtimeNanos) / 1e9, mtime, accuracy: 0.001)

        // The sender refuses a set leaving the workspace, whatever the leader asked.
        let refused = SlurpCollector()
        client.slurp(SlurpStart(job: client.makeJobID(), name: "evil", include: ["dist/a.txt", "../outside/secret"], root: workspace.path),
                     receiver: refused)
        let refusal = try await refused.finished()
        XCTAssertEqual(refusal.code, "bad-request")
        XCTAssertTrue(refusal.error?.contains("'..'") == true, refusal.error ?? "")
        XCTAssertEqual(refused.files.count, 0, "nothing is sent for a refused set")
        let absolute = SlurpCollector()
        client.slurp(SlurpStart(job: client.makeJobID(), name: "evil", include: [directory.file("outside/secret").path], root: workspace.path),
                     receiver: absolute)
        let absoluteEnd = try await absolute.finished()
        XCTAssertEqual(absoluteEnd.code, "bad-request")
        await client.close()
    }

    /// ws/dist/{a.txt, sub/b.bin}, ws/target/release/{app, app.d}, ws/links/{inside → ../dist/a.txt,
    /// escape → ../../outside/secret, escape-dir → ../../outside, dir → ../dist}, outside/secret.
    static func workspace(in directory: TemporaryDirectory) throws -> URL {
        let workspace = directory.file("ws")
        let manager = FileManager.default
        for path in ["dist/sub", "target/release", "links"] {
            try manager.createDirectory(at: workspace.appendingPathComponent(path), withIntermediateDirectories: true)
        }
        try manager.createDirectory(at: directory.file("outside"), withIntermediateDirectories: true)
        try "secret".write(to: directory.file("outside/secret"), atomically: true, encoding: .utf8)
        try "a".write(to: workspace.appendingPathComponent("dist/a.txt"), atomically: true, encoding: .utf8)
        try "b".write(to: workspace.appendingPathComponent("dist/sub/b.bin"), atomically: true, encoding: .utf8)
        try "app".write(to: workspace.appendingPathComponent("target/release/app"), atomically: true, encoding: .utf8)
        try "dep".write(to: workspace.appendingPathComponent("target/release/app.d"), atomically: true, encoding: .utf8)
        try manager.createSymbolicLink(atPath: workspace.appendingPathComponent("links/inside").path, withDestinationPath: "../dist/a.txt")
        try manager.createSymbolicLink(atPath: workspace.appendingPathComponent("links/escape").path, withDestinationPath: "../../outside/secret")
        try manager.createSymbolicLink(atPath: workspace.appendingPathComponent("links/escape-dir").path, withDestinationPath: "../../outside")
        try manager.createSymbolicLink(atPath: workspace.appendingPathComponent("links/dir").path, withDestinationPath: "../dist")
        return workspace
    }
}

/// Keeps everything a slurp delivered.
final class SlurpCollector: SlurpReceiver, @unchecked Sendable {
    struct File {
        var header: SlurpFileHeader
        var data: [UInt8] = []
        var sha256: String?
    }

    private let lock = NSLock()
    private var collected: [File] = []
    private let end = OneShot<SlurpEnd>()

    var files: [File] { lock.withLock { collected } }

    func finished() async throws -> SlurpEnd {
        try await end.wait(timeout: .seconds(30), onTimeout: .connectionLost("the slurp did not end within 30 s"))
    }

    func slurpFile(_ header: SlurpFileHeader) { lock.withLock { collected.append(File(header: header)) } }
    func slurpData(_ bytes: [UInt8]) { lock.withLock { collected[collected.count - 1].data += bytes } }
    func slurpFileEnd(_ fileEnd: SlurpFileEnd) { lock.withLock { collected[collected.count - 1].sha256 = fileEnd.sha256 } }
    func slurpEnd(_ slurpEnd: SlurpEnd) { end.resolve(.success(slurpEnd)) }
    func slurpLost(_ error: FollowerHelperError) { end.resolve(.failure(error)) }
}
