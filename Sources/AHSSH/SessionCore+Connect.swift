import CLibSSH2
import Foundation
import NIOCore

// Handshake, host key check, authentication: loop thread only (see SessionCore).
extension SessionCore {
    /// OpenSSH's host key order, so that the key checked is the one `ssh` (and
    /// `ssh-keyscan`) would see; libssh2's own order prefers ECDSA.
    static let hostKeyPreference = "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256"

    func stepHandshake() -> Outcome {
        if libssh2_session_method_pref(handle.raw, LIBSSH2_METHOD_HOSTKEY, Self.hostKeyPreference) != 0 {
            logger.debug("libssh2 rejected the host key preference", metadata: ["error": "\(handle.lastErrorText)"])
        }
        let rc = libssh2_session_handshake(handle.raw, handle.fd)
        if rc == LIBSSH2_ERROR_EAGAIN { return .wouldBlock }
        guard rc == 0 else {
            failConnect(SSHError(.connect, "the SSH handshake failed: \(handle.lastErrorText)"))
            return .idle
        }
        guard let error = checkHostKey() else {
            phase = .authenticating
            return .progress
        }
        failConnect(error)
        return .idle
    }

    /// Compares the server's key with the expected fingerprints; nil when it matches. Runs
    /// before any authentication, so a wrong server never sees our user name or key.
    private func checkHostKey() -> SSHError? {
        guard let hash = libssh2_hostkey_hash(handle.raw, LIBSSH2_HOSTKEY_HASH_SHA256) else {
            return SSHError(.hostKey, "the server's host key could not be hashed: \(handle.lastErrorText)")
        }
        let digest = hash.withMemoryRebound(to: UInt8.self, capacity: 32) { Array(UnsafeBufferPointer(start: $0, count: 32)) }
        serverFingerprint = SSHHostKeyFingerprint.sha256(digest: digest)
        var length = 0
        var type: Int32 = 0
        _ = libssh2_session_hostkey(handle.raw, &length, &type)
        let keyType = Self.hostKeyTypeName(type)
        logger.debug("SSH server host key", metadata: ["fingerprint": "\(serverFingerprint)", "type": "\(keyType)"])
        let expected = options.expectedHostKeys.map(SSHHostKeyFingerprint.normalized)
        if expected.isEmpty {
            return SSHError(.hostKey, "refusing the server: no expected host key fingerprint was given, and the server presented \(keyType) key \(serverFingerprint)")
        }
        if expected.contains(serverFingerprint) { return nil }
        let list = expected.joined(separator: ", ")
        return SSHError(.hostKey, "the server's host key does not match: expected \(list), but the server presented \(keyType) key \(serverFingerprint); not authenticating")
    }

    static func hostKeyTypeName(_ type: Int32) -> String {
        switch type {
        case LIBSSH2_HOSTKEY_TYPE_ED25519: return "ssh-ed25519"
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return "ecdsa-sha2-nistp256"
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return "ecdsa-sha2-nistp384"
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return "ecdsa-sha2-nistp521"
        case LIBSSH2_HOSTKEY_TYPE_RSA: return "ssh-rsa"
        default: return "unknown-type"
        }
    }

    func stepAuthenticate() -> Outcome {
        switch options.auth {
        case .keyFile(let path): return authenticateWithKeyFile(path)
        case .agent: return authenticateWithAgent()
        }
    }

    private func authenticateWithKeyFile(_ path: String) -> Outcome {
        let user = options.user
        let rc = user.withCString { userPointer in
            libssh2_userauth_publickey_fromfile_ex(handle.raw, userPointer, UInt32(user.utf8.count), nil, path, nil)
        }
        if rc == LIBSSH2_ERROR_EAGAIN { return .wouldBlock }
        guard rc == 0 else {
            let text = handle.lastErrorText
            switch rc {
            case LIBSSH2_ERROR_FILE, LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED, LIBSSH2_ERROR_METHOD_NOT_SUPPORTED:
                failConnect(SSHError(.authentication, "the private key \(path) could not be used to log in as \(user): \(text)"))
            default:
                failConnect(SSHError(.authentication, "the server refused public key authentication as \(user) with the key \(path): \(text)"))
            }
            return .idle
        }
        becomeReady(method: "key file")
        return .progress
    }

    private func authenticateWithAgent() -> Outcome {
        let user = options.user
        if agent == nil {
            guard let socketPath = ProcessInfo.processInfo.environment["SSH_AUTH_SOCK"], !socketPath.isEmpty else {
                failConnect(SSHError(.authentication, "ssh-agent authentication as \(user) was requested, but SSH_AUTH_SOCK is not set"))
                return .idle
            }
            guard let raw = libssh2_agent_init(handle.raw) else {
                failConnect(SSHError(.authentication, "could not set up an ssh-agent client: \(handle.lastErrorText)"))
                return .idle
            }
            let owned = AgentHandle(raw)
            agent = owned
            // The agent is a local Unix socket: these calls block briefly, as ssh does.
            guard libssh2_agent_connect(raw) == 0 else {
                failConnect(SSHError(.authentication, "could not reach the ssh-agent at \(socketPath): \(handle.lastErrorText)"))
                return .idle
            }
            guard libssh2_agent_list_identities(raw) == 0 else {
                failConnect(SSHError(.authentication, "could not list the ssh-agent's keys at \(socketPath): \(handle.lastErrorText)"))
                return .idle
            }
            guard advanceAgentIdentity() else { return .idle }
        }
        guard let agent, let identity = agentIdentity else { return .idle }
        let rc = libssh2_agent_userauth(agent.raw, user, identity)
        if rc == LIBSSH2_ERROR_EAGAIN { return .wouldBlock }
        if rc == 0 {
            agent.release()
            self.agent = nil
            agentIdentity = nil
            becomeReady(method: "ssh-agent")
            return .progress
        }
        logger.debug("ssh-agent key refused", metadata: ["comment": "\(identity.pointee.comment.map { String(cString: $0) } ?? "")"])
        return advanceAgentIdentity() ? .progress : .idle
    }

    /// Moves to the agent's next key; false (and the connect failed) when none is left.
    private func advanceAgentIdentity() -> Bool {
        guard let agent else { return false }
        var next: UnsafeMutablePointer<libssh2_agent_publickey>?
        let rc = libssh2_agent_get_identity(agent.raw, &next, agentIdentity)
        if rc == 0, let next {
            agentIdentity = next
            agentTried += 1
            return true
        }
        let user = options.user
        if rc == 1 {
            let detail = agentTried == 0 ? "the ssh-agent holds no keys" : "the server refused all \(agentTried) keys of the ssh-agent"
            failConnect(SSHError(.authentication, "public key authentication as \(user) failed: \(detail)"))
        } else {
            failConnect(SSHError(.authentication, "reading the ssh-agent's keys failed: \(handle.lastErrorText)"))
        }
        return false
    }

    private func becomeReady(method: String) {
        phase = .ready
        readySince = .now()
        alive.withLockedValue { $0 = true }
        if let interval = keepaliveInterval {
            // want_reply: sshd answers each keepalive, which is what shows the session lives.
            libssh2_keepalive_config(handle.raw, 1, UInt32(interval))
            keepaliveNext = .now() + .seconds(Int64(interval))
        }
        logger.debug("SSH session authenticated", metadata: ["user": "\(options.user)", "method": "\(method)"])
        connectContinuation?.resume(returning: serverFingerprint)
        connectContinuation = nil
    }
}
