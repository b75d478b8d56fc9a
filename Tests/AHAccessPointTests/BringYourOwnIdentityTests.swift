import AHIdentity
import AHSPIFFE
import AHTestSupport
import Foundation
import XCTest

/// `ah agent enroll --identity files`: PEM files from the operator's own tooling (here:
/// issued by the access point's CA directly), with the same peer checks, reloaded when
/// they change.
final class BringYourOwnIdentityTests: XCTestCase {
    func testFilesIdentityConnectsIsListedAndIsReloadedWhenRotated() async throws {
        let directory = try TemporaryDirectory(prefix: "ah-byo")
        let serve = try await ServeProcess.start(dataDir: directory.file("data").path)
        defer { Task { await serve.stop() } }
        let ca = try CertificateAuthority(
            certificate: try PEMFile.readCertificate(from: URL(fileURLWithPath: serve.dataDir + "/ca.pem")),
            privateKey: try PEMFile.readPrivateKey(from: URL(fileURLWithPath: serve.dataDir + "/ca-key.pem")))
        let id = try SPIFFEID(parsing: "spiffe://example.org/ah/agent/byo")
        let pki = directory.file("pki")
        try FileManager.default.createDirectory(at: pki, withIntermediateDirectories: true)
        let files = try DevIdentity.write(ca: ca, id: id, in: pki, basename: "byo", notAfter: Date().addingTimeInterval(3600))

        let agent = try await startAgent(["--remote-server", serve.remote, "--state-dir", directory.file("state").path,
                                          "--name", "byo", "--identity", "files", "--cert-file", files.certPath,
                                          "--key-file", files.keyPath, "--ca-file", files.caPath])
        defer { Task { _ = await agent.terminate(grace: 3) } }
        let listed = try await executorsJSON(serve)
        XCTAssertEqual(listed.first { $0["name"] as? String == "byo" }?["state"] as? String, "connected")

        // Rotate: a new key and certificate written over the same paths.
        _ = try DevIdentity.write(ca: ca, id: id, in: pki, basename: "byo", notAfter: Date().addingTimeInterval(7200))
        try await agent.waitForStderr(containing: "identity files changed", timeout: 10)
        try await agent.waitForStderr(containing: "connections=2", timeout: 30)
        try await serve.process.waitForStderr(containing: "bring-your-own certificate rotated", timeout: 10)
    }

    func testFilesIdentityFromAnotherCAIsRefused() async throws {
        let directory = try TemporaryDirectory(prefix: "ah-byo-foreign")
        let serve = try await ServeProcess.start(dataDir: directory.file("data").path)
        defer { Task { await serve.stop() } }
        let authority = try TestCertificates.authority(in: directory.file("foreign"))
        let files = try authority.valid(try SPIFFEID(parsing: "spiffe://example.org/ah/agent/stranger"), name: "stranger")
        let result = try await ah(["agent", "enroll", "--remote-server", serve.remote, "--state-dir", directory.file("s").path,
                                   "--name", "stranger", "--identity", "files", "--cert-file", files.certPath,
                                   "--key-file", files.keyPath, "--ca-file", serve.dataDir + "/ca.pem", "--max-retries", "0"])
        XCTAssertEqual(result.exit, .exited(3), result.transcript)
        XCTAssertTrue(result.stderrString.contains("not trusted"), result.stderrString)
    }

    func testFilesIdentityNeedsAllThreeFiles() async throws {
        let result = try await ah(["agent", "enroll", "--remote-server", "quic://127.0.0.1:1", "--state-dir", "/tmp/x",
                                   "--name", "n", "--identity", "files", "--cert-file", "/nonexistent.pem"])
        XCTAssertEqual(result.exit, .exited(2), result.transcript)
        XCTAssertEqual(result.stderrString.split(separator: "\n").count, 1, result.stderrString)
    }
}
