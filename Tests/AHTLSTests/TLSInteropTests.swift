// GnuTLSHandler against other TLS stacks: curl and `openssl s_client` (OpenSSL) as clients
// of the server side, `openssl s_server` as the server of the client side.

import AHTLS
import AHTestSupport
import NIOCore
import NIOPosix
import XCTest

final class TLSInteropTests: TLSTestCase {
    private func tool(_ name: String) throws -> URL {
        guard let url = Executables.find(name, alsoIn: ["/usr/bin"]) else { throw XCTSkip("\(name) is not installed") }
        return url
    }

    /// A server answering every request with TinyHTTPResponder behind GnuTLSHandler.server.
    private func startHTTPSServer() async throws -> Int {
        let server = try TLSServerContext(certificateChainFile: pki.serverCertPath, privateKeyFile: pki.serverKeyPath)
        return try await harness.startServer { _ in
            [GnuTLSHandler.server(context: server, alpn: ["http/1.1"]), TinyHTTPResponder()]
        }
    }

    private func curl(versionFlags: [String]) async throws {
        let curl = try tool("curl")
        let port = try await startHTTPSServer()
        let result = try await ProcessRunner.run(curl, [
            "--silent", "--show-error", "--fail", "--max-time", "30",
            "--cacert", pki.caPath, "--resolve", "localhost:\(port):127.0.0.1",
        ] + versionFlags + ["https://localhost:\(port)/"], timeout: 60)
        XCTAssertTrue(result.exit.succeeded, result.transcript)
        XCTAssertEqual(result.stdoutString, TinyHTTPResponder.body, result.transcript)
    }

    func testCurlOverTLS13() async throws {
        try await curl(versionFlags: ["--tlsv1.3"])
    }

    func testCurlOverTLS12() async throws {
        try await curl(versionFlags: ["--tlsv1.2", "--tls-max", "1.2"])
    }

    func testOpenSSLClient() async throws {
        let openssl = try tool("openssl")
        let port = try await startHTTPSServer()
        for version in ["-tls1_3", "-tls1_2"] {
            // -quiet implies -ign_eof: s_client sends the request, then prints the answer until
            // the server closes.
            let result = try await ProcessRunner.run(openssl, [
                "s_client", "-quiet", version, "-connect", "127.0.0.1:\(port)", "-servername", "localhost",
                "-CAfile", pki.caPath, "-verify_return_error", "-verify_hostname", "localhost",
            ], stdin: Data("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8), timeout: 60)
            XCTAssertTrue(result.exit.succeeded, result.transcript)
            XCTAssertTrue(result.stdoutString.hasPrefix("HTTP/1.1 200 OK\r\n"), result.transcript)
            XCTAssertTrue(result.stdoutString.hasSuffix(TinyHTTPResponder.body), result.transcript)
        }
    }

    func testTLS12RenegotiationIsRefused() async throws {
        let gnutlsCLI = try tool("gnutls-cli")
        let server = try TLSServerContext(certificateChainFile: pki.serverCertPath, privateKeyFile: pki.serverKeyPath)
        let serverError = harness.makePromise(Error.self, "the server to refuse the renegotiation")
        let port = try await harness.startServer { _ in
            [GnuTLSHandler.server(context: server), FirstError(serverError)]
        }
        // --rehandshake: handshake, then immediately a second (renegotiation) handshake.
        let result = try await ProcessRunner.run(gnutlsCLI, [
            "--rehandshake", "--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.2",
            "--x509cafile", pki.caPath, "-p", "\(port)", "127.0.0.1",
        ], timeout: 60)
        let error = try await serverError.futureResult.get()
        guard case TLSError.renegotiationRefused = error else {
            return XCTFail("expected renegotiationRefused, got \(error)\n\(result.transcript)")
        }
        XCTAssertTrue(result.stdoutString.contains("ReHandshake has failed")
                      || result.stderrString.contains("ReHandshake has failed"), result.transcript)
    }

    func testClientAgainstOpenSSLServer() async throws {
        let openssl = try tool("openssl")
        let port = try Ports.freePort(.tcp)
        // -www answers "GET /" with a status page and closes; OpenSSL also sends two TLS 1.3
        // session tickets after the handshake, which the client must digest.
        let (process, _) = try await ProcessRunner.startAndAwait(openssl, [
            "s_server", "-accept", "127.0.0.1:\(port)", "-cert", pki.serverCertPath, "-key", pki.serverKeyPath,
            "-www", "-naccept", "1",
        ], linePrefix: "ACCEPT")
        defer { process.send(signal: SIGKILL) }

        let client = try TLSClientContext(caFile: pki.caPath)
        let handshake = harness.makePromise(TLSHandshakeCompleted.self, "handshake with openssl s_server")
        let response = harness.makePromise(ByteBuffer.self, deadline: 30, "response from openssl s_server")
        _ = try await harness.connect(port: Int(port)) { _ in
            [GnuTLSHandler.client(context: client, serverName: "localhost"), HandshakeWatcher(done: handshake),
             Collector(request: ByteBuffer(string: "GET / HTTP/1.0\r\n\r\n"), done: response)]
        }
        let info = try await handshake.futureResult.get()
        XCTAssertEqual(info.version, "TLS1.3")
        let text: String
        do {
            text = String(buffer: try await response.futureResult.get())
        } catch {
            throw TestFailure.closedEarly("\(error)\n\(process.transcript)")
        }
        XCTAssertTrue(text.hasPrefix("HTTP/1.0 200 ok"), "\(text)\n\(process.transcript)")
    }
}
