// swift-tools-version:6.0
import PackageDescription

// Settings shared by the Swift targets that talk to C through raw pointers. They run on
// one NIO event loop each and document their confinement, so they use the Swift 5
// language mode instead of sprinkling `nonisolated(unsafe)` over every C handle.
let loopConfined: [SwiftSetting] = [.swiftLanguageMode(.v5)]

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
    ],
    targets: [
        // ngtcp2 0.12 + its GnuTLS crypto helper + GnuTLS, with a shim for the
        // `*_versioned` macros Swift cannot import.
        .target(
            name: "CNgtcp2",
            linkerSettings: [
                .linkedLibrary("ngtcp2"),
                .linkedLibrary("ngtcp2_crypto_gnutls"),
                .linkedLibrary("gnutls"),
            ]
        ),
        // GnuTLS for TLS over TCP (the HTTP/CONNECT port and `ah connect` to https:// URLs),
        // with a shim for the transport callbacks.
        .target(
            name: "CGnuTLSStream",
            linkerSettings: [.linkedLibrary("gnutls")]
        ),
        // TLS as a NIO channel handler over GnuTLS, server and client side.
        .target(
            name: "AHTLS",
            dependencies: [
                "CGnuTLSStream",
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
            ],
            swiftSettings: loopConfined
        ),
        // SPIFFE ID parsing and peer policies: pure Swift, shared by transport and identity.
        .target(name: "AHSPIFFE"),
        // QUIC endpoints, connections and stream channels on SwiftNIO; mutual TLS.
        .target(
            name: "AHQUIC",
            dependencies: [
                "CNgtcp2", "AHSPIFFE",
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
            dependencies: ["CSQLite", "AHSPIFFE"]
        ),
        // Options from flags > AH_* environment > TOML config file > defaults, for every command.
        .target(
            name: "AHConfig",
            dependencies: [.product(name: "TOMLKit", package: "TOMLKit")]
        ),
        // HTTP on --http-listen: REST API, user JWTs (and, later, CONNECT ingress).
        .target(
            name: "AHHTTP",
            dependencies: [
                "AHStore", "AHSPIFFE", "AHTunnel", "AHTLS",
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Control-plane messages and their framing (versioned, length-prefixed, bounded).
        .target(
            name: "AHControl",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: loopConfined
        ),
        // The access point: data dir, CA, enrollment service, registry.
        .target(
            name: "AHAccessPoint",
            dependencies: [
                "AHQUIC", "AHIdentity", "AHStore", "AHSPIFFE", "AHControl", "AHHTTP", "AHTunnel",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: loopConfined
        ),
        // The executor: enrollment client, identity on disk, connection loop, renewal.
        .target(
            name: "AHExecutor",
            dependencies: [
                "AHQUIC", "AHIdentity", "AHSPIFFE", "AHControl", "AHTunnel",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: loopConfined
        ),
        .executableTarget(
            name: "ah",
            dependencies: [
                "AHQUIC", "AHIdentity", "AHSPIFFE", "AHConfig", "AHHTTP", "AHAccessPoint", "AHExecutor", "AHStore",
                "AHTunnel", "AHTLS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Helpers for tests only: locating the built `ah`, spawning processes, temp dirs, certificates.
        .target(
            name: "AHTestSupport",
            dependencies: [
                "AHIdentity", "AHSPIFFE",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "AHSPIFFETests", dependencies: ["AHSPIFFE"]),
        .testTarget(name: "AHStoreTests", dependencies: ["AHStore", "AHTestSupport"]),
        .testTarget(name: "AHConfigTests", dependencies: ["AHConfig", "AHTestSupport"]),
        .testTarget(name: "AHHTTPTests", dependencies: ["AHHTTP", "AHStore", "AHTestSupport"]),
        .testTarget(
            name: "AHAccessPointTests",
            dependencies: [
                "AHAccessPoint", "AHExecutor", "AHQUIC", "AHIdentity", "AHStore", "AHTestSupport", "ah",
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
            ],
            swiftSettings: loopConfined
        ),
        .testTarget(name: "AHIdentityTests", dependencies: ["AHIdentity", "AHTestSupport"]),
        .testTarget(
            name: "AHQUICTests",
            dependencies: [
                "AHQUIC", "AHTestSupport", "AHIdentity", "ah", "CNgtcp2",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: loopConfined
        ),
    ]
)
