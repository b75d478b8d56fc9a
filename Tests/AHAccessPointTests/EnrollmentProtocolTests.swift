import AHAccessPoint
import AHControl
import AHExecutor
import AHIdentity
import AHQUIC
import AHSPIFFE
import AHStore
import AHTestSupport
import Crypto
import Foundation
import Logging
import NIOCore
import NIOPosix
import SwiftASN1
import X509
import XCTest

/// The enrollment protocol against an in-process access point, with requests no honest
/// `ah agent enroll` would send: tampered CSRs, CSRs asking for other SANs, oversized
/// frames, certificates from another trust domain.
final class EnrollmentProtocolTests: XCTestCase {
    var directory: TemporaryDirectory!
    var server: AccessPointServer!
    let group = MultiThreadedEventLoopGroup.singleton

    override func setUp() async throws {
        directory = try TemporaryDirectory(prefix: "ah-enroll-proto")
        var configuration = AccessPointServer.Configuration(dataDirectory: directory.file("data").path)
        configuration.quicHost = "127.0.0.1"
        configuration.quicPort = 0
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        server = try await AccessPointServer.start(configuration, group: group, logger: logger)
    }

    override func tearDown() async throws {
        await server.close()
    }

    private func token(uses: Int = 1) async throws -> String {
        let minted = JoinTokens.mint()
        try await server.store.createJoinToken(id: minted.id, hash: minted.hash, expiresAt: Date().addingTimeInterval(600),
                                               uses: uses, tags: [:], now: Date())
        return minted.token
    }

    private func enrollmentConnection() async throws -> QUICConnection {
        var configuration = QUICConfiguration(identity: TLSIdentity(certificateChain: nil, privateKey: nil, trustBundle: nil),
                                              peerPolicy: .anyOf([]))
        configuration.alpn = enrollmentALPN
        let pin = try Enroller.parsePin(server.dataDirectory.caPin)
        configuration.trust = .pinnedCA(sha256: pin, expectedPath: "/ah/serve")
        return try await QUICClient.connect(to: server.quicAddress, configuration: configuration, group: group)
    }

