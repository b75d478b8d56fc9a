import AHLogFields
import AHControl
import AHAPI
import AHAuth
import AHHTTPServer
import AHQUIC
import AHStore
import AHTunnel
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// The access point's CONNECT ingress: authenticates the client (Proxy-Authorization, a user
/// JWT of ours or of the configured OIDC issuer), checks the ACL, finds the executor's live
/// connection, asks the executor over a new QUIC stream to connect to the port, and returns
/// that stream to be joined with the client's TCP connection. Every attempt is audited.
///
/// Status codes: 407 no/invalid/expired token; 404 unknown executor; 403 the ACL or the role
/// does not allow it; 503 executor offline, leaving, or the access point draining; 502 the
/// executor refused or could not reach the destination; 504 no answer from the executor.
public final class ExecutorTunnels: TunnelIngress {
    let verifier: any UserTokenVerifying
    let acl: AccessControlList
    let registry: ExecutorRegistry
    let store: StateStore
    let logger: Logger
    let openTimeout: TimeAmount
    let metrics: AccessPointMetrics
    private let state = NIOLockedValueBox<(draining: Bool, open: [Int64: Channel])>((false, [:]))

    public init(verifier: any UserTokenVerifying, acl: AccessControlList, registry: ExecutorRegistry,
                store: StateStore, openTimeout: TimeAmount = .seconds(10), metrics: AccessPointMetrics = AccessPointMetrics(),
                logger: Logger) {
        self.verifier = verifier
        self.metrics = metrics
        self.acl = acl
        self.registry = registry
        self.store = store
        self.openTimeout = openTimeout
        self.logger = logger
    }

    public var openTunnels: Int { state.withLockedValue { $0.open.count } }

    /// No new tunnels from now on (503); open ones continue.
    public func drain() { state.withLockedValue { $0.draining = true } }

    /// Waits until every tunnel has ended or `grace` passed; then closes what is left.
    /// Returns how many had to be cut.
    public func closeAll(grace: TimeInterval) async -> Int {
        _ = await Tunnel.waitForDrain(grace: grace) { openTunnels }
        let left = state.withLockedValue { Array($0.open.values) }
        for channel in left {
            channel.triggerUserOutboundEvent(QUICStreamEvent.reset(applicationErrorCode: TunnelCloseCode.shutdown), promise: nil)
            channel.close(promise: nil)
        }
        return left.count
    }

    /// 400s decided by the HTTP listener (malformed target, IP literal, bad name): audited
    /// like the other refusals, with no subject and the name as the client gave it.
    public func refusedAsBadRequest(_ refusal: ConnectBadRequest) async {
        let remote = refusal.remoteAddress.hostPort
        let attempt = TunnelAttempt.badRequest(target: refusal.givenName, port: refusal.port ?? 0, remote: remote,
                                               detail: refusal.detail)
        logger.warning("tunnel refused", metadata: [
            "executor": "\(refusal.givenName)", "status": "400", "reason": "\(refusal.detail)", "remote": "\(remote)"])
        metrics.tunnelRefused(status: 400)
        store.tunnelStarted(attempt, now: Date())
    }

