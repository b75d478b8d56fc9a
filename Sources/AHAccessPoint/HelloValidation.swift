import AHControl
import Foundation

/// Bounds and consistency checks on what an executor says about itself. The frame bound
/// (64 KiB) already limits the total; these keep each field to a sane size and shape so the
/// registry, the state file and `ah ssh-config` output can trust them.
enum HelloValidation {
    static let maxText = 256
    static let maxTags = 64
    static let maxHostKeys = 16
    static let maxHostKeyBase64 = 4096

    static func check(_ hello: Hello, certificateName: String) throws {
        guard hello.name == certificateName else {
            throw ControlViolation(code: ConnectionCloseCode.protocolViolation,
                                   reason: "hello names '\(hello.name.prefix(64))' but the certificate is for '\(certificateName)'")
        }
        for (field, value) in [("agentVersion", hello.agentVersion), ("os", hello.os), ("osVersion", hello.osVersion), ("arch", hello.arch)] {
            guard value.utf8.count <= maxText else { throw violation("\(field) longer than \(maxText) bytes") }
        }
        guard hello.cpuCount >= 0, hello.cpuCount <= 1 << 16 else { throw violation("cpuCount \(hello.cpuCount) out of range") }
        guard hello.tags.count <= maxTags else { throw violation("more than \(maxTags) tags") }
        for (key, value) in hello.tags where key.isEmpty || key.utf8.count > 63 || value.utf8.count > maxText {
            throw violation("tag '\(key.prefix(64))' too long or empty")
        }
        guard hello.sshHostKeys.count <= maxHostKeys else { throw violation("more than \(maxHostKeys) host keys") }
        for key in hello.sshHostKeys {
            guard key.algorithm.utf8.count <= 64, key.algorithm.allSatisfy({ $0.isLetter || $0.isNumber || "-@.".contains($0) }),
                  key.publicKey.utf8.count <= maxHostKeyBase64, let blob = Data(base64Encoded: key.publicKey), !blob.isEmpty,
                  key.fingerprint.utf8.count <= 128 else {
                throw violation("malformed host key '\(key.algorithm.prefix(64))'")
            }
        }
        guard hello.allowedPorts.count <= 64, hello.allowedPorts.allSatisfy({ (1...65535).contains($0) }) else {
            throw violation("allowedPorts malformed")
        }
        guard (100...3_600_000).contains(hello.heartbeatIntervalMillis) else {
            throw violation("heartbeatIntervalMillis \(hello.heartbeatIntervalMillis) outside 100...3600000")
        }
    }

    private static func violation(_ reason: String) -> ControlViolation {
        ControlViolation(code: ConnectionCloseCode.protocolViolation, reason: "hello: \(reason)")
    }
}
