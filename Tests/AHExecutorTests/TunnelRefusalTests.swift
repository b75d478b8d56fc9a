import AHControl
@testable import AHExecutor
import Logging
import NIOCore
import NIOEmbedded
import XCTest

/// The executor's answer to OpenTCP on an EmbeddedChannel, for the cases decided before any
/// dialling: not allow-listed, ssh disabled, draining, and a malformed request.
final class TunnelRefusalTests: XCTestCase {
    private func opener(_ policy: TunnelPolicy) -> TunnelOpener {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return TunnelOpener(policy: policy, logger: logger)
    }

    private func ask(_ opener: TunnelOpener, port: Int) throws -> (OpenTCPResult?, EmbeddedChannel) {
        let channel = EmbeddedChannel()
        try opener.initialize(channel).wait()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(Frame.encode(OpenTCP(port: port, tunnelID: "t1")))
        guard var out = try channel.readOutbound(as: ByteBuffer.self) else { return (nil, channel) }
        return (try Frame.decode(OpenTCPResult.self, from: &out), channel)
    }

    func testPortNotAllowListedIsRefusedAndClosed() throws {
        let (result, channel) = try ask(opener(TunnelPolicy()), port: 5432)
        XCTAssertEqual(result?.ok, false)
        XCTAssertEqual(result?.error, .notAllowed)
        XCTAssertFalse(channel.isActive)
    }

    func testSSHDisabledRefusesPort22() throws {
        let (result, _) = try ask(opener(TunnelPolicy(sshEnabled: false)), port: 22)
        XCTAssertEqual(result?.error, .sshDisabled)
    }

    func testDrainingRefusesEvenAllowedPorts() throws {
        let tunnels = opener(TunnelPolicy())
        tunnels.drain()
        XCTAssertTrue(tunnels.isDraining)
        let (result, channel) = try ask(tunnels, port: 22)
        XCTAssertEqual(result?.error, .draining)
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(tunnels.openTunnels, 0)
    }

    func testPortOutOfRangeClosesWithoutAnswer() throws {
        let (result, channel) = try ask(opener(TunnelPolicy()), port: 70000)
        XCTAssertNil(result)
        XCTAssertFalse(channel.isActive)
    }
}