    public func open(_ request: ConnectRequest) async -> ConnectOutcome {
        let target = request.target
        let remote = request.remoteAddress.hostPort
        var attempt = TunnelAttempt(subject: nil, executorName: target.executor, port: target.port, remote: remote,
                                    result: "", detail: "")
        func refuse(_ problem: Problem, headers: HTTPHeaders = [:]) async -> ConnectOutcome {
            attempt.result = String(problem.status)
            attempt.detail = problem.detail
            logger.warning("tunnel refused", metadata: [
                "subject": "\(attempt.subject ?? "-")", "executor": "\(target.executor)", "port": "\(target.port)",
                "status": "\(problem.status)", "reason": "\(problem.detail)", "remote": "\(remote)"])
            metrics.tunnelRefused(status: problem.status)
            store.tunnelStarted(attempt, now: Date())
            return .refused(.problem(problem, headers: headers, closeConnection: true))
        }

        // 407: who is asking.
        let token: String
        switch BearerCredentials.token(fromHeader: request.proxyAuthorization) {
        case .success(let value): token = value
        case .failure(let failure):
            return await refuse(.proxyAuthenticationRequired(failure.description(header: "Proxy-Authorization")),
                                headers: ["proxy-authenticate": #"Bearer realm="ah", Basic realm="ah""#])
        }
        let claims: UserClaims
        do {
            claims = try await verifier.verify(token, now: Date())
        } catch {
            let reason = (error as? UserTokenError)?.description ?? "token could not be verified"
            return await refuse(.proxyAuthenticationRequired(reason), headers: ["proxy-authenticate": #"Bearer realm="ah", error="invalid_token""#])
        }
        attempt.subject = claims.subject

        // 404: is there such an executor at all.
        let record: ExecutorRecord?
        do {
            record = try await store.executor(named: target.executor)
        } catch {
            logger.error("cannot read executors from the state file", metadata: ["error": "\(error)"])
            return await refuse(.unavailable("the executor registry is unavailable"))
        }
        guard let record else { return await refuse(.notFound("no executor named '\(target.executor)'")) }
        // 410: it existed and was revoked; say so instead of pretending it never did.
        if let revokedAt = record.revokedAt {
            let reason = record.revokeReason.map { " (\($0.prefix(200)))" } ?? ""
            return await refuse(.gone("executor '\(record.name)' was revoked at \(ISO8601.string(from: revokedAt))\(reason); re-enroll it with a new join token"))
        }

        // 403: may this subject do this.
        if case .deny(let reason) = acl.decide(subject: claims.subject, role: claims.role, executor: record.name,
                                                tags: record.tags, verb: .ssh) {
            return await refuse(.forbidden(reason))
        }

        // 503: is it here.
        if state.withLockedValue({ $0.draining }) {
            return await refuse(.unavailable("the access point is shutting down"))
        }
        guard let live = registry.entry(for: record.name) else {
            return await refuse(.unavailable("executor '\(record.name)' is offline"))
        }
        if let leaving = live.leaving {
            return await refuse(.unavailable("executor '\(record.name)' is shutting down (\(leaving))"))
        }

        // 502/504: ask the executor.
        let tunnelID = UUID().uuidString.lowercased()
        let request = OpenTCP(port: target.port, tunnelID: tunnelID)
        let timeout = openTimeout
        let result = live.connection.eventLoop.makePromise(of: OpenTCPResult.self)
        let stream: QUICStreamChannel
        let answer: OpenTCPResult
        do {
            stream = try await live.connection.openStreamWaitingForCredit {
                let channel = $0
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(OpenTCPRequester(request: request, timeout: timeout, result: result))
                }
            }.get()
            answer = try await result.futureResult.get()
        } catch let error as TunnelOpenError {
            if case .timedOut = error { return await refuse(.gatewayTimeout("\(error)")) }
            return await refuse(.badGateway("\(error)"))
        } catch {
            return await refuse(.unavailable("executor '\(record.name)' is not reachable: \(error)"))
        }
        guard answer.ok else {
            stream.close(promise: nil)
            let message = answer.message.map { String($0.prefix(300)) } ?? "no reason given"
            return await refuse(.badGateway("executor '\(record.name)' refused port \(target.port): \(message) [\(answer.error?.rawValue ?? "unknown")]"))
        }

        attempt.result = "open"
        // Unique even when the audit row cannot be written, so it can key `open`.
        let id = store.tunnelStarted(attempt, now: Date())
        let added = state.withLockedValue { state -> Bool in
            guard !state.draining else { return false }
            state.open[id] = stream
            return true
        }
        guard added else {
            stream.close(promise: nil)
            return await refuse(.unavailable("the access point is shutting down"))
        }
        metrics.tunnelOpened()
        logger.info("tunnel open", metadata: ["tunnel": "\(tunnelID)", "subject": "\(claims.subject)",
                                              "executor": "\(record.name)", "port": "\(target.port)", "remote": "\(remote)"])
        let started = Date()
        let finish: @Sendable (TunnelTally.Summary, String) -> Void = { [weak self] summary, result in
            guard let self else { return }
            self.state.withLockedValue { _ = $0.open.removeValue(forKey: id) }
            self.metrics.tunnelEnded(bytesUp: summary.bytesForward, bytesDown: summary.bytesBackward)
            self.logger.info("tunnel closed", metadata: [
                "tunnel": "\(tunnelID)", "executor": "\(record.name)", "bytesUp": "\(summary.bytesForward)",
                "bytesDown": "\(summary.bytesBackward)", "seconds": "\(String(format: "%.1f", Date().timeIntervalSince(started)))",
                "result": "\(result)"])
            self.store.tunnelEnded(id: id, bytesUp: summary.bytesForward, bytesDown: summary.bytesBackward,
                                   result: result, detail: summary.error ?? "", now: Date())
        }
        return .accepted(AcceptedTunnel(
            channel: stream,
            finished: { summary in finish(summary, summary.clean ? "closed" : "aborted") },
            abandoned: {
                stream.close(promise: nil)
                finish(TunnelTally.Summary(clean: false, error: "client went away before the tunnel was joined"), "abandoned")
            }))
    }
}
