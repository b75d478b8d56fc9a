@testable import AHFollowerHelper
import AHSync
import AHTestSupport
import Crypto
import Foundation
import XCTest

/// The helper's sync receiver through the real `ah agent follower-helper` and the leader's
/// `HelperClient`: a sync lands and is proven by its root hash; what the network sends is
/// validated (bad roots, paths, hashes) and answered with `sync-error`, and the helper keeps
/// serving afterwards.
final class HelperSyncTests: XCTestCase {
    func reply(_ replies: inout AsyncThrowingStream<SyncMessage, any Error>.Iterator) async throws -> SyncMessage {
        while true {
            guard let message = try await replies.next() else { throw FollowerHelperError.closed }
            if case .ack = message { continue }
            return message
        }
    }

    func testSyncLandsAndBadInputIsRefused() async throws {
        let temporary = try TemporaryDirectory(prefix: "ah-helper-sync")
        let root = temporary.file("ws").path
        let helper = try HelperProcess()
        let client = try await helper.connect()

        // A relative root and `/` are refused before anything is touched.
        for bad in ["relative/dir", "/"] {
            let conversation = client.openSync()
            var replies = conversation.replies.makeAsyncIterator()
            conversation.send(.begin(SyncBegin(sync: conversation.sync, root: bad, ignores: [], snapshotId: "")))
            guard case .failed(_, let code, let message) = try await reply(&replies) else { return XCTFail("\(bad) accepted") }
            XCTAssertTrue(code == "bad-request" || code == "refused", "\(code): \(message)")
            conversation.close()
        }

        // A small tree: directory, file (in two data frames), symlink, executable.
        let content = Array("hello, follower\n".utf8)
        let sha = Hex.string(SHA256.hash(data: content))
        let file = ManifestEntry.file("src/a.txt", size: Int64(content.count), sha256: sha, executable: true)
        let expected = Manifest(entries: [.directory("src"), file, .symlink("link", target: "src/a.txt")])
        var conversation = client.openSync()
        var replies = conversation.replies.makeAsyncIterator()
        conversation.send(.begin(SyncBegin(sync: conversation.sync, root: root, ignores: [], snapshotId: expected.rootHash)))
        guard case .state(_, let empty, 0) = try await reply(&replies) else { return XCTFail("no state") }
        XCTAssertEqual(empty, Manifest.empty.rootHash)
        conversation.send(.ops(sync: conversation.sync, ops: [SyncOpWire(.mkdir("src"))]))
        conversation.send(.file(sync: conversation.sync, entry: file))
        conversation.sendData(content[0..<5])
        conversation.sendData(content[5...])
        conversation.send(.ops(sync: conversation.sync, ops: [SyncOpWire(.symlink(.symlink("link", target: "src/a.txt")))]))
        conversation.send(.commit(sync: conversation.sync))
        guard case .done(_, let rootHash, 3) = try await reply(&replies) else { return XCTFail("no done") }
        XCTAssertEqual(rootHash, expected.rootHash)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: root + "/src/a.txt")), Data(content))
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: root + "/link"), "src/a.txt")
        conversation.close()

        // Bad paths, a lying hash and an escaping link: each fails the sync, nothing lands.
        let cases: [(String, (SyncConversation) -> Void)] = [
            ("bad-path", { $0.send(.ops(sync: $0.sync, ops: [SyncOpWire(.mkdir("../outside"))])) }),
            ("refused", { $0.send(.ops(sync: $0.sync, ops: [SyncOpWire(.symlink(.symlink("up", target: "../../etc")))])) }),
            ("corrupt", { conversation in
                conversation.send(.file(sync: conversation.sync, entry: .file("lie.txt", size: 3, sha256: sha)))
                conversation.sendData(Array("abc".utf8)[...])
            }),
        ]
        for (code, send) in cases {
            conversation = client.openSync()
            replies = conversation.replies.makeAsyncIterator()
            conversation.send(.begin(SyncBegin(sync: conversation.sync, root: root, ignores: [], snapshotId: expected.rootHash)))
            guard case .state(_, let current, _) = try await reply(&replies) else { return XCTFail("no state") }
            XCTAssertEqual(current, expected.rootHash, "the tree as synced before")
            send(conversation)
            conversation.send(.commit(sync: conversation.sync))
            guard case .failed(_, let got, let message) = try await reply(&replies) else { return XCTFail("\(code) not refused") }
            XCTAssertEqual(got, code, message)
            conversation.close()
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: temporary.file("outside").path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/lie.txt"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root).sorted(), ["link", "src"])

        // A commit for a sync never begun is answered, and the helper still serves.
        conversation = client.openSync()
        replies = conversation.replies.makeAsyncIterator()
        conversation.send(.commit(sync: conversation.sync))
        guard case .failed(_, "unknown-sync", _) = try await reply(&replies) else { return XCTFail("unknown sync not answered") }
        _ = try await client.probe(timeout: .seconds(5))
        await client.close()
    }
}
