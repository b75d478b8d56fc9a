@testable import AHLeader
import AHTestSupport
import Foundation
import XCTest

/// Staging directories left by a leader service killed mid-slurp are removed by the next
/// slurp into the same place; live ones (another slurp's) and unknown ones are not.
final class SlurpStagingTests: XCTestCase {
    func testAnAbandonedStagingDirectoryIsSweptAndALiveOneKept() throws {
        let directory = try TemporaryDirectory(prefix: "ah-staging")
        let dest = directory.file("out").path
        let live = try SlurpStaging(dest: dest)
        // What a killed service leaves: its files and an owner file nobody holds a lock on.
        let abandoned = directory.file(".ah-slurp-deadbeef")
        try FileManager.default.createDirectory(at: abandoned.appendingPathComponent("recv/1-f1"), withIntermediateDirectories: true)
        try Data("half".utf8).write(to: abandoned.appendingPathComponent("recv/1-f1/part"))
        try Data().write(to: abandoned.appendingPathComponent(SlurpStaging.ownerName))
        // No owner file: not ours to judge.
        let unknown = directory.file(".ah-slurp-unknown0")
        try FileManager.default.createDirectory(at: unknown, withIntermediateDirectories: true)

        let next = try SlurpStaging(dest: dest)
        XCTAssertFalse(FileManager.default.fileExists(atPath: abandoned.path), "the abandoned staging directory is removed")
        XCTAssertTrue(FileManager.default.fileExists(atPath: live.root.path), "a live slurp's staging directory is kept")
        XCTAssertTrue(FileManager.default.fileExists(atPath: unknown.path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: next.root.path))

        // Once discarded (its lock released), a staging directory is gone; the other is still held.
        live.discard()
        XCTAssertFalse(FileManager.default.fileExists(atPath: live.root.path))
        SlurpStaging.sweepAbandoned(in: directory.url)
        XCTAssertTrue(FileManager.default.fileExists(atPath: next.root.path), "still locked by its owner")
        next.discard()
    }
}
