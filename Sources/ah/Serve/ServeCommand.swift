import AHAccessPoint
import AHAuth
import AHTLS
import ArgumentParser
import Crypto
import Foundation
import Logging
import NIOPosix
import ServiceLifecycle

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

    @Option(name: .customLong("audit-retention"), help: ArgumentHelp("How long rows of the tunnel audit and the identity history are kept (pruned hourly).", valueName: "duration"))
    var auditRetention: HumanDuration = HumanDuration(seconds: 30 * 86400)

    @Option(name: .customLong("metrics-listen"), help: ArgumentHelp("Also serve GET /metrics here, without a token (keep it to the scraper's network); without it /metrics is on --http-listen with a token (role viewer or higher).", valueName: "host:port"))
    var metricsListen: HostPort?

    @Option(name: .customLong("max-http-connections"), help: ArgumentHelp("Concurrent HTTP connections (REST and tunnels) accepted; more are closed at once.", valueName: "count"))
    var maxHTTPConnections: Int = 1024

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
        guard auditRetention.seconds >= 3600 else { throw ValidationError("--audit-retention '\(auditRetention)' must be at least 1h") }
        guard (1...1_000_000).contains(maxHTTPConnections) else {
            throw ValidationError("--max-http-connections '\(maxHTTPConnections)' must be 1 to 1000000")
        }
    }

    func run() async throws {
        let logger = CLILogging.logger("ah.serve")
        var configuration = AccessPointService.Configuration(server: AccessPointServer.Configuration(dataDirectory: dataDir))
        configuration.acl = try loadACL(logger: logger)
        if let httpTLSCert, let httpTLSKey {
            do { configuration.tls = try TLSServerContext(certificateChainFile: httpTLSCert, privateKeyFile: httpTLSKey) } catch {
                throw CLIError.usage("--http-tls-cert '\(httpTLSCert)' / --http-tls-key '\(httpTLSKey)': \(error)")
            }
        }
        configuration.server.trustDomain = trustDomain
        configuration.server.quicHost = quicListen.host
        configuration.server.quicPort = quicListen.port
        configuration.server.svidLifetime = TimeInterval(svidTTL.seconds)
        configuration.server.idleTimeout = .seconds(Int64(idleTimeout.seconds))
        configuration.server.configHash = configHash(acl: configuration.acl)
        configuration.httpHost = httpListen.host
        configuration.httpPort = httpListen.port
        configuration.shutdownGrace = TimeInterval(shutdownGrace.seconds)
        if let metricsListen {
            configuration.metricsHost = metricsListen.host
            configuration.metricsPort = metricsListen.port
        }
        configuration.server.auditRetention = .seconds(auditRetention.seconds)
        configuration.http.maxConnections = maxHTTPConnections
        if let oidcIssuer, let oidcJWKSFile {
            configuration.externalIssuer = ExternalIssuerConfiguration(
                issuer: oidcIssuer, audience: oidcAudience, jwksFile: oidcJWKSFile,
                roleClaim: oidcRoleClaim, subjectClaim: oidcSubjectClaim)
        }
        let quicHost = quicListen.host
        let httpHost = httpListen.host
        let service = AccessPointService(configuration: configuration, logger: logger) { started in
            // Scripts and tests wait for these lines on stdout.
            print("quic listening on \(HostPort(host: quicHost, port: started.quicAddress.port ?? 0))")
            print("http listening on \(HostPort(host: httpHost, port: started.httpAddress.port ?? 0))")
            if let metricsListen, let address = started.metricsAddress {
                print("metrics listening on \(HostPort(host: metricsListen.host, port: address.port ?? 0))")
            }
            print("ca pin \(started.caPin)")
            fflush(nil)
        }
        // First SIGTERM/SIGINT: drain with the grace period; a second one: cut it short.
        do {
            try await ServiceRunner.run([service], logger: logger)
        } catch let error as AccessPointService.StartError {
            throw CLIError.usage(error.description)
        }
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
