import AHSync
import AHTestSupport
import Foundation
import XCTest

/// Scanner, content store and receiver against real directories: a tree synced with the
/// operations of a diff (content from the store) ends with the sender's root hash, edits are
/// picked up, and the receiver's safety rules hold.
final class TreeSyncTests: XCTestCase {
    var temporary: TemporaryDirectory!
    var source: String { temporary.file("source").path }
    var target: String { temporary.file("target").path }

    override func setUpWithError() throws {
        temporary = try TemporaryDirectory(prefix: "ah-sync")
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
    }

    func write(_ path: String, _ text: String, executable: Bool = false) throws {
        let url = URL(fileURLWithPath: source).appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
        try FileManager.default.setAttributes([.posixPermissions: executable ? 0o755 : 0o644], ofItemAtPath: url.path)
    }

    func testRoundTripThroughEveryChange() throws {
        let store = try ContentStore(directory: temporary.file("store").path, retention: 3)
        let ignores = IgnoreMatcher(patterns: ["*.log", "build/"])
        let scanner = TreeScanner(root: source, ignores: ignores, store: store)
        scanner.racyMarginNs = 0
        let writer = try TreeWriter(root: target, options: TreeWriter.Options())

        try write("a.txt", "alpha")
        try write("bin/run.sh", "#!/bin/sh\necho hi\n", executable: true)
        try write("deep/er/x.c", "int x;")
        try write("skip.log", "ignored")
        try write("build/out.o", "ignored")
        try FileManager.default.createDirectory(atPath: source + "/empty", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: source + "/link", withDestinationPath: "a.txt")
        var snapshot = try scanner.scan()
        XCTAssertEqual(snapshot.hashedFiles, 3)
        XCTAssertFalse(snapshot.manifest.entries.contains { $0.path.hasSuffix(".log") || $0.path.hasPrefix("build") })
        try store.save(snapshot.manifest)
        XCTAssertEqual(try writer.receive(snapshot.manifest, from: store, ignores: ignores).rootHash, snapshot.manifest.rootHash)
        XCTAssertEqual(try TreeScanner(root: target, ignores: ignores).scan().manifest.rootHash, snapshot.manifest.rootHash)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: target + "/bin/run.sh")[.posixPermissions] as? Int, 0o755)

        // Unchanged: nothing is read again.
        XCTAssertEqual(try scanner.scan().hashedFiles, 0)

        // Edit, delete, chmod, rename, file→dir, dir→file, retarget the link.
        try write("a.txt", "alpha2")
        try FileManager.default.removeItem(atPath: source + "/deep/er/x.c")
        chmod(source + "/bin/run.sh", 0o644)
        try FileManager.default.moveItem(atPath: source + "/empty", toPath: source + "/renamed")
        try FileManager.default.removeItem(atPath: source + "/link")
        try FileManager.default.createSymbolicLink(atPath: source + "/link", withDestinationPath: "bin/run.sh")
        try FileManager.default.removeItem(atPath: source + "/deep")
        try write("deep", "now a file")
        snapshot = try scanner.scan()
        try store.save(snapshot.manifest)
        XCTAssertEqual(try writer.receive(snapshot.manifest, from: store, ignores: ignores).rootHash, snapshot.manifest.rootHash)
        try FileManager.default.removeItem(atPath: source + "/deep")
        try write("deep/again.txt", "dir again")
        snapshot = try scanner.scan()
        try store.save(snapshot.manifest)
        XCTAssertEqual(try writer.receive(snapshot.manifest, from: store, ignores: ignores).rootHash, snapshot.manifest.rootHash)
        XCTAssertEqual(try TreeScanner(root: target, ignores: ignores).scan().manifest.rootHash, snapshot.manifest.rootHash)

        // An edit behind the receiver's back is seen by its next scan (and repaired by a sync).
        try Data("tampered".utf8).write(to: URL(fileURLWithPath: target + "/a.txt"))
        XCTAssertNotEqual(try writer.scan(ignores: ignores).rootHash, snapshot.manifest.rootHash)
        XCTAssertEqual(try writer.receive(snapshot.manifest, from: store, ignores: ignores).rootHash, snapshot.manifest.rootHash)

        // Ignored paths on the receiver are left alone.
        try FileManager.default.createDirectory(atPath: target + "/build", withIntermediateDirectories: true)
        try Data("local".utf8).write(to: URL(fileURLWithPath: target + "/build/local.o"))
        XCTAssertEqual(try writer.receive(snapshot.manifest, from: store, ignores: ignores).rootHash, snapshot.manifest.rootHash)
        XCTAssertTrue(FileManager.default.fileExists(atPath: target + "/build/local.o"))

        // Every kept snapshot restores; retention (3) dropped the oldest.
        XCTAssertEqual(store.snapshots().count, 3)
        let restored = temporary.file("restored").path
        let first = store.snapshots()[0].id
        try store.restore(first, into: restored, ignores: ignores)
        XCTAssertEqual(try TreeScanner(root: restored, ignores: ignores).scan().manifest.rootHash, first)
        try write("one", "1"); try write("two", "2"); try write("three", "3")
        for _ in 0..<2 {
            try write("one", UUID().uuidString)
            try store.save(try scanner.scan().manifest)
        }
        XCTAssertFalse(store.hasSnapshot(first))
    }

    func testReceiverSafety() throws {
        let writer = try TreeWriter(root: target, options: TreeWriter.Options(caseInsensitive: true))
        _ = try writer.scan(ignores: IgnoreMatcher(patterns: []))
        XCTAssertThrowsError(try writer.apply(.symlink(.symlink("escape", target: "../../etc")))) { error in
            XCTAssertTrue("\(error)".contains("points outside"), "\(error)")
        }
        XCTAssertThrowsError(try writer.apply(.symlink(.symlink("abs", target: "/etc/passwd"))))
        XCTAssertThrowsError(try writer.apply(.mkdir("../outside")))
        XCTAssertThrowsError(try writer.apply(.remove("/etc")))
        XCTAssertFalse(FileManager.default.fileExists(atPath: temporary.file("outside").path))

        // A symlinked directory (planted behind the leader's back) is never written through.
        let elsewhere = temporary.file("elsewhere").path
        try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: target + "/sub", withDestinationPath: elsewhere)
        let sha = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" // "hello"
        XCTAssertThrowsError(try writer.beginFile(.file("sub/x", size: 5, sha256: sha))) { error in
            XCTAssertTrue("\(error)".contains("not a directory"), "\(error)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: elsewhere), [])

        // Case-insensitive follower: A.txt and a.txt collide, the error names both.
        try writer.beginFile(.file("A.txt", size: 5, sha256: sha))
        try writer.writeFileData(Array("hello".utf8)[...])
        try writer.finishFile()
        try writer.flush()
        XCTAssertThrowsError(try writer.beginFile(.file("a.txt", size: 5, sha256: sha))) { error in
            XCTAssertTrue("\(error)".contains("'A.txt' and 'a.txt'"), "\(error)")
        }

        // Content that does not match its hash never lands.
        try writer.beginFile(.file("wrong", size: 5, sha256: sha))
        try writer.writeFileData(Array("HELLO".utf8)[...])
        XCTAssertThrowsError(try writer.finishFile())
        XCTAssertFalse(FileManager.default.fileExists(atPath: target + "/wrong"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: target).sorted(), ["A.txt", "sub"])
    }

    /// With the inotify watcher, a scan lists only changed directories; after every kind of
    /// change its manifest equals a full walk's.
    func testWatchedScansMatchFullScans() throws {
        let scanner = TreeScanner(root: source, ignores: IgnoreMatcher(patterns: ["skip"]))
        scanner.racyMarginNs = 0
        scanner.watcher = try XCTUnwrap(DirtyWatcher(root: source))
        for directory in ["a", "b", "c/d", "skip"] {
            for file in 0..<20 { try write("\(directory)/f\(file)", "\(directory) \(file)") }
        }
        func check(_ what: String, hashed: Int? = nil) throws {
            let watched = try scanner.scan()
            let full = try TreeScanner(root: source, ignores: IgnoreMatcher(patterns: ["skip"])).scan()
            XCTAssertEqual(watched.manifest, full.manifest, what)
            if let hashed { XCTAssertEqual(watched.hashedFiles, hashed, what) }
        }
        try check("first scan", hashed: 60)
        try check("nothing changed", hashed: 0)
        try write("a/f3", "edited")
        try check("one edit", hashed: 1)
        chmod(source + "/b/f1", 0o755)
        try check("chmod", hashed: 1)
        try write("c/d/e/new", "new directory")
        try check("new directory", hashed: 1)
        try FileManager.default.removeItem(atPath: source + "/c")
        try check("removed tree")
        try write("c/d/f0", "recreated with other contents")
        try check("recreated path")
        try FileManager.default.moveItem(atPath: source + "/b", toPath: source + "/moved")
        try check("moved directory")
        try FileManager.default.moveItem(atPath: source + "/moved", toPath: source + "/a/inner")
        try check("moved into another")
        try write("skip/ignored", "x")
        try check("ignored", hashed: 0)
        try FileManager.default.createSymbolicLink(atPath: source + "/a/link", withDestinationPath: "f3")
        try check("symlink", hashed: 0)
    }

    /// 50,000 files must scan fast, and a rescan must read nothing.
    func testManyFilesScanQuicklyAndRescanFromTheCache() throws {
        for directory in 0..<50 {
            let folder = source + "/d\(directory)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for file in 0..<200 { _ = FileManager.default.createFile(atPath: "\(folder)/f\(file)", contents: Data("\(directory)-\(file)".utf8)) }
        }
        let scanner = TreeScanner(root: source, ignores: IgnoreMatcher(patterns: []))
        scanner.racyMarginNs = 0
        let first = try scanner.scan()
        XCTAssertEqual(first.hashedFiles, 10_000)
        let started = ContinuousClock.now
        let second = try scanner.scan()
        let took = ContinuousClock.now - started
        XCTAssertEqual(second.hashedFiles, 0)
        XCTAssertEqual(second.manifest.rootHash, first.manifest.rootHash)
        XCTAssertLessThan(took, .seconds(2), "a cached rescan of 10,000 files took \(took)")
    }
}
