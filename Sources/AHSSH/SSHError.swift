/// Why an SSH operation failed, as a sentence that names what we were doing and what
/// libssh2 (or the server) said.
public struct SSHError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// TCP-level or protocol failure while setting the session up.
        case connect
        /// The handshake and authentication did not finish within the connect timeout.
        case timeout
        /// The server's host key is not one of the expected fingerprints (or none was given).
        case hostKey
        /// The server refused our key (or the agent's keys), or the key file is unusable.
        case authentication
        /// sshd refused to open a channel or to run the command.
        case channel
        /// The session died (socket closed or reset, keepalive unanswered).
        case sessionDead
        /// The session or channel was closed by us before the operation could finish.
        case closed
        /// The caller passed a value that cannot be used (a command containing NUL, ...).
        case invalidArgument
    }

    public let kind: Kind
    public let description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}
