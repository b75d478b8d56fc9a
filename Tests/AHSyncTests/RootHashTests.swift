import AHSync
import XCTest

/// The snapshot id's byte encoding (docs/protocol.md, "Snapshot id"): fixed values computed
/// independently (Python hashlib over the documented bytes), so a change of the encoding fails.
final class RootHashTests: XCTestCase {
    func testEmptyTreeIsSHA256OfNothing() {
        XCTAssertEqual(Manifest.empty.rootHash, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    func testFixedManifestHasTheDocumentedId() {
        // Given out of order on purpose: the id is over the byte-sorted entries.
        let manifest = Manifest(entries: [
            .symlink("src/sh", target: "run.sh"),
            .file("src/run.sh", size: 5, sha256: "86b0c5a1e2b73b08fd54c727f4458649ed9fe3ad1b6e8ac9460c070113509a1e", executable: true),
            .directory("src"),
            .file("src/main.c", size: 12, sha256: "26e2de4e99e14d0cd8cda44628317dc7bd61056c0dcd50cdf705cf67fcaa8bb8"),
        ])
        XCTAssertEqual(manifest.rootHash, "sha256:e809e9e3ab55df5e344f29736763f60efb65241c6e5449dc1ac95e244aa35d51")
        XCTAssertEqual(manifest.entries.map(\.path), ["src", "src/main.c", "src/run.sh", "src/sh"])
    }

    func testEveryFieldChangesTheId() {
        let base = ManifestEntry.file("a", size: 1, sha256: String(repeating: "0", count: 64))
        var variants = [base]
        var executable = base; executable.executable = true; variants.append(executable)
        var size = base; size.size = 2; variants.append(size)
        var content = base; content.sha256 = String(repeating: "1", count: 64); variants.append(content)
        var renamed = base; renamed.path = "b"; variants.append(renamed)
        variants.append(.directory("a"))
        variants.append(.symlink("a", target: "x"))
        variants.append(.symlink("a", target: "y"))
        let ids = Set(variants.map { Manifest(entries: [$0]).rootHash })
        XCTAssertEqual(ids.count, variants.count)
    }

    func testByteOrderNotStringOrder() {
        // "a-b" (0x2d) sorts before "a/b" (0x2f) and "a/b" before "a0" (0x30).
        let manifest = Manifest(entries: [.directory("a0"), .directory("a/b"), .directory("a-b"), .directory("a")])
        XCTAssertEqual(manifest.entries.map(\.path), ["a", "a-b", "a/b", "a0"])
    }
}

final class IgnoreMatcherTests: XCTestCase {
    func testTable() {
        let cases: [(patterns: [String], path: String, directory: Bool, ignored: Bool)] = [
            ([], ".git", true, true),
            ([], "sub/.git", true, true),
            (["!.git"], ".git", true, true),
            (["node_modules"], "node_modules", true, true),
            (["node_modules"], "web/node_modules", true, true),
            (["node_modules"], "node_modules_x", true, false),
            (["build/"], "build", false, false),
            (["build/"], "build", true, true),
            (["build/"], "a/build", true, true),
            (["/build"], "build", true, true),
            (["/build"], "a/build", true, false),
            (["*.log"], "x/y/z.log", false, true),
            (["*.log", "!keep.log"], "x/keep.log", false, false),
            (["*.log", "!keep.log"], "x/drop.log", false, true),
            (["doc/*.txt"], "doc/a.txt", false, true),
            (["doc/*.txt"], "doc/sub/a.txt", false, false),
            (["doc/*.txt"], "x/doc/a.txt", false, false),
            (["**/cache"], "a/b/cache", true, true),
            (["**/cache"], "cache", true, true),
            (["logs/**"], "logs/a/b.txt", false, true),
            (["logs/**"], "logs", true, false),
            (["a/**/z"], "a/z", false, true),
            (["a/**/z"], "a/b/c/z", false, true),
            (["a/**/z"], "b/a/z", false, false),
            (["file?.c"], "file1.c", false, true),
            (["file[0-9].c"], "filex.c", false, false),
            (["# comment", ""], "# comment", false, false),
            (["\\#hash"], "#hash", false, true),
            (["target", "!target"], "target", true, false),
        ]
        for (index, test) in cases.enumerated() {
            let matcher = IgnoreMatcher(patterns: test.patterns)
            XCTAssertEqual(matcher.isIgnored(test.path, isDirectory: test.directory), test.ignored,
                           "case \(index): \(test.patterns) on \(test.path) (directory: \(test.directory))")
        }
    }
}

final class PathRuleTests: XCTestCase {
    func testSyncPathProblems() {
        for bad in ["", "/etc/passwd", "a//b", "a/./b", "../x", "a/..", "a/", "a\u{0}b", String(repeating: "x", count: 256)] {
            XCTAssertNotNil(SyncPath.problem(bad), "'\(bad.prefix(20))' should be refused")
        }
        for good in ["a", "a/b", ".hidden/x", "ünïcode/ß", "a b/c"] { XCTAssertNil(SyncPath.problem(good), good) }
    }

    func testSymlinkContainment() {
        let cases: [(String, String, Bool)] = [
            ("link", "target", true), ("a/link", "../b", true), ("a/link", "../../b", false), ("link", "../x", false),
            ("link", "/etc/passwd", false), ("a/b/link", "../../c/./d", true), ("link", "./x/../y", true), ("link", "x/../../y", false),
            ("link", "", false),
        ]
        for (path, target, inside) in cases {
            XCTAssertEqual(SyncPath.symlinkStaysInside(path: path, target: target), inside, "\(path) -> \(target)")
        }
    }

    func testCaseCollisions() {
        XCTAssertEqual(NameRules.caseCollisions(["A.txt", "b", "a.txt"]),
                       ["'A.txt' and 'a.txt' are the same name on a case-insensitive file system"])
        XCTAssertEqual(NameRules.caseCollisions(["Dir/x", "dir/X"]).count, 1)
        XCTAssertEqual(NameRules.caseCollisions(["a", "b", "ab"]), [])
    }

    func testWindowsNames() {
        let bad = ["CON", "con.txt", "dir/LPT1.log", "a:b", "what?", "trailing.", "space ", "x/a|b", "tab\tname", "Aux"]
        for path in bad { XCTAssertNotNil(NameRules.windowsProblem(path), path) }
        for path in ["console.txt", "CONX", "dir/file.txt", "COM10", "a.b.c"] { XCTAssertNil(NameRules.windowsProblem(path), path) }
        let long = String(repeating: "d/", count: 130) + "file.txt"
        XCTAssertNotNil(NameRules.windowsProblem(long, workspace: "S:\\proj"))
        XCTAssertNil(NameRules.windowsProblem("short.txt", workspace: "S:\\proj"))
        XCTAssertEqual(NameRules.windowsPath("src/a.c", workspace: "S:\\proj"), "S:\\proj\\src\\a.c")
        XCTAssertEqual(NameRules.windowsPath("a", workspace: "S:\\"), "S:\\a")
    }
}

final class ManifestDiffTests: XCTestCase {
    let hashA = String(repeating: "a", count: 64)
    let hashB = String(repeating: "b", count: 64)

    func testOperationsInApplyOrder() {
        let old = Manifest(entries: [
            .directory("gone"), .file("gone/x", size: 1, sha256: hashA), .file("same", size: 1, sha256: hashA),
            .file("edited", size: 1, sha256: hashA), .file("mode", size: 1, sha256: hashA), .file("becomes-dir", size: 1, sha256: hashA),
            .symlink("link", target: "same"),
        ])
        let new = Manifest(entries: [
            .file("same", size: 1, sha256: hashA), .file("edited", size: 1, sha256: hashB),
            .file("mode", size: 1, sha256: hashA, executable: true), .directory("becomes-dir"),
            .file("becomes-dir/inner", size: 1, sha256: hashB), .symlink("link", target: "edited"), .directory("new"),
        ])
        XCTAssertEqual(ManifestDiff.operations(from: old, to: new), [
            .remove("becomes-dir"), .remove("gone"), .remove("link"),
            .mkdir("becomes-dir"), .mkdir("new"),
            .file(.file("becomes-dir/inner", size: 1, sha256: hashB)), .file(.file("edited", size: 1, sha256: hashB)),
            .symlink(.symlink("link", target: "edited")),
            .chmod("mode", executable: true),
        ])
        XCTAssertEqual(ManifestDiff.operations(from: new, to: new), [])
    }
}
