// swift-tools-version:6.0
import PackageDescription

// Settings shared by the Swift targets that talk to C through raw pointers. They run on
// one NIO event loop each and document their confinement, so they use the Swift 5
// language mode instead of sprinkling `nonisolated(unsafe)` over every C handle.
let loopConfined: [SwiftSetting] = [.swiftLanguageMode(.v5)]
// Everything else is in the Swift 6 language mode (the package default, said explicitly where
// a target used to be Swift 5).
let swift6: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "ah",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ah", targets: ["ah"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.7.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        // The access point's /metrics: swift-metrics objects on a Prometheus registry.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // The one C shim over GnuTLS, shared by QUIC and TLS over TCP: credential loading
        // that names the bad input, X.509 helpers for peer checks, stream-session set-up.
        .target(
            name: "CGnuTLS",
            linkerSettings: [.linkedLibrary("gnutls")]
        ),
        // GnuTLS's credentials, priorities and errors as Swift types, each owning one C
        // pointer (hence Swift 5 mode): used by AHQUIC and AHTLS alike.
        .target(
            name: "AHGnuTLS",
            dependencies: ["CGnuTLS"],
            swiftSettings: loopConfined
        ),
        // ngtcp2 0.12 + its GnuTLS crypto helper, with a shim for the `*_versioned` macros
        // Swift cannot import and the QUIC session set-up; GnuTLS itself via CGnuTLS.
        .target(
            name: "CNgtcp2",
            dependencies: ["CGnuTLS"],
            linkerSettings: [
                .linkedLibrary("ngtcp2"),
                .linkedLibrary("ngtcp2_crypto_gnutls"),
                .linkedLibrary("gnutls"),
            ]
        ),
        // TLS as a NIO channel handler over GnuTLS, server and client side.
        .target(
            name: "AHTLS",
            dependencies: [
                "CGnuTLS", "AHGnuTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: loopConfined
        ),
        // Byte pipes between two channels (TCP, QUIC stream, stdio) with backpressure and
        // half-close carried through: every tunnel hop.
        .target(
            name: "AHTunnel",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // SPIFFE ID parsing and peer policies: pure Swift, shared by transport and identity.
        .target(name: "AHSPIFFE"),
        // How values look in log lines (addresses as host:port), shared by every module that logs.
        .target(name: "AHLogFields", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        // QUIC endpoints, connections and stream channels on SwiftNIO; mutual TLS.
        .target(
            name: "AHQUIC",
            dependencies: [
                "CNgtcp2", "CGnuTLS", "AHGnuTLS", "AHSPIFFE", "AHLogFields",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: loopConfined
        ),
        // Certificate authority, SVID issuance, PEM files.
        .target(
            name: "AHIdentity",
            dependencies: [
                "AHSPIFFE",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        // libsqlite3 from the system (Debian libsqlite3-dev).
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        // Durable state of the access point behind a small protocol (SQLite now, PostgreSQL later).
        .target(
            name: "AHStore",
            dependencies: [
                "CSQLite", "AHSPIFFE",
                // A worker thread (NIOThreadPool) keeps blocking SQLite calls off the cooperative pool.
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Options from flags > AH_* environment > TOML config file > defaults, for every command.
        .target(
            name: "AHConfig",
            dependencies: [.product(name: "TOMLKit", package: "TOMLKit")]
        ),
        // Who a user is and what they may do: user JWTs (ES256), OIDC tokens (JWKS), roles,
        // the ACL. No HTTP here: the server and the CLI both use it.
        .target(
            name: "AHAuth",
            dependencies: [
                "AHSPIFFE",
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ]
        ),
        // The REST API's wire types (executor list, Problem+JSON, CONNECT target grammar),
        // shared by the server and its clients.
        .target(name: "AHAPI", dependencies: ["AHSPIFFE"]),
        // The listener on --http-listen: REST routes, CONNECT hand-over to a TunnelIngress,
        // streamed responses, connection limits.
        .target(
            name: "AHHTTPServer",
            dependencies: [
                "AHAPI", "AHAuth", "AHStore", "AHSPIFFE", "AHTunnel", "AHTLS", "AHLogFields",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Clients of the access point's HTTP port: REST (`ah executors list`, `ah ssh-config`)
        // and CONNECT (`ah connect`).
        .target(
            name: "AHHTTPClient",
            dependencies: [
                "AHAPI", "AHTunnel", "AHTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // Control-plane messages and their framing (versioned, length-prefixed, bounded).
        .target(
            name: "AHControl",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")]
        ),
        // Leader events on the wire (the `ah-events/1` uplink): messages, bounded framing and
        // the validation both ends share (docs/protocol.md, "Event streams").
        .target(
            name: "AHEvents",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swift6
        ),
        // The access point: data dir, CA, enrollment service, registry.
        .target(
            name: "AHAccessPoint",
            dependencies: [
                "AHQUIC", "AHIdentity", "AHStore", "AHSPIFFE", "AHControl", "AHAPI", "AHAuth", "AHHTTPServer", "AHTunnel", "AHTLS", "AHLogFields",
                "AHEvents",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swift6
        ),
        // The executor: enrollment client, identity on disk, connection loop, renewal.
        .target(
            name: "AHExecutor",
            dependencies: [
                "AHQUIC", "AHIdentity", "AHSPIFFE", "AHControl", "AHTunnel", "AHLogFields",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Subprocess", package: "swift-subprocess"),
            ]
        ),
        // The fleet config (.agents/config.toml), follower selection, per-OS command adapters and
        // shard plans: pure code (no network, no processes) that the leader service calls.
        .target(
            name: "AHFleet",
            dependencies: ["AHSPIFFE", .product(name: "TOMLKit", package: "TOMLKit")],
            swiftSettings: swift6
        ),
        // libssh2 1.10 from the system (Debian libssh2-1-dev), with a small shim for the
        // macros Swift cannot import and the socket callbacks.
        .target(name: "CLibSSH2", linkerSettings: [.linkedLibrary("ssh2")]),
        // SSH sessions and exec channels on libssh2, one thread of control per session
        // (C pointers, hence Swift 5 mode): host key pinning, key/agent auth, MaxSessions queue.
        .target(
            name: "AHSSH",
            dependencies: [
                "CLibSSH2",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: loopConfined
        ),
        // The leader service (`ah agent followers ...`): socket, paths to followers, SSH
        // sessions and helpers, fan-out, reports.
        .target(
            name: "AHLeader",
            dependencies: [
                "AHAPI", "AHHTTPClient", "AHTunnel", "AHSPIFFE", "AHLogFields", "AHStore", "AHFleet", "AHSSH", "AHFollowerHelper", "AHSync",
                "AHEvents", "AHQUIC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swift6
        ),
        // The sync fence's file side: manifests (SHA-256), ignores, the stat-cache scanner,
        // the content store, manifest diffs, and the receiver's safe apply. Pure Swift + Crypto.
        .target(
            name: "AHSync",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swift6
        ),
        // The follower helper protocol (`ah agent follower-helper`): frames, messages, the
        // server that runs commands in their own process groups, the leader's client.
        .target(
            name: "AHFollowerHelper",
            dependencies: ["AHSync", .product(name: "Logging", package: "swift-log"),
                           // SHA-256 of every file slurp sends.
                           .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swift6
        ),
        .executableTarget(
            name: "ah",
            dependencies: [
                "AHQUIC", "AHIdentity", "AHSPIFFE", "AHConfig", "AHAPI", "AHAuth", "AHHTTPClient", "AHAccessPoint", "AHExecutor", "AHStore",
                "AHTunnel", "AHTLS", "AHLeader", "AHFollowerHelper",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            // The Swift runtime and Foundation linked in: every `followers` command is a short
            // process, and loading the Swift shared libraries at each start cost about a third
            // of `ah --version` (22 → 15 ms; docs/benchmarks.md, "Fan-out"). lld, because the
            // static Foundation archives depend on each other in an order GNU ld cannot resolve;
            // the libraries Foundation's archives need are named, as the toolchain's
            // static-stdlib-args.lnk does not. Tests do not link this target (its flags would
            // reach their link): they run the built `ah`.
            linkerSettings: [.unsafeFlags(["-static-stdlib", "-use-ld=lld", "-lCoreFoundation", "-l_FoundationICU", "-l_FoundationCollections", "-l_FoundationCShims", "-lstdc++"])]
        ),
        // Helpers for tests only: locating the built `ah`, spawning processes, temp dirs, certificates.
        .target(
            name: "AHTestSupport",
            dependencies: [
                "AHIdentity", "AHSPIFFE",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Subprocess", package: "swift-subprocess"),
            ]
        ),
        .testTarget(name: "AHSPIFFETests", dependencies: ["AHSPIFFE"]),
        .testTarget(
            name: "AHSSHTests",
            dependencies: [
                "AHSSH", "AHTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: loopConfined
        ),
        .testTarget(name: "AHFleetTests", dependencies: ["AHFleet", "AHTestSupport"], swiftSettings: swift6),
        .testTarget(name: "AHSyncTests", dependencies: ["AHSync", "AHTestSupport"], swiftSettings: swift6),
        .testTarget(
            name: "AHFollowerHelperTests",
            dependencies: ["AHFollowerHelper", "AHSync", "AHTestSupport", .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "Logging", package: "swift-log")],
            swiftSettings: swift6
        ),
        .testTarget(
            name: "AHLeaderTests",
            dependencies: ["AHLeader", "AHTestSupport", .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            swiftSettings: swift6
        ),
        .testTarget(name: "AHStoreTests", dependencies: ["AHStore", "AHTestSupport"]),
        .testTarget(name: "AHConfigTests", dependencies: ["AHConfig", "AHTestSupport"]),
        .testTarget(
            name: "AHHTTPTests",
            dependencies: [
                "AHAPI", "AHAuth", "AHHTTPServer", "AHHTTPClient", "AHStore", "AHTunnel", "AHTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "AHAuthTests",
            dependencies: ["AHAuth", "AHTestSupport", .product(name: "JWTKit", package: "jwt-kit")]
        ),
        .testTarget(
            name: "AHAccessPointTests",
            dependencies: [
                "AHAccessPoint", "AHExecutor", "AHQUIC", "AHIdentity", "AHStore", "AHTestSupport",
                "AHEvents", "AHLeader",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                "AHControl", "AHSPIFFE", .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: loopConfined
        ),
        .testTarget(
            name: "AHTLSTests",
            dependencies: [
                "AHTLS", "AHTunnel", "AHTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: loopConfined
        ),
        .testTarget(
            name: "AHTunnelTests",
            dependencies: [
                "AHTunnel",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .testTarget(
            name: "AHControlTests",
            dependencies: [
                "AHControl",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "AHExecutorTests",
            dependencies: [
                "AHExecutor", "AHControl", "AHAccessPoint", "AHTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "AHIdentityTests", dependencies: ["AHIdentity", "AHTestSupport"]),
        .testTarget(
            name: "AHQUICTests",
            dependencies: [
                "AHQUIC", "AHTestSupport", "AHIdentity", "CNgtcp2",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: loopConfined
        ),
    ]
)
