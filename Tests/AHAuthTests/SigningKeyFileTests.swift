@testable import AHAuth
import AHTestSupport
import Foundation
import XCTest

final class SigningKeyFileTests: XCTestCase {
    func testKeyIsCreatedWithMode0600AndReused() async throws {
        let directory = try TemporaryDirectory(prefix: "ah-jwtkey")
        let path = directory.file("jwt-signing-key.pem").path
        let first = try await UserTokenAuthority.loadOrCreate(dataDirectory: directory.path)
        XCTAssertEqual(first.keyPath, path)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600)
        let pem = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(pem.contains("PRIVATE KEY"))
        // No temp files are left behind.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["jwt-signing-key.pem"])

        let token = try await first.mint(subject: "alice", role: .viewer, ttl: 600)
        let second = try await UserTokenAuthority.loadOrCreate(dataDirectory: directory.path)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), pem, "the second load must not replace the key")
        let viaSecond = try await second.verify(token)
        XCTAssertEqual(viaSecond.subject, "alice")
        let loaded = try await UserTokenAuthority.load(dataDirectory: directory.path)
        let viaLoaded = try await loaded.verify(token)
        XCTAssertEqual(viaLoaded.subject, "alice")
    }

    func testConcurrentFirstStartsAgreeOnOneKey() async throws {
        let directory = try TemporaryDirectory(prefix: "ah-jwtkey")
        let authorities = try await withThrowingTaskGroup(of: UserTokenAuthority.self) { group in
            for _ in 0..<8 { group.addTask { try await UserTokenAuthority.loadOrCreate(dataDirectory: directory.path) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let token = try await authorities[0].mint(subject: "alice", role: .viewer, ttl: 600)
        for authority in authorities {
            let claims = try await authority.verify(token)
            XCTAssertEqual(claims.subject, "alice")
        }
    }

    func testLoadWithoutKeyNamesTheFix() async throws {
        let directory = try TemporaryDirectory(prefix: "ah-jwtkey")
        do {
            _ = try await UserTokenAuthority.load(dataDirectory: directory.path)
            XCTFail("loaded a key that does not exist")
        } catch {
            XCTAssertEqual("\(error)", "no signing key in \(directory.path); start `ah serve --data-dir \(directory.path)` once")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.file("jwt-signing-key.pem").path), "load never creates")
    }

    func testMissingDirectoryIsAnError() async throws {
        let directory = try TemporaryDirectory(prefix: "ah-jwtkey")
        let missing = directory.file("nope").path
        do {
            _ = try await UserTokenAuthority.loadOrCreate(dataDirectory: missing)
            XCTFail("created a key in a directory that does not exist")
        } catch {
            XCTAssertTrue("\(error)".contains("does not exist"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: missing))
    }

    func testKeyReadableByOthersIsRefused() async throws {
        let directory = try TemporaryDirectory(prefix: "ah-jwtkey")
        _ = try await UserTokenAuthority.loadOrCreate(dataDirectory: directory.path)
        let path = directory.file("jwt-signing-key.pem").path
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        do {
            _ = try await UserTokenAuthority.load(dataDirectory: directory.path)
            XCTFail("loaded a world-readable key")
        } catch {
            XCTAssertTrue("\(error)".contains("chmod 600"), "\(error)")
        }
    }

    func testGarbageKeyFileIsRefused() async throws {
        let directory = try TemporaryDirectory(prefix: "ah-jwtkey")
        let path = directory.file("jwt-signing-key.pem").path
        _ = FileManager.default.createFile(atPath: path, contents: Data("hello".utf8), attributes: [.posixPermissions: 0o600])
        do {
            _ = try await UserTokenAuthority.load(dataDirectory: directory.path)
            XCTFail("loaded garbage")
        } catch {
            XCTAssertTrue("\(error)".contains("not a PEM P-256 private key"), "\(error)")
        }
    }
}
