@preconcurrency import AHQUIC
import AHSPIFFE
import ArgumentParser
import Foundation

/// Certificate flags shared by every QUIC debug command.
struct TLSFileOptions: ParsableArguments {
    @Option(help: ArgumentHelp("PEM certificate (chain) with our SPIFFE ID.", valueName: "pem"))
    var cert: String
    @Option(help: ArgumentHelp("PEM private key for --cert.", valueName: "pem"))
    var key: String
    @Option(help: ArgumentHelp("PEM trust bundle (CA certificates) peers are verified against.", valueName: "pem"))
    var ca: String

    func validate() throws {
        for (flag, path) in [("--cert", cert), ("--key", key), ("--ca", ca)] where !FileManager.default.isReadableFile(atPath: path) {
            throw ValidationError("\(flag) '\(path)' is not a readable file")
        }
    }

    var identity: TLSIdentity { TLSIdentity(certFile: cert, keyFile: key, caFile: ca) }

    /// Policy from explicit IDs/prefixes, or by default any ID in our own trust domain.
    func peerPolicy(explicit: [String], flag: String) throws -> PeerPolicy {
        if !explicit.isEmpty {
            var policies: [PeerPolicy] = []
            for text in explicit {
                do { policies.append(try PeerPolicy(parsing: text)) } catch {
                    throw CLIError.usage("\(flag) '\(text)': \(error)")
                }
            }
            return policies.count == 1 ? policies[0] : .anyOf(policies)
        }
        let credentials: TLSCredentials
        do { credentials = try TLSCredentials(identity) } catch { throw CLIError.usage("\(error)") }
        guard let own = credentials.localSPIFFEID() else {
            throw CLIError.usage("--cert '\(cert)' has no single SPIFFE URI SAN; pass \(flag) explicitly")
        }
        return .prefix(trustDomain: own.trustDomain, pathPrefix: "")
    }
}

/// Byte counts like 1048576, 64KiB, 256MiB, 1GiB.
struct ByteCount: ExpressibleByArgument, Sendable {
    let value: Int
    init?(argument: String) {
        let units: [(String, Int)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10), ("", 1)]
        for (suffix, factor) in units where argument.hasSuffix(suffix) {
            guard let n = Int(argument.dropLast(suffix.count)), n >= 0 else { return nil }
            value = n * factor
            return
        }
        return nil
    }
}
