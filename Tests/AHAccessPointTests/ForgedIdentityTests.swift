import AHIdentity
import AHQUIC
import AHSPIFFE
import AHTestSupport
import Foundation
import NIOPosix
import XCTest

/// A certificate that claims an enrolled executor's SPIFFE ID but is not signed by the
/// access point's CA is refused during the handshake.
final class ForgedIdentityTests: XCTestCase {
    func testSelfSignedCertificateWithAnEnrolledIDIsRefused() async throws {
        let directory = try TemporaryDirectory(prefix: "ah-forged")
        let serve = try await ServeProcess.start(dataDir: directory.file("data").path)
        defer { Task { await serve.stop() } }
        let token = try await tokenCreate(serve)
        let enrolled = try await ah(["agent", "enroll", "--enroll-only", "--remote-server", serve.remote, "--state-dir",
                                     directory.file("agent").path, "--name", "node1", "--token", token, "--ca-pin", serve.pin])
        XCTAssertEqual(enrolled.exit, .exited(0), enrolled.transcript)

        let authority = try TestCertificates.authority(in: directory.file("forge"))
        let forged = try authority.selfSigned(try SPIFFEID(parsing: "spiffe://example.org/ah/agent/node1"), name: "forged")
        var configuration = QUICConfiguration(
            identity: TLSIdentity(certFile: forged.certPath, keyFile: forged.keyPath, caFile: serve.dataDir + "/ca.pem"),
            peerPolicy: .exact(try SPIFFEID(parsing: "spiffe://example.org/ah/serve")))
        configuration.alpn = "ah/1"
        let group = MultiThreadedEventLoopGroup.singleton
        do {
            let connection = try await QUICClient.connect(host: "127.0.0.1", port: serve.quicPort, configuration: configuration, group: group)
            connection.close()
            XCTFail("a forged certificate must be refused")
        } catch {
            XCTAssertTrue("\(error)".contains("not trusted"), "\(error)")
        }
        try await serve.process.waitForStderr(containing: "spiffe://example.org/ah/agent/node1 not trusted", timeout: 5)
    }
}
