import AHControl
import AHIdentity
import AHSPIFFE
import AHStore
import Foundation
import Logging
import X509

/// Turns enrollment and renewal requests into SVIDs. Every outcome — issued, renewed or
/// refused, with the reason — is logged and recorded in the store's history.
public final class EnrollmentService: Sendable {
    let ca: CertificateAuthority
    let trustDomain: String
    let store: any ExecutorStore & AuditStore
    let known: KnownExecutors
    let svidLifetime: TimeInterval
    let logger: Logger

    public init(ca: CertificateAuthority, trustDomain: String, store: any ExecutorStore & AuditStore, known: KnownExecutors,
                svidLifetime: TimeInterval, logger: Logger) {
        self.ca = ca
        self.trustDomain = trustDomain
        self.store = store
        self.known = known
        self.svidLifetime = svidLifetime
        self.logger = logger
    }

    public func enroll(_ request: EnrollRequest, remote: String) async -> EnrollResponse {
        let now = Date()
        func refuse(_ code: String, _ message: String, name: String?) async -> EnrollResponse {
            logger.warning("enrollment refused", metadata: ["name": "\(name ?? "?")", "remote": "\(remote)", "reason": "\(code)", "detail": "\(message)"])
            store.recordHistory(kind: .refused, name: name, spiffeID: nil, detail: "\(code): \(message) (from \(remote))", now: now)
            return .failure(code, message)
        }
        guard request.version == 1 else {
            return await refuse("unsupported-version", "enrollment protocol version \(request.version) is not supported", name: nil)
        }
        // One grammar everywhere a name is used (CONNECT, ssh-config, fleet config): a name
        // enrolled here must be reachable by exactly that name.
        if let problem = ExecutorName.problem(request.name) {
            return await refuse("invalid-name", problem, name: nil)
        }
        guard JoinTokens.isWellFormed(request.token) else {
            return await refuse("token-malformed", "the join token is malformed", name: request.name)
        }
        let publicKey: Certificate.PublicKey
        do {
            publicKey = try CSR.parseAndVerify(pem: request.csr)
        } catch {
            return await refuse("csr-invalid", "the certificate request is invalid: \(error)", name: request.name)
        }
        do {
            let id = try SPIFFEID.agent(trustDomain: trustDomain, name: request.name)
            let keyHash = try PublicKeyFingerprint.sha256(publicKey)
            let notAfter = now.addingTimeInterval(svidLifetime)
            let leaf = try ca.issueSVID(id: id, publicKey: publicKey, notBefore: now.addingTimeInterval(-60), notAfter: notAfter)
            let serial = "\(leaf.serialNumber)"
            let result = try await store.redeemAndEnroll(
                tokenHash: JoinTokens.hash(request.token), name: request.name, spiffeID: id,
                publicKeySHA256: keyHash, requestedTags: request.tags.filter { $0.key != KnownExecutors.identityTag.0 },
                certSerial: serial,
                certNotAfter: notAfter, now: now)
            known.update(request.name, .init(publicKeySHA256: keyHash, revoked: false))
            logger.info("executor enrolled", metadata: [
                "name": "\(request.name)", "spiffeId": "\(id)", "remote": "\(remote)", "kind": "\(result.kind)",
                "notAfter": "\(notAfter)", "tags": "\(result.executor.tags)"])
            return .success(certificate: try PEMFile.pemString([leaf]), caBundle: try PEMFile.pemString([ca.certificate]),
                            spiffeID: "\(id)")
        } catch let error as IdentityStoreError {
            return await refuse(error.reason, "\(error)", name: request.name)
        } catch {
            return await refuse("internal", "enrollment failed: \(error)", name: request.name)
        }
    }

    /// A new certificate for the identity the TLS session proved; the CSR only supplies the
    /// key (which may be a fresh one: key rotation).
    public func renew(csr: String, peer: SPIFFEID) async -> EnrollResponse {
        let now = Date()
        let name = peer.segments().last ?? ""
        func refuse(_ code: String, _ message: String) async -> EnrollResponse {
            logger.warning("renewal refused", metadata: ["name": "\(name)", "reason": "\(code)", "detail": "\(message)"])
            store.recordHistory(kind: .renewalRefused, name: name, spiffeID: "\(peer)", detail: "\(code): \(message)", now: now)
            return .failure(code, message)
        }
        let publicKey: Certificate.PublicKey
        do {
            publicKey = try CSR.parseAndVerify(pem: csr)
        } catch {
            return await refuse("csr-invalid", "the certificate request is invalid: \(error)")
        }
        do {
            let keyHash = try PublicKeyFingerprint.sha256(publicKey)
            let notAfter = now.addingTimeInterval(svidLifetime)
            let leaf = try ca.issueSVID(id: peer, publicKey: publicKey, notBefore: now.addingTimeInterval(-60), notAfter: notAfter)
            try await store.recordRenewal(name: name, certSerial: "\(leaf.serialNumber)", certNotAfter: notAfter,
                                          publicKeySHA256: keyHash, now: now)
            known.update(name, .init(publicKeySHA256: keyHash, revoked: false))
            logger.info("certificate renewed", metadata: ["name": "\(name)", "notAfter": "\(notAfter)"])
            return .success(certificate: try PEMFile.pemString([leaf]), caBundle: try PEMFile.pemString([ca.certificate]),
                            spiffeID: "\(peer)")
        } catch let error as IdentityStoreError {
            return await refuse(error.reason, "\(error)")
        } catch {
            return await refuse("internal", "renewal failed: \(error)")
        }
    }
}
