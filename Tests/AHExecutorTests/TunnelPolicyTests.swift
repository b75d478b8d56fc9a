import AHControl
import AHExecutor
import XCTest

/// What tunnels may reach: 22 always means the sshd at --ssh-dst (wherever it listens),
/// other ports only when allow-listed, nothing at all when ssh is disabled and nothing else
/// is listed.
final class TunnelPolicyTests: XCTestCase {
    let sshd = TunnelPolicy.Destination(host: "127.0.0.1", port: 2222)

    func testPort22GoesToTheSSHDestination() {
        let policy = TunnelPolicy(sshEnabled: true, sshDestination: sshd)
        XCTAssertEqual(try policy.destination(forPort: 22).get(), sshd)
    }

    func testPort22IsRefusedWhenSSHIsDisabled() {
        let policy = TunnelPolicy(sshEnabled: false, sshDestination: sshd)
        guard case .failure(let refusal) = policy.destination(forPort: 22) else { return XCTFail() }
        XCTAssertEqual(refusal.code, .sshDisabled)
        XCTAssertTrue(refusal.message.contains("--ssh disabled"), refusal.message)
    }

    func testAllowListedPortsGoToTheirDestinationAndOthersAreRefused() {
        let web = TunnelPolicy.Destination(host: "10.0.0.5", port: 8080)
        let db = TunnelPolicy.Destination(host: "127.0.0.1", port: 5432)
        let policy = TunnelPolicy(sshEnabled: false, sshDestination: sshd, allowed: [web, db])
        XCTAssertEqual(try policy.destination(forPort: 8080).get(), web)
        XCTAssertEqual(try policy.destination(forPort: 5432).get(), db)
        XCTAssertEqual(policy.allowedPorts, [5432, 8080])
        for port in [2222, 23, 80, 65535] {
            guard case .failure(let refusal) = policy.destination(forPort: port) else { return XCTFail("port \(port)") }
            XCTAssertEqual(refusal.code, .notAllowed, "port \(port)")
            XCTAssertTrue(refusal.message.contains("port \(port)"), refusal.message)
        }
    }

    func testTheSSHDestinationsOwnPortIsNotImplicitlyAllowed() {
        // --ssh-dst 127.0.0.1:2222 makes 22 reach it; 2222 itself is not a second way in.
        let policy = TunnelPolicy(sshEnabled: true, sshDestination: sshd)
        guard case .failure(let refusal) = policy.destination(forPort: 2222) else { return XCTFail() }
        XCTAssertEqual(refusal.code, .notAllowed)
    }

    func testDestinationsPrintAsHostPort() {
        XCTAssertEqual("\(TunnelPolicy.Destination(host: "127.0.0.1", port: 22))", "127.0.0.1:22")
        XCTAssertEqual("\(TunnelPolicy.Destination(host: "::1", port: 22))", "[::1]:22")
    }
}
