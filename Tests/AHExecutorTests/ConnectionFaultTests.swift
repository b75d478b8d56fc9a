import AHControl
@testable import AHExecutor
import AHQUIC
import XCTest

/// Which endings retrying can fix: only the access point's handshake refusal of this
/// identity is permanent (exit 3); a revocation notice on a live connection is confirmed by
/// reconnecting; everything else is retried.
final class ConnectionFaultTests: XCTestCase {
    func testHandshakeRefusalOfARevokedIdentityIsPermanent() {
        let reason = "spiffe://example.org/ah/agent/victim refused: identity revoked"
        let crypto = QUICError.closedByPeer(CloseInfo(kind: .transport, code: 0x12A, reason: reason))
        XCTAssertEqual(ConnectionFault(crypto), .permanent(reason))
        XCTAssertEqual(ConnectionFault(QUICError.closedByPeer(CloseInfo(kind: .transport, code: 0x2, reason: reason))), .permanent(reason))
        XCTAssertEqual(ConnectionFault(QUICError.handshakeFailed(reason: reason)), .permanent(reason))
    }

    func testNameEnrolledWithAnotherKeyIsPermanent() {
        let reason = "spiffe://example.org/ah/agent/dup refused: certificate key does not match the enrolled key"
        XCTAssertEqual(ConnectionFault(QUICError.closedByPeer(CloseInfo(kind: .transport, code: 0x2, reason: reason))), .permanent(reason))
    }

    func testRevocationNoticeOnALiveConnectionIsConfirmedByReconnecting() {
        let closed = QUICError.closedByPeer(CloseInfo(kind: .application, code: ConnectionCloseCode.revoked, reason: "identity revoked"))
        XCTAssertEqual(ConnectionFault(closed), .revokedWhileConnected("identity revoked"))
    }

    func testTransportTroubleIsTransient() {
        let transient: [Error] = [
            QUICError.idleTimeout,
            QUICError.handshakeTimeout,
            QUICError.connectionClosed,
            QUICError.closedByPeer(CloseInfo(kind: .transport, code: 0, reason: "stateless reset")),
            QUICError.closedByPeer(CloseInfo(kind: .application, code: 0, reason: "access point shutting down")),
            QUICError.closedByPeer(CloseInfo(kind: .application, code: ConnectionCloseCode.replaced, reason: "replaced")),
            QUICError.handshakeFailed(reason: "certificate not trusted by the pinned CA"),
            QUICError.ngtcp2("sending", code: -1),
            ExecutorError.refused("the access point did not acknowledge Hello within 10 seconds"),
            CancellationError(),
        ]
        for error in transient {
            guard case .transient = ConnectionFault(error) else { return XCTFail("\(error) should be transient") }
        }
    }

    func testExitMessageSaysRevokedAndWhatToDo() {
        let message = ConnectionFault.exitMessage("spiffe://td/ah/agent/x refused: identity revoked", remote: "127.0.0.1:4433")
        XCTAssertTrue(message.contains("revoked"), message)
        XCTAssertTrue(message.contains("127.0.0.1:4433"), message)
        XCTAssertTrue(message.contains("--token"), message)
    }
}
