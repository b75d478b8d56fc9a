import AHAccessPoint
import AHHTTP
import AHTLS
import ArgumentParser
import Crypto
import Foundation
import Logging
import NIOPosix

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run an access point: executors' QUIC connections, enrollment, registry, REST API and SSH tunnels.",
        discussion: """
            On first start creates --data-dir (0700) with the trust domain's CA (key 0600), the \
            access point's own SVID spiffe://TD/ah/serve and the SQLite state file; later starts \
            reuse them. Executors enroll over QUIC with a join token (`ah token create`) and the \
            CA pin (`ah ca pin`). --http-listen serves the REST API and HTTP CONNECT NAME:PORT \
            tunnels (Proxy-Authorization: Bearer JWT), over TLS with --http-tls-cert/--http-tls-key. \
            Who may tunnel where: [[serve.acl]] rules in --config (subject, executors, verbs); \
            without any rule, every operator token may reach every executor. SIGTERM drains: \
            no new tunnels, open ones get --shutdown-grace, then every connection is closed.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("data-dir"), help: ArgumentHelp("State directory (created 0700 on first start).", valueName: "dir"))
    var dataDir: String

    @Option(name: .customLong("trust-domain"), help: ArgumentHelp("SPIFFE trust domain for a new CA (must match an existing one).", valueName: "td"))
    var trustDomain: String?

    @Option(name: .customLong("quic-listen"), help: ArgumentHelp("UDP address for executors' QUIC connections.", valueName: "host:port"))
    var quicListen: HostPort = HostPort(host: "0.0.0.0", port: 4433)

    @Option(name: .customLong("http-listen"), help: ArgumentHelp("TCP address for the REST API and CONNECT tunnels.", valueName: "host:port"))
    var httpListen: HostPort = HostPort(host: "0.0.0.0", port: 8443)

    @Option(name: .customLong("http-tls-cert"), help: ArgumentHelp("PEM certificate chain for TLS on --http-listen.", valueName: "pem"))
    var httpTLSCert: String?

    @Option(name: .customLong("http-tls-key"), help: ArgumentHelp("PEM private key for --http-tls-cert.", valueName: "pem"))
    var httpTLSKey: String?

    @Option(name: .customLong("svid-ttl"), help: ArgumentHelp("Lifetime of executor certificates (e.g. 1h, 10s).", valueName: "duration"))
    var svidTTL: HumanDuration = HumanDuration(seconds: 3600)

    @Option(name: .customLong("idle-timeout"), help: ArgumentHelp("An executor whose path is silent this long is offline.", valueName: "duration"))
    var idleTimeout: HumanDuration = HumanDuration(seconds: 30)

    @Option(name: .customLong("shutdown-grace"), help: ArgumentHelp("On SIGTERM: how long open tunnels may still run.", valueName: "duration"))
    var shutdownGrace: HumanDuration = HumanDuration(seconds: 30)

    @Option(name: .customLong("oidc-issuer"), help: ArgumentHelp("Also accept user tokens from this OIDC issuer (exact `iss`).", valueName: "url"))
    var oidcIssuer: String?

    @Option(name: .customLong("oidc-audience"), help: ArgumentHelp("Audience the OIDC tokens must carry.", valueName: "aud"))
    var oidcAudience: String = "ah"

    @Option(name: .customLong("oidc-jwks-file"), help: ArgumentHelp("The OIDC issuer's public keys (JWKS JSON; RS256 and ES256).", valueName: "path"))
    var oidcJWKSFile: String?

    @Option(name: .customLong("oidc-role-claim"), help: ArgumentHelp("Claim with the ah role in OIDC tokens (absent: operator).", valueName: "claim"))
    var oidcRoleClaim: String = "role"

    @Option(name: .customLong("oidc-subject-claim"), help: ArgumentHelp("Claim naming the user in OIDC tokens (what ACL subjects match).", valueName: "claim"))
    var oidcSubjectClaim: String = "sub"

    func validate() throws {
        guard (httpTLSCert == nil) == (httpTLSKey == nil) else {
            throw ValidationError("--http-tls-cert and --http-tls-key go together")
        }
        for (flag, path) in [("--http-tls-cert", httpTLSCert), ("--http-tls-key", httpTLSKey), ("--oidc-jwks-file", oidcJWKSFile)] {
            if let path, !FileManager.default.isReadableFile(atPath: path) { throw ValidationError("\(flag) '\(path)' is not a readable file") }
        }
        guard (oidcIssuer == nil) == (oidcJWKSFile == nil) else {
            throw ValidationError("--oidc-issuer and --oidc-jwks-file go together")
        }
        guard svidTTL.seconds >= 10 else { throw ValidationError("--svid-ttl '\(svidTTL)' must be at least 10s") }
        guard idleTimeout.seconds >= 3 else { throw ValidationError("--idle-timeout '\(idleTimeout)' must be at least 3s") }
    }

    func run() async throws {
        let logger = CLILogging.logger("ah.serve")
        let acl = try loadACL(logger: logger)
        let tls: TLSServerContext?
        if let httpTLSCert, let httpTLSKey {
            do { tls = try TLSServerContext(certificateChainFile: httpTLSCert, privateKeyFile: httpTLSKey) } catch {
                throw CLIError.usage("--http-tls-cert/--http-tls-key: \(error)")
            }
        } else {
            tls = nil
        }
        var configuration = AccessPointServer.Configuration(dataDirectory: dataDir)
        configuration.trustDomain = trustDomain
        configuration.quicHost = quicListen.host
        configuration.quicPort = quicListen.port
        configuration.svidLifetime = TimeInterval(svidTTL.seconds)
        configuration.idleTimeout = .seconds(Int64(idleTimeout.seconds))
        configuration.configHash = configHash(acl: acl)
        let group = MultiThreadedEventLoopGroup.singleton
        let server: AccessPointServer
        do {
            server = try await AccessPointServer.start(configuration, group: group, logger: logger)
        } catch let error as DataDirectoryError {
            throw CLIError.usage(error.description)
        } catch {
            throw CLIError.usage("cannot start the access point: \(error)")
        }
        let draining = ManagedAtomicFlag()
        let http: HTTPAPIServer
        let tunnels: ExecutorTunnels
        do {
            let authority = try await UserTokenAuthority.loadOrCreate(dataDirectory: dataDir)
            var external: ExternalTokenIssuer?
            if let oidcIssuer, let oidcJWKSFile {
                do {
                    external = try await ExternalTokenIssuer.load(ExternalIssuerConfiguration(
                        issuer: oidcIssuer, audience: oidcAudience, jwksFile: oidcJWKSFile,
                        roleClaim: oidcRoleClaim, subjectClaim: oidcSubjectClaim))
                } catch {
                    throw CLIError.usage("--oidc-jwks-file '\(oidcJWKSFile)': \(error)")
                }
                logger.info("accepting user tokens from an external issuer", metadata: ["issuer": "\(oidcIssuer)", "audience": "\(oidcAudience)"])
            }
            let verifier = TokenVerifierChain(local: authority, external: external)
            tunnels = ExecutorTunnels(verifier: verifier, acl: acl, registry: server.registry, store: server.store, logger: logger)
            let routes = HTTPAPIRoutes(authority: authority,
                                       executors: LiveExecutorDirectory(store: server.store, registry: server.registry),
                                       tunnels: tunnels, verifier: verifier,
                                       readiness: { !draining.isSet },
                                       logger: logger)
            http = try await HTTPAPIServer.start(host: httpListen.host, port: httpListen.port, group: group,
                                                 connectionGroup: server.quic.channel.eventLoop,
                                                 routes: routes, tls: tls, logger: logger)
        } catch let error as CLIError {
            await server.close()
            throw error
        } catch {
            await server.close()
            throw CLIError.usage("cannot serve HTTP on \(httpListen): \(error)")
        }
        print("quic listening on \(HostPort(host: quicListen.host, port: server.quicAddress.port ?? quicListen.port))")
        print("http listening on \(HostPort(host: httpListen.host, port: http.port))")
        if tls != nil { logger.info("TLS on the HTTP listener", metadata: ["cert": "\(httpTLSCert ?? "")"]) }
        print("ca pin \(server.dataDirectory.caPin)")
        fflush(nil)
        let signal = await SignalWaiter.waitForTermination()
        let grace = TimeInterval(shutdownGrace.seconds)
        logger.info("signal \(signal): draining", metadata: ["openTunnels": "\(tunnels.openTunnels)", "graceSeconds": "\(Int(grace))"])
        draining.set()
        tunnels.drain()
        server.sayGoodbye(reason: "access point shutting down", grace: grace)
        // A second signal cuts the grace period short.
        await withTaskGroup(of: Void.self) { group in
            group.addTask { _ = await tunnels.closeAll(grace: grace) }
            group.addTask { _ = await SignalWaiter.waitForTermination() }
            await group.next()
            group.cancelAll()
        }
        let cutShort = await tunnels.closeAll(grace: 0)
        if cutShort > 0 { logger.warning("closed tunnels still open at the end of the grace period", metadata: ["count": "\(cutShort)"]) }
        await http.close()
        await server.close()
        logger.info("stopped")
    }

    /// `[[serve.acl]]` from the config file, or "not configured" (every operator may tunnel).
    private func loadACL(logger: Logger) throws -> AccessControlList {
        guard let path = global.config else {
            logger.warning("no ACL configured: every operator token may open tunnels to every executor (add [[serve.acl]] rules to --config)")
            return .unconfigured
        }
        let acl: AccessControlList
        do { acl = try AccessControlList.load(configFile: path) } catch { throw CLIError.usage(error.description) }
        if acl.isConfigured {
            logger.info("ACL loaded", metadata: ["rules": "\(acl.rules.count)", "file": "\(path)"])
        } else {
            logger.warning("no ACL configured: every operator token may open tunnels to every executor (add [[serve.acl]] rules to --config)")
        }
        return acl
    }

    /// What executors see in Ack: changes when the settings that concern them change.
    private func configHash(acl: AccessControlList) -> String {
        let text = "\(svidTTL.seconds)|\(idleTimeout.seconds)|\(acl.rules.count)"
        return SHA256.hash(data: Data(text.utf8)).prefix(8).map { String(format: "%02x", $0) }.joined()
    }
}

/// A flag set once from any thread (draining), read from the readiness probe.
final class ManagedAtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
