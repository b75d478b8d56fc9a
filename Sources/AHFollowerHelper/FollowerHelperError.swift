/// What the leader side (`HelperClient`) reports. Every case reads as a sentence naming the
/// value and the cause.
public enum FollowerHelperError: Error, Equatable, CustomStringConvertible {
    /// No hello from the helper within the deadline.
    case handshakeTimedOut(Duration)
    /// The helper answered with a protocol major this build does not speak.
    case incompatibleVersion(leader: Int, leaderAH: String, helper: Int, helperAH: String)
    /// The helper refused the handshake (its `error` message, e.g. code `version`).
    case refused(code: String, message: String)
    /// The connection to the helper ended (transport closed, read or write failed).
    case connectionLost(String)
    /// The connection ended before this job reported its exit: its outcome is unknown.
    case jobLost(job: UInt32, reason: String)
    /// The helper refused to run this job (`bad-request`, `duplicate-job`, `too-many-jobs`, …).
    case jobRefused(job: UInt32, code: String, message: String)
    /// A job with this id is already running on this client.
    case duplicateJob(UInt32)
    case probeTimedOut(Duration)
    /// The helper sent bytes that are not a valid frame sequence.
    case protocolViolation(String)
    /// `close()` was called.
    case closed

    public var description: String {
        switch self {
        case .handshakeTimedOut(let timeout):
            return "the follower helper did not answer the hello within \(timeout)"
        case .incompatibleVersion(let leader, let leaderAH, let helper, let helperAH):
            return "the follower helper (ah \(helperAH)) speaks protocol version \(helper), this leader (ah \(leaderAH)) "
                + "speaks version \(leader); install the same ah version on both"
        case .refused(let code, let message):
            return "the follower helper refused the connection (\(code)): \(message)"
        case .connectionLost(let reason):
            return "the connection to the follower helper was lost: \(reason)"
        case .jobLost(let job, let reason):
            return "the connection to the follower helper ended before job \(job) reported its exit: \(reason)"
        case .jobRefused(let job, let code, let message):
            return "the follower helper refused job \(job) (\(code)): \(message)"
        case .duplicateJob(let job):
            return "job id \(job) is already in use on this follower helper connection"
        case .probeTimedOut(let timeout):
            return "the follower helper did not answer a probe within \(timeout)"
        case .protocolViolation(let detail):
            return "the follower helper broke the protocol: \(detail)"
        case .closed:
            return "the follower helper connection was closed"
        }
    }
}
