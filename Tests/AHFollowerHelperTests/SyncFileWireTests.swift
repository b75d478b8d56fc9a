@testable import AHFollowerHelper
import AHSync
import Foundation
import XCTest

/// `sync-file`'s own encoder and reader give exactly what the Codable path gives, and
/// anything they do not cover goes through Codable.
final class SyncFileWireTests: XCTestCase {
    static let sha = String(repeating: "ab", count: 32)

    func testTheFastBytesAreCodablesBytesAndReadBack() throws {
        let entries = [
            ManifestEntry(path: "a.txt", kind: .file, size: 0, sha256: Self.sha),
            ManifestEntry(path: "dir/sub/run.sh", kind: .file, executable: true, size: 12_345_678_901, sha256: Self.sha),
            ManifestEntry(path: "é/😀 space/x~y", kind: .file, size: 7, sha256: Self.sha),
        ]
        for (index, entry) in entries.enumerated() {
            let sync = UInt32(index == 2 ? UInt32.max : UInt32(index))
            let message = HelperMessage.sync(.file(sync: sync, entry: entry))
            let fast = try XCTUnwrap(SyncFileWire.encode(sync: sync, entry: entry))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let codable = Array(try SyncMessage.file(sync: sync, entry: entry).encode(to: encoder))
            XCTAssertEqual(String(decoding: fast, as: UTF8.self), String(decoding: codable, as: UTF8.self))
            XCTAssertEqual(message.jsonBytes(), fast)
            XCTAssertEqual(SyncFileWire.decode(fast), .file(sync: sync, entry: entry))
            XCTAssertEqual(try HelperMessage.decode(fast), message)
        }
    }

    func testWhatNeedsEscapingOrAnotherShapeTakesTheCodablePath() throws {
        let quoted = ManifestEntry(path: "say \"hi\"\\now", kind: .file, size: 1, sha256: Self.sha)
        XCTAssertNil(SyncFileWire.encode(sync: 1, entry: quoted))
        let message = HelperMessage.sync(.file(sync: 1, entry: quoted))
        XCTAssertEqual(try HelperMessage.decode(message.jsonBytes()), message, "the Codable path round-trips it")

        let plain = try XCTUnwrap(SyncFileWire.encode(sync: 9, entry: ManifestEntry(path: "p", kind: .file, size: 3, sha256: Self.sha)))
        let text = String(decoding: plain, as: UTF8.self)
        for variant in [text.replacingOccurrences(of: "\"s\":3", with: "\"s\":03"),
                        text.replacingOccurrences(of: "\"s\":3", with: "\"s\":3.0"),
                        text.replacingOccurrences(of: "\"sync\":9", with: "\"sync\":4294967296"),
                        text.replacingOccurrences(of: "{\"entry\"", with: "{ \"entry\""),
                        text + " ",
                        String(text.dropLast())] {
            XCTAssertNil(SyncFileWire.decode(Array(variant.utf8)), variant)
        }
        // Not this reader's shape, still a valid message: Codable reads it.
        let spaced = text.replacingOccurrences(of: "{\"entry\"", with: "{ \"entry\"")
        XCTAssertEqual(try HelperMessage.decode(Array(spaced.utf8)),
                       .sync(.file(sync: 9, entry: ManifestEntry(path: "p", kind: .file, size: 3, sha256: Self.sha))))
        XCTAssertNil(SyncFileWire.decode([0x7B, 0x22] + Array("entry\":{\"h\":\"".utf8) + [0xFF, 0x22]), "invalid UTF-8")
    }
}
