import AHControl
import Crypto
import Foundation
import Subprocess

/// The host keys of the executor's sshd, reported in Hello so that `ah ssh-config` can write a
/// known-hosts file trusted through mTLS instead of on first use.
///
/// Read from `.pub` files when given (`--ssh-host-key FILE`), else asked from the sshd itself
/// with `ssh-keyscan` against `--ssh-dst` (loopback, so the answer is the local daemon's).
public enum SSHHostKeys {
    /// Parses `[host] ALGORITHM BASE64 [comment]` lines (ssh-keyscan output, `.pub` files).
    /// Lines that are comments or do not carry a valid base64 blob are skipped.
    public static func parse(_ text: String) -> [SSHHostKey] {
        var keys: [SSHHostKey] = []
        for line in text.split(whereSeparator: \.isNewline) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard let first = fields.first, !first.hasPrefix("#") else { continue }
            // ssh-keyscan prefixes the host; a .pub file starts with the algorithm.
            let offset = isAlgorithm(first) ? 0 : 1
            guard fields.count >= offset + 2, isAlgorithm(fields[offset]),
                  let blob = Data(base64Encoded: fields[offset + 1]), !blob.isEmpty, blob.count <= 8192 else { continue }
            let key = SSHHostKey(algorithm: fields[offset], publicKey: fields[offset + 1], fingerprint: fingerprint(of: blob))
            if !keys.contains(key) { keys.append(key) }
        }
        return keys.sorted { $0.algorithm < $1.algorithm }
    }

    /// `SHA256:` + unpadded base64, the form `ssh-keygen -lf` and ssh's prompts use.
    public static func fingerprint(of blob: Data) -> String {
        let digest = Data(SHA256.hash(data: blob)).base64EncodedString()
        return "SHA256:" + digest.replacingOccurrences(of: "=", with: "")
    }

    private static func isAlgorithm(_ field: String) -> Bool {
        field.hasPrefix("ssh-") || field.hasPrefix("ecdsa-") || field.hasPrefix("sk-")
    }

    /// Reads the keys from `.pub` files.
    public static func read(files: [String]) throws -> [SSHHostKey] {
        var text = ""
        for file in files { text += try String(contentsOfFile: file, encoding: .utf8) + "\n" }
        return parse(text)
    }

    /// Asks the sshd at `destination` with `ssh-keyscan` (5 s timeout). Empty on failure, with
    /// the reason: the executor still works, `ah ssh-config` then has nothing to pin (and the
    /// agent asks again later: `HostKeyWatch`).
    public static func scan(_ destination: TunnelPolicy.Destination) async -> (keys: [SSHHostKey], error: String?) {
        let output: String
        let status: String
        do {
            let result = try await Subprocess.run(
                .name("ssh-keyscan"), arguments: ["-T", "5", "-p", String(destination.port), destination.host],
                input: .none, output: .string(limit: 256 * 1024), error: .discarded)
            output = result.standardOutput
            status = "\(result.terminationStatus)"
        } catch {
            return ([], "cannot run ssh-keyscan: \(error)")
        }
        let keys = parse(output)
        if keys.isEmpty { return ([], "ssh-keyscan found no host keys at \(destination) (\(status))") }
        return (keys, nil)
    }
}
