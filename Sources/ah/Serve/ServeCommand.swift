import AHAccessPoint
import AHHTTP
import ArgumentParser
import Foundation
import NIOPosix

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run an access point: executors' QUIC connections, enrollment, registry and REST API.",
        discussion: """
            On first start creates --data-dir (0700) with the trust domain's CA (key 0600), the \
            access point's own SVID spiffe://TD/ah/serve and the SQLite state file; later starts \
            reuse them. Executors enroll over QUIC with a join token (`ah token create`) and the \
            CA pin (`ah ca pin`). SIGTERM or SIGINT closes every connection and stops.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("data-dir"), help: ArgumentHelp("State directory (created 0700 on first start).", valueName: "dir"))
    var dataDir: String

    @Option(name: .customLong("trust-domain"), help: ArgumentHelp("SPIFFE trust domain for a new CA (must match an existing one).", valueName: "td"))
    var trustDomain: String?

    @Option(name: .customLong("quic-listen"), help: ArgumentHelp("UDP address for executors' QUIC connections.", valueName: "host:port"))
    var quicListen: HostPort = HostPort(host: "0.0.0.0", port: 4433)

    @Option(name: .customLong("http-listen"), help: ArgumentHelp("TCP address for the REST API.", valueName: "host:port"))
    var httpListen: HostPort = HostPort(host: "0.0.0.0", port: 8443)

    @Option(name: .customLong("http-tls-cert"), help: ArgumentHelp("PEM certificate for TLS on --http-listen (not yet supported).", valueName: "pem"))
    var httpTLSCert: String?

    @Option(name: .customLong("http-tls-key"), help: ArgumentHelp("PEM key for --http-tls-cert.", valueName: "pem"))
    var httpTLSKey: String?

    @Option(name: .customLong("svid-ttl"), help: ArgumentHelp("Lifetime of executor certificates (e.g. 1h, 10s).", valueName: "duration"))
    var svidTTL: HumanDuration = HumanDuration(seconds: 3600)

    func validate() throws {
        if httpTLSCert != nil || httpTLSKey != nil {
            throw ValidationError("--http-tls-cert/--http-tls-key: TLS on the HTTP port is not implemented yet; serve plain HTTP behind a TLS proxy for now")
        }
        guard svidTTL.seconds >= 10 else { throw ValidationError("--svid-ttl '\(svidTTL)' must be at least 10s") }
    }

    func run() async throws {
        let logger = CLILogging.logger("ah.serve")
        var configuration = AccessPointServer.Configuration(dataDirectory: dataDir)
        configuration.trustDomain = trustDomain
        configuration.quicHost = quicListen.host
        configuration.quicPort = quicListen.port
        configuration.svidLifetime = TimeInterval(svidTTL.seconds)
        let group = MultiThreadedEventLoopGroup.singleton
        let server: AccessPointServer
        do {
            server = try await AccessPointServer.start(configuration, group: group, logger: logger)
        } catch let error as DataDirectoryError {
            throw CLIError.usage(error.description)
        } catch {
            throw CLIError.usage("cannot start the access point: \(error)")
        }
        let http: HTTPAPIServer
        do {
            let authority = try await UserTokenAuthority.loadOrCreate(dataDirectory: dataDir)
            let routes = HTTPAPIRoutes(authority: authority,
                                       executors: LiveExecutorDirectory(store: server.store, registry: server.registry),
                                       logger: logger)
            http = try await HTTPAPIServer.start(host: httpListen.host, port: httpListen.port, group: group,
                                                 routes: routes, logger: logger)
        } catch {
            await server.close()
            throw CLIError.usage("cannot serve HTTP on \(httpListen): \(error)")
        }
        print("quic listening on \(HostPort(host: quicListen.host, port: server.quicAddress.port ?? quicListen.port))")
        print("http listening on \(HostPort(host: httpListen.host, port: http.port))")
        print("ca pin \(server.dataDirectory.caPin)")
        fflush(nil)
        let signal = await SignalWaiter.waitForTermination()
        logger.info("signal \(signal): closing connections and stopping")
        await http.close()
        await server.close()
    }
}
