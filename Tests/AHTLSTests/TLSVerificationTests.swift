// What the client refuses (unknown issuer, wrong name, wrong IP) and how bad credential
// files are reported.

import AHTLS
import AHTestSupport
import NIOCore
import NIOPosix
import XCTest

final class TLSVerificationTests: TLSTestCase {
    /// Connects a client that trusts the test root to a server presenting `certificate`, and
    /// returns the client's handshake outcome (waiting for the close when it fails).
    private func clientHandshake(certificate: String, key: String, serverName: String) async throws -> Result<TLSHandshakeCompleted, Error> {
        let server = try TLSServerContext(certificateChainFile: certificate, privateKeyFile: key)
        let client = try TLSClientContext(caFile: pki.caPath)
        let port = try await harness.startServer { _ in [GnuTLSHandler.server(context: server), EchoHandler()] }
        let handshake = harness.makePromise(TLSHandshakeCompleted.self, "client handshake")
        let channel = try await harness.connect(port: port) { _ in
            [GnuTLSHandler.client(context: client, serverName: serverName), HandshakeWatcher(done: handshake)]
        }
        do {
            return .success(try await handshake.futureResult.get())
        } catch {
            try await channel.closeFuture.get()  // a refused handshake closes the channel
            return .failure(error)
        }
    }

    private func assertVerificationFailure(_ result: Result<TLSHandshakeCompleted, Error>,
                                           file: StaticString = #filePath, line: UInt = #line) {
        switch result {
        case .success:
            XCTFail("handshake succeeded", file: file, line: line)
        case .failure(let error):
            guard case TLSError.certificateVerificationFailed(let reason) = error else {
                return XCTFail("expected certificateVerificationFailed, got \(error)", file: file, line: line)
            }
            XCTAssertFalse(reason.isEmpty, file: file, line: line)
            print("refused as expected: \(error)")
        }
    }

    func testRefusesServerFromAnotherCA() async throws {
        assertVerificationFailure(try await clientHandshake(
            certificate: pki.otherCAServerCertPath, key: pki.otherCAServerKeyPath, serverName: "localhost"))
    }

    func testRefusesNameMismatch() async throws {
        assertVerificationFailure(try await clientHandshake(
            certificate: pki.serverCertPath, key: pki.serverKeyPath, serverName: "wrong.example"))
    }

    func testVerifiesIPLiteralAgainstIPSAN() async throws {
        let good = try await clientHandshake(certificate: pki.serverCertPath, key: pki.serverKeyPath, serverName: "127.0.0.1")
        XCTAssertEqual(try good.get().version, "TLS1.3")
        assertVerificationFailure(try await clientHandshake(
            certificate: pki.serverCertPath, key: pki.serverKeyPath, serverName: "127.0.0.2"))
    }

    func testBadFilesAreNamed() throws {
        func message(_ body: () throws -> Any) -> String {
            do {
                _ = try body()
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        let missing = pki.directory.file("missing.pem").path

        var text = message { try TLSServerContext(certificateChainFile: missing, privateKeyFile: self.pki.serverKeyPath) }
        XCTAssertTrue(text.contains(missing) && text.contains("certificate"), text)

        text = message { try TLSServerContext(certificateChainFile: self.pki.serverCertPath, privateKeyFile: missing) }
        XCTAssertTrue(text.contains(missing) && text.contains("private key"), text)

        // A key where the chain should be.
        text = message { try TLSServerContext(certificateChainFile: self.pki.serverKeyPath, privateKeyFile: self.pki.serverKeyPath) }
        XCTAssertTrue(text.contains(pki.serverKeyPath) && text.contains("certificate chain"), text)

        // A certificate where the key should be.
        text = message { try TLSServerContext(certificateChainFile: self.pki.serverCertPath, privateKeyFile: self.pki.serverCertPath) }
        XCTAssertTrue(text.contains("private key"), text)

        // Both valid, but not a pair.
        text = message { try TLSServerContext(certificateChainFile: self.pki.serverCertPath, privateKeyFile: self.pki.otherCAServerKeyPath) }
        XCTAssertTrue(text.contains(pki.serverCertPath) && text.contains(pki.otherCAServerKeyPath), text)

        text = message { try TLSClientContext(caFile: missing) }
        XCTAssertTrue(text.contains(missing), text)

        text = message { try TLSClientContext(caFile: self.pki.serverKeyPath) }
        XCTAssertTrue(text.contains(pki.serverKeyPath), text)
        print("bad-file messages look like: \(text)")
    }

    func testSystemTrustLoads() throws {
        do {
            let context = try TLSClientContext(caFile: nil)
            XCTAssertGreaterThan(context.trustedCertificateCount, 0)
        } catch let error as TLSError {
            throw XCTSkip("no system trust store here: \(error)")
        }
    }
}