    private func exchange(_ request: EnrollRequest) async throws -> EnrollResponse {
        let connection = try await enrollmentConnection()
        defer { connection.close() }
        let promise = connection.eventLoop.makePromise(of: EnrollResponse.self)
        _ = try await connection.openStream { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(FrameRequester<EnrollRequest, EnrollResponse>(request: request, promise: promise))
            }
        }.get()
        return try await promise.futureResult.get()
    }

    func testHonestRequestGetsAnSVIDWithExactlyTheServersChoiceOfSAN() async throws {
        let key = P256.Signing.PrivateKey()
        // The CSR asks for other SANs (the access point's own ID and a DNS name): ignored.
        let extensions = try Certificate.Extensions {
            SubjectAlternativeNames([.uniformResourceIdentifier("spiffe://example.org/ah/serve"), .dnsName("evil.example")])
        }
        let csr = try CertificateSigningRequest(
            version: .v1, subject: try DistinguishedName { CommonName("node7") },
            privateKey: Certificate.PrivateKey(key),
            attributes: CertificateSigningRequest.Attributes([try .init(ExtensionRequest(extensions: extensions))]),
            signatureAlgorithm: .ecdsaWithSHA256)
        let pem = try csr.serializeAsPEM().pemString
        let response = try await exchange(EnrollRequest(token: try await token(), name: "node7", csr: pem, tags: [:]))
        XCTAssertTrue(response.ok, "\(response)")
        let leaf = try Certificate(pemEncoded: try XCTUnwrap(response.certificate))
        XCTAssertEqual(try leaf.uriSANs(), ["spiffe://example.org/ah/agent/node7"])
        let names = try leaf.extensions.subjectAlternativeNames.map(Array.init) ?? []
        XCTAssertEqual(names.count, 1, "only the URI SAN the server chose")
        XCTAssertEqual(leaf.publicKey, Certificate.PublicKey(key.publicKey), "issued for the key in the CSR")
        XCTAssertEqual(try leaf.extensions.basicConstraints, .notCertificateAuthority)
    }

    func testCSRWhoseSignatureDoesNotMatchItsKeyIsRefusedAndTheTokenKept() async throws {
        let token = try await token()
        let genuine = try CSR.make(privateKey: P256.Signing.PrivateKey(), commonName: "n")
        let tampered = try tamperSignature(genuine)
        let response = try await exchange(EnrollRequest(token: token, name: "n", csr: tampered, tags: [:]))
        XCTAssertFalse(response.ok)
        XCTAssertEqual(response.error, "csr-invalid")
        // Nothing changed: the token still enrolls an honest request.
        let honest = try await exchange(EnrollRequest(token: token, name: "n", csr: genuine, tags: [:]))
        XCTAssertTrue(honest.ok, "\(honest)")
        let history = try await server.store.history(limit: 10)
        XCTAssertTrue(history.contains { $0.kind == .refused && $0.detail.contains("csr-invalid") })
    }

    func testOversizedEnrollmentFrameIsCutOffWithoutAnswer() async throws {
        let connection = try await enrollmentConnection()
        defer { connection.close() }
        let closed = connection.eventLoop.makePromise(of: Void.self)
        final class Flood: ChannelInboundHandler {
            typealias InboundIn = ByteBuffer
            let closed: EventLoopPromise<Void>
            var answered = false
            init(_ closed: EventLoopPromise<Void>) { self.closed = closed }
            func channelActive(context: ChannelHandlerContext) {
                var buffer = context.channel.allocator.buffer(capacity: 4)
                buffer.writeInteger(UInt32(10 * 1024 * 1024))  // announces 10 MiB
                buffer.writeRepeatingByte(0x7b, count: 70_000)
                context.writeAndFlush(NIOAny(buffer), promise: nil)
            }
            func channelRead(context: ChannelHandlerContext, data: NIOAny) { answered = true }
            func channelInactive(context: ChannelHandlerContext) {
                if answered { closed.fail(ChannelError.ioOnClosedChannel) } else { closed.succeed(()) }
            }
            func errorCaught(context: ChannelHandlerContext, error: Error) {}
        }
        _ = try await connection.openStream { stream in
            stream.eventLoop.makeCompletedFuture { try stream.pipeline.syncOperations.addHandler(Flood(closed)) }
        }.get()
        try await closed.futureResult.get()  // the server stopped the stream and sent nothing back
    }

    func testCertificateFromAnotherTrustDomainIsRefused() async throws {
        let authority = try TestCertificates.authority(in: directory.file("other"), trustDomain: "other.example")
        let files = try authority.valid(try SPIFFEID(parsing: "spiffe://other.example/ah/agent/x"), name: "x")
        var configuration = QUICConfiguration(
            identity: TLSIdentity(certFile: files.certPath, keyFile: files.keyPath, caFile: server.dataDirectory.caCertificatePath),
            peerPolicy: .exact(try SPIFFEID.accessPoint(trustDomain: server.dataDirectory.trustDomain)))
        configuration.alpn = controlALPN
        do {
            let connection = try await QUICClient.connect(to: server.quicAddress, configuration: configuration, group: group)
            connection.close()
            XCTFail("a certificate from another trust domain must be refused")
        } catch {
            XCTAssertTrue("\(error)".contains("spiffe://other.example/ah/agent/x"), "\(error)")
        }
    }

    /// Flips one bit in the CSR's signature.
    private func tamperSignature(_ pem: String) throws -> String {
        var der = try PEMDocument(pemString: pem).derBytes
        der[der.count - 5] ^= 0x01
        return PEMDocument(type: "CERTIFICATE REQUEST", derBytes: der).pemString
    }
}
