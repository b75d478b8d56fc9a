import AHControl
import AHIdentity
import AHQUIC
import AHSPIFFE
import Crypto
import Foundation
import Logging
import NIOCore

/// First contact: generate a key here, send a CSR with the join token to the access point
/// (trusted only through the CA pin), and store the SVID it returns.
public enum Enroller {
    public static func enroll(host: String, port: Int, token: String, caPin: String, name: String,
                              tags: [String: String], state: ExecutorStateDirectory,
                              group: EventLoopGroup, logger: Logger) async throws -> ExecutorStateDirectory.Metadata {
        if let problem = ExecutorName.problem(name) {
            throw ExecutorError.usage("--name: \(problem)")
        }
        let pin = try parsePin(caPin)
        let key = P256.Signing.PrivateKey()
        let csr = try CSR.make(privateKey: key, commonName: name)

        var configuration = QUICConfiguration(
            identity: TLSIdentity(certificateChain: nil, privateKey: nil, trustBundle: nil),
            peerPolicy: .anyOf([]))
        configuration.alpn = enrollmentALPN
        configuration.trust = .pinnedCA(sha256: pin, expectedPath: "/ah/serve")
        configuration.handshakeTimeout = .seconds(10)

        let connection: QUICConnection
        do {
            connection = try await QUICClient.connect(host: host, port: port, configuration: configuration, group: group, logger: logger)
        } catch {
            // Nothing has been sent yet: a wrong pin is refused before the token leaves.
            throw ExecutorError.refused("cannot reach the access point at \(host):\(port) for enrollment: \(error)")
        }
        defer { connection.close(applicationErrorCode: 0, reason: "enrollment done") }
        let request = EnrollRequest(token: token, name: name, csr: csr, tags: tags)
        let response: EnrollResponse
        do {
            response = try await OneShotExchange.send(request, over: connection, expecting: EnrollResponse.self)
        } catch {
            throw ExecutorError.refused("enrollment exchange failed: \(error)")
        }
        guard response.ok, let certificate = response.certificate, let ca = response.caBundle, let id = response.spiffeID else {
            throw ExecutorError.refused("enrollment refused: \(response.message ?? "no reason given") [\(response.error ?? "unknown")]")
        }
        let spiffeID = try SPIFFEID(parsing: id)
        let metadata = ExecutorStateDirectory.Metadata(name: name, spiffeID: id, trustDomain: spiffeID.trustDomain)
        try state.storeEnrollment(key: key, certificatePEM: certificate, caPEM: ca, metadata: metadata)
        logger.info("enrolled", metadata: ["spiffeId": "\(id)", "stateDir": "\(state.url.path)"])
        return metadata
    }

    /// `sha256:HEX` (64 hex digits) → bytes; anything else is bad input naming the value.
    public static func parsePin(_ text: String) throws -> [UInt8] {
        let hex = text.hasPrefix("sha256:") ? String(text.dropFirst(7)) : ""
        guard hex.count == 64, let bytes = decodeHex(hex) else {
            throw ExecutorError.usage("--ca-pin '\(text)' is not sha256: followed by 64 hex digits (see `ah ca pin`)")
        }
        return bytes
    }

    private static func decodeHex(_ hex: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        var iterator = hex.lowercased().utf8.makeIterator()
        while let high = iterator.next(), let low = iterator.next() {
            guard let h = hexValue(high), let l = hexValue(low) else { return nil }
            bytes.append(h << 4 | l)
        }
        return bytes
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        default: return nil
        }
    }
}
