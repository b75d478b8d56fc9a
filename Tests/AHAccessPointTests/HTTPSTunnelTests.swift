import AHTestSupport
import Foundation
import XCTest

/// `ah serve --http-tls-cert/--http-tls-key`: the REST API and CONNECT over TLS (GnuTLS), used
/// by `ah executors list` and `ah connect` with https:// URLs and --ca-file.
final class HTTPSTunnelTests: XCTestCase {
    var fixture: TunnelFixture!

    override func tearDown() async throws {
        await fixture?.stop()
    }

    /// A CA and a server certificate for localhost / 127.0.0.1, made with certtool.
    private func makeCertificates(in directory: TemporaryDirectory) async throws -> (ca: String, cert: String, key: String) {
        let certtool = URL(fileURLWithPath: "/usr/bin/certtool")
        try Requirement.check(FileManager.default.isExecutableFile(atPath: certtool.path), "needs certtool (gnutls-bin, installed by .ci/run)")
        func file(_ name: String) -> String { directory.file(name).path }
        func run(_ arguments: [String]) async throws {
            let result = try await ProcessRunner.run(certtool, arguments)
            XCTAssertEqual(result.exit, .exited(0), result.transcript)
        }
        try "cn = test CA\nca\ncert_signing_key\nexpiration_days = 2\n".write(toFile: file("ca.tmpl"), atomically: true, encoding: .utf8)
        try "cn = localhost\ndns_name = localhost\nip_address = 127.0.0.1\ntls_www_server\nexpiration_days = 2\n"
            .write(toFile: file("server.tmpl"), atomically: true, encoding: .utf8)
        try await run(["--generate-privkey", "--key-type", "ecdsa", "--outfile", file("ca-key.pem")])
        try await run(["--generate-self-signed", "--load-privkey", file("ca-key.pem"), "--template", file("ca.tmpl"), "--outfile", file("ca.pem")])
        try await run(["--generate-privkey", "--key-type", "ecdsa", "--outfile", file("server-key.pem")])
        try await run(["--generate-certificate", "--load-privkey", file("server-key.pem"), "--load-ca-certificate", file("ca.pem"),
                       "--load-ca-privkey", file("ca-key.pem"), "--template", file("server.tmpl"), "--outfile", file("server.pem")])
        return (file("ca.pem"), file("server.pem"), file("server-key.pem"))
    }

    func testSSHAndListingOverHTTPS() async throws {
        try Requirement.sshd()
        let certificates = try TemporaryDirectory(prefix: "ah-https")
        let (ca, cert, key) = try await makeCertificates(in: certificates)
        fixture = try TunnelFixture(serveArguments: ["--http-tls-cert", cert, "--http-tls-key", key])
        try await fixture.start()
        try await fixture.addExecutor("node1")
        let token = try await fixture.userToken()
        let url = "https://localhost:\(fixture.serve.httpPort)"

        let list = try await ah(["executors", "list", "--remote-server", url, "--token", token.jwt, "--ca-file", ca, "--json"])
        XCTAssertEqual(list.exit, .exited(0), list.transcript)
        XCTAssertTrue(list.stdoutString.contains("\"node1\""), list.stdoutString)
        // Without the CA the server is not trusted: not reachable (exit 3), nothing sent.
        let untrusted = try await ah(["executors", "list", "--remote-server", url, "--token", token.jwt])
        XCTAssertEqual(untrusted.exit, .exited(3), untrusted.transcript)
        // Plain HTTP to the TLS port does not get an answer.
        let plain = try await ah(["executors", "list", "--remote-server", "http://127.0.0.1:\(fixture.serve.httpPort)", "--token", token.jwt])
        XCTAssertNotEqual(plain.exit, .exited(0), plain.transcript)

        let daemon = fixture.daemons["node1"]!
        let proxy = "\(try BuiltProducts.ah().path) connect %h --remote-server \(url) --token-file \(token.file) --ca-file \(ca)"
        let ssh = try await ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/ssh"), daemon.clientOptions + [
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "ProxyCommand=\(proxy)",
            "root@node1", "echo over-tls; exit 3"])
        XCTAssertEqual(ssh.exit, .exited(3), ssh.transcript)
        XCTAssertEqual(ssh.stdoutString, "over-tls\n")
    }
}
