import AHQUIC
import AHSPIFFE
import Foundation
import XCTest

/// QUIC credentials load through the shared GnuTLS layer (AHGnuTLS): each bad input is
/// named, with GnuTLS's error name, and a good identity yields its own SPIFFE ID.
final class CredentialErrorTests: XCTestCase {
    private var fixture: QUICFixture!

    override func setUpWithError() throws {
        fixture = try QUICFixture()
    }

    override func tearDown() {
        fixture.shutdown()
        fixture = nil
    }

    private func failure(cert: String, key: String, ca: String) -> String {
        do {
            _ = try TLSCredentials(TLSIdentity(certFile: cert, keyFile: key, caFile: ca))
            return "no error"
        } catch let error as QUICError {
            guard case .credentials = error else { return "not a credentials error: \(error)" }
            return "\(error)"
        } catch {
            return "not a QUICError: \(error)"
        }
    }

    func testEachBadInputIsNamedWithGnuTLSErrorName() throws {
        let server = fixture.serverFiles
        let client = fixture.clientFiles

        var text = failure(cert: server.keyPath, key: server.keyPath, ca: server.caPath)
        XCTAssertTrue(text.contains("certificate chain") && text.contains("(GNUTLS_E_"), text)

        text = failure(cert: server.certPath, key: server.certPath, ca: server.caPath)
        XCTAssertTrue(text.contains("private key") && text.contains("(GNUTLS_E_"), text)

        // Both parse, but the client's key does not belong to the server's certificate.
        text = failure(cert: server.certPath, key: client.keyPath, ca: server.caPath)
        XCTAssertTrue(text.contains("certificate and private key together") && text.contains("(GNUTLS_E_"), text)

        // A private key is no CA certificate: the bundle trusts nobody.
        text = failure(cert: server.certPath, key: server.keyPath, ca: server.keyPath)
        XCTAssertTrue(text.contains("trust bundle") && text.contains("(GNUTLS_E_"), text)
    }

    func testGoodIdentityLoadsAndNamesItself() throws {
        let credentials = try TLSCredentials(fixture.identity(fixture.serverFiles))
        XCTAssertGreaterThan(credentials.trustedCACount, 0)
        XCTAssertEqual(credentials.localSPIFFEID(), fixture.serverID)
    }
}
