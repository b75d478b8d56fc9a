import AHIdentity
import AHQUIC
import AHSPIFFE
import NIOCore
import XCTest

/// Every refusal case of mutual TLS: refused during the handshake, reason logged and
/// reported (naming the presented ID where there is one), nothing leaked, and the server
/// stays healthy for the next valid peer.
final class PeerVerificationTests: XCTestCase {
    var fixture: QUICFixture!

    override func setUpWithError() throws { fixture = try QUICFixture() }
    override func tearDown() { fixture.shutdown() }

    /// Client presents `clientIdentity`; the server must refuse it with a reason containing
    /// every string in `serverReason`.
    private func assertServerRefuses(_ clientIdentity: TLSIdentity, serverReason: [String],
                                     file: StaticString = #filePath, line: UInt = #line) async throws {
        let server = try await fixture.startServer()
        var configuration = fixture.clientConfiguration()
        configuration.identity = clientIdentity
        do {
            let connection = try await fixture.connect(to: server, configuration)
            XCTFail("connection should have been refused, got \(connection)", file: file, line: line)
        } catch {
            // The client learns it was refused (the server's CONNECTION_CLOSE).
            XCTAssertTrue("\(error)".contains("closed by peer") || "\(error)".contains("handshake"), "\(error)", file: file, line: line)
        }
        let event = await server.events.first { if case .refused = $0 { return true } else { return false } }
        guard case .refused(let reason, _)? = event else { return XCTFail("no refusal event", file: file, line: line) }
        for fragment in serverReason {
            XCTAssertTrue("\(reason)".contains(fragment), "server reason '\(reason)' lacks '\(fragment)'", file: file, line: line)
        }
        try await assertHealthyAndNotLeaking(server, file: file, line: line)
    }

    private func assertHealthyAndNotLeaking(_ server: QUICServer, file: StaticString, line: UInt) async throws {
        try await withTimeout(10, "refused connection release") { try await server.waitUntilNoConnections() }
        let good = try await fixture.connect(to: server)
        XCTAssertEqual(good.peerIdentity, fixture.serverID, file: file, line: line)
        good.close()
        await server.close()
    }

    func testClientWithoutCertificateIsRefused() async throws {
        let identity = TLSIdentity(certificateChain: nil, privateKey: nil, trustBundle: .file(fixture.authority.caPath))
        try await assertServerRefuses(identity, serverReason: ["ertificate"])
    }

    func testClientFromAnotherCAIsRefused() async throws {
        let files = try fixture.authority.signedByOtherCA(fixture.clientID, name: "otherca")
        try await assertServerRefuses(fixture.identity(files), serverReason: ["spiffe://example.org/ah/agent/dev", "not trusted"])
    }

    func testExpiredClientCertificateIsRefused() async throws {
        let files = try fixture.authority.expired(fixture.clientID, name: "expired")
        try await assertServerRefuses(fixture.identity(files), serverReason: ["spiffe://example.org/ah/agent/dev", "expired"])
    }

    func testNotYetValidClientCertificateIsRefused() async throws {
        let files = try fixture.authority.notYetValid(fixture.clientID, name: "future")
        try await assertServerRefuses(fixture.identity(files), serverReason: ["spiffe://example.org/ah/agent/dev", "not"])
    }

    func testSelfSignedCertificateWithTheSameSPIFFEIDIsRefused() async throws {
        let files = try fixture.authority.selfSigned(fixture.clientID, name: "forged")
        try await assertServerRefuses(fixture.identity(files), serverReason: ["spiffe://example.org/ah/agent/dev", "not trusted"])
    }

    func testClientOutsideThePolicyIsRefusedWithItsID() async throws {
        let outsider = try SPIFFEID(parsing: "spiffe://example.org/ah/serve-impostor")
        let files = try fixture.authority.valid(outsider, name: "outsider")
        try await assertServerRefuses(fixture.identity(files),
                                      serverReason: ["spiffe://example.org/ah/serve-impostor", "not allowed by policy"])
    }

    func testAgentPrefixPolicyDoesNotMatchSiblingPath() async throws {
        let sibling = try SPIFFEID(parsing: "spiffe://example.org/ah/agentx/dev")
        let files = try fixture.authority.valid(sibling, name: "sibling")
        try await assertServerRefuses(fixture.identity(files), serverReason: ["spiffe://example.org/ah/agentx/dev"])
    }

    func testCertificateWithTwoURISANsIsRefused() async throws {
        let second = try SPIFFEID(parsing: "spiffe://example.org/ah/agent/second")
        let files = try fixture.authority.twoURISANs(fixture.clientID, second: second, name: "two")
        try await assertServerRefuses(fixture.identity(files), serverReason: ["2 URI SANs"])
    }

    func testCertificateWithoutURISANIsRefused() async throws {
        let files = try fixture.authority.noURISAN(name: "nosan")
        try await assertServerRefuses(fixture.identity(files), serverReason: ["no URI SAN"])
    }

    func testClientRefusesServerOutsideItsPolicyNamingTheServerID() async throws {
        let server = try await fixture.startServer()
        let expected = try SPIFFEID(parsing: "spiffe://example.org/ah/other-serve")
        do {
            _ = try await fixture.connect(to: server, fixture.clientConfiguration(policy: .exact(expected)))
            XCTFail("client should refuse the server")
        } catch let error as QUICError {
            XCTAssertTrue("\(error)".contains("spiffe://example.org/ah/serve"), "\(error)")
            XCTAssertTrue("\(error)".contains("not allowed by policy"), "\(error)")
        }
        let event = await server.events.first { if case .refused = $0 { return true } else { return false } }
        XCTAssertNotNil(event)
        try await assertHealthyAndNotLeaking(server, file: #filePath, line: #line)
    }

    func testClientRefusesServerFromAnotherCA() async throws {
        let rogue = try fixture.authority.signedByOtherCA(fixture.serverID, name: "rogue-serve")
        var configuration = fixture.serverConfiguration()
        configuration.identity = fixture.identity(rogue)
        let server = try await fixture.startServer(configuration)
        do {
            _ = try await fixture.connect(to: server)
            XCTFail("client should refuse a server from another CA")
        } catch let error as QUICError {
            XCTAssertTrue("\(error)".contains("not trusted"), "\(error)")
            XCTAssertTrue("\(error)".contains("spiffe://example.org/ah/serve"), "\(error)")
        }
        try await withTimeout(10, "release") { try await server.waitUntilNoConnections() }
        await server.close()
    }

    func testALPNMismatchIsRefused() async throws {
        let server = try await fixture.startServer()
        var configuration = fixture.clientConfiguration()
        configuration.alpn = "not-ah"
        do {
            _ = try await fixture.connect(to: server, configuration)
            XCTFail("ALPN mismatch must fail the handshake")
        } catch {
            XCTAssertTrue("\(error)".lowercased().contains("protocol") || "\(error)".contains("alert"), "\(error)")
        }
        try await assertHealthyAndNotLeaking(server, file: #filePath, line: #line)
    }
}
