import AHSync
import AHTestSupport
import Foundation
import XCTest

/// The receiver keeps its manifest by patching (written and removed paths merged into the
/// last one, which its scanner then takes as its base): after every sync, and after edits
/// behind its back in directories it created itself, it must equal an independent full walk.
final class ReceiverManifestTests: XCTestCase {
    var temporary: TemporaryDirectory!
    var source: String { temporary.file("source").path }
    var target: String { temporary.file("target").path }
    let ignores = IgnoreMatcher(patterns: [])

    override func setUpWithError() throws {
        temporary = try TemporaryDirectory(prefix: "ah-sync-patch")
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
    }

    func write(_ root: String, _ path: String, _ text: String) throws {
        let url = URL(fileURLWithPath: root).appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    func fullWalk(_ root: String) throws -> Manifest { try TreeScanner(root: root, ignores: ignores).scan().manifest }

    func testPatchedManifestsEqualFullWalks() throws {
        let store = try ContentStore(directory: temporary.file("store").path)
        let scanner = TreeScanner(root: source, ignores: ignores, store: store)
        scanner.racyMarginNs = 0
        let writer = try TreeWriter(root: target, options: TreeWriter.Options())
        for directory in ["a", "b", "b/c"] {
            for file in 0..<10 { try write(source, "\(directory)/f\(file)", "\(directory) \(file)") }
        }
        var snapshot = try scanner.scan().manifest
        XCTAssertEqual(try writer.receive(snapshot, from: store, ignores: ignores), snapshot)
        XCTAssertEqual(try writer.scan(ignores: ignores), try fullWalk(target), "first scan after the initial sync")

        // One edit, one new directory, one removed directory: the patched manifest is exact.
        try write(source, "a/f1", "edited")
        try write(source, "new/g", "new")
        try FileManager.default.removeItem(atPath: source + "/b/c")
        snapshot = try scanner.scan().manifest
        XCTAssertEqual(try writer.receive(snapshot, from: store, ignores: ignores), snapshot)
        XCTAssertEqual(try fullWalk(target), snapshot)
        XCTAssertEqual(try writer.scan(ignores: ignores), snapshot, "a scan right after the sync")

        // Behind the receiver's back, in a directory it created itself and in an old one.
        try write(target, "new/g", "tampered")
        try FileManager.default.removeItem(atPath: target + "/a/f2")
        try write(target, "new/deeper/h", "added")
        let tampered = try writer.scan(ignores: ignores)
        XCTAssertEqual(tampered, try fullWalk(target))
        XCTAssertNotEqual(tampered.rootHash, snapshot.rootHash)
        XCTAssertEqual(try writer.receive(snapshot, from: store, ignores: ignores), snapshot, "repaired")
        XCTAssertEqual(try fullWalk(target), snapshot)

        // The directory it created, removed behind its back before any scan saw it.
        try write(source, "fresh/x", "x")
        snapshot = try scanner.scan().manifest
        XCTAssertEqual(try writer.receive(snapshot, from: store, ignores: ignores), snapshot)
        try FileManager.default.removeItem(atPath: target + "/fresh")
        XCTAssertEqual(try writer.scan(ignores: ignores), try fullWalk(target))
    }

    func testReplacingPathsMatchesARebuild() {
        let entries = (0..<200).map { ManifestEntry.file("d\($0 % 7)/f\($0)", size: Int64($0), sha256: String(repeating: "a", count: 64)) }
            + (0..<7).map { ManifestEntry.directory("d\($0)") }
        let base = Manifest(entries: entries)
        XCTAssertEqual(base.replacing(paths: [], with: []), base)
        let removed = ["d1/f8", "d3/f10", "missing/path"]
        let added = [ManifestEntry.file("d1/f8", size: 9, sha256: String(repeating: "b", count: 64)), .symlink("d2/link", target: "f2")]
        let patched = base.replacing(paths: removed, with: added)
        let rebuilt = Manifest(entries: entries.filter { !removed.contains($0.path) } + added)
        XCTAssertEqual(patched, rebuilt)
        XCTAssertEqual(patched.rootHash, rebuilt.rootHash)
    }
}
