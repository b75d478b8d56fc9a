import AHAPI
import AHHTTPClient
import Crypto
import Foundation

/// Which sshd host keys the leader accepts for a follower — never trust on first use:
/// - members behind an access point: the fingerprints the executor reported in its Hello
///   over its mutually authenticated QUIC connection (`GET /api/v1/executors` facts), for
///   direct paths too;
/// - members without an access point: their `known_hosts` file.
public enum ExpectedHostKeys {
    /// `SHA256:` + unpadded base64 of the key blob, as OpenSSH prints fingerprints.
    public static func fingerprint(ofBlob blob: Data) -> String {
        "SHA256:" + Data(SHA256.hash(data: blob)).base64EncodedString().replacingOccurrences(of: "=", with: "")
    }

    /// Fingerprints of the keys for `host` (and `[host]:port`) in an OpenSSH known_hosts
    /// file. Hashed entries (`|1|...`) are matched too; `@revoked` lines are skipped.
    public static func fromKnownHosts(path: String, host: String, port: Int) throws -> [String] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw LeaderFailure.usage("known_hosts '\(path)' cannot be read: \(error.localizedDescription)")
        }
        let names = port == 22 ? [host] : ["[\(host)]:\(port)"]
        var found: [String] = []
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix("@revoked") { continue }
            var fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            if fields.first == "@cert-authority" { continue }
            guard fields.count >= 3 else { continue }
            let patterns = fields.removeFirst()
            guard patterns.split(separator: ",").contains(where: { matches(pattern: String($0), names: names) }),
                  let blob = Data(base64Encoded: fields[1]) else { continue }
            found.append(fingerprint(ofBlob: blob))
        }
        return found
    }

    private static func matches(pattern: String, names: [String]) -> Bool {
        if pattern.hasPrefix("|1|") {
            let parts = pattern.split(separator: "|")
            guard parts.count == 3, let salt = Data(base64Encoded: String(parts[1])),
                  let expected = Data(base64Encoded: String(parts[2])) else { return false }
            return names.contains { name in
                Data(HMAC<Insecure.SHA1>.authenticationCode(for: Data(name.utf8), using: SymmetricKey(data: salt))) == expected
            }
        }
        return names.contains(pattern)
    }

    /// The fingerprints every executor reported, by name, from the access point.
    public static func fromAccessPoint(client: HTTPAPIClient, token: String) async throws -> [String: [String]] {
        let response: HTTPAPIClientResponse
        do {
            response = try await client.get("/api/v1/executors", bearerToken: token)
        } catch {
            throw LeaderFailure.unreachable("cannot list executors at \(client.server): \(error)")
        }
        guard response.status.code == 200 else {
            let detail = response.problem?.detail ?? "HTTP \(response.status.code)"
            throw LeaderFailure.unreachable("listing executors at \(client.server) failed: \(detail)")
        }
        let list = try response.decode(ExecutorList.self)
        var keys: [String: [String]] = [:]
        for item in list.items {
            keys[item.name] = item.facts?.sshHostKeys.map(\.fingerprint) ?? []
        }
        return keys
    }
}
