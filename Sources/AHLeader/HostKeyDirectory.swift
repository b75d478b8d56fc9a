import AHHTTPClient
import Foundation
import NIOCore

/// The expected host key fingerprints per follower: from its `known_hosts` file, else from
/// the facts its executor reported to the access point (re-read when a follower's keys are
/// missing or do not match, since an sshd may have been re-keyed and re-reported).
actor HostKeyDirectory {
    let fleet: LeaderFleet
    private var reported: [String: [String: [String]]] = [:]

    init(fleet: LeaderFleet) { self.fleet = fleet }

    func expected(for member: LeaderMember, refresh: Bool = false) async throws -> [String] {
        if let knownHosts = member.knownHosts {
            let keys = try ExpectedHostKeys.fromKnownHosts(path: knownHosts, host: member.host ?? member.name, port: member.sshPort)
            guard !keys.isEmpty else {
                throw LeaderFailure.unreachable("\(member.name): no host key for '\(member.host ?? member.name)' in known_hosts '\(knownHosts)'")
            }
            return keys
        }
        guard let server = member.remoteServer else {
            throw LeaderFailure.usage("\(member.name): no access point (remote_server) and no known_hosts: its host key cannot be verified")
        }
        if refresh || reported[server]?[member.name] == nil {
            let client = try AccessPointAccess.apiClient(server: server, fleet: fleet)
            reported[server] = try await ExpectedHostKeys.fromAccessPoint(client: client, token: try AccessPointAccess.token(fleet: fleet))
        }
        guard let keys = reported[server]?[member.name] else {
            throw LeaderFailure.unreachable("\(member.name): the access point \(server) has no executor named '\(member.name)'")
        }
        guard !keys.isEmpty else {
            throw LeaderFailure.unreachable("\(member.name): its executor has not reported sshd host keys to \(server) yet")
        }
        return keys
    }
}

/// Clients for a member's access point, with the fleet's token and CA.
enum AccessPointAccess {
    static func token(fleet: LeaderFleet, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        guard let path = fleet.tokenFile ?? environment["AH_TOKEN_FILE"] else {
            throw LeaderFailure.usage("the fleet uses an access point but has no token: set [fleet] token_file or AH_TOKEN_FILE")
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw LeaderFailure.usage("token_file '\(path)' cannot be read")
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty, !token.contains(where: \.isWhitespace) else {
            throw LeaderFailure.usage("token_file '\(path)' does not hold one JWT")
        }
        return token
    }

    static func url(_ server: String) throws -> APIServerURL {
        do { return try APIServerURL(parsing: server) } catch {
            throw LeaderFailure.usage("remote_server '\(server)': \(error)")
        }
    }

    static func apiClient(server: String, fleet: LeaderFleet) throws -> HTTPAPIClient {
        var client = HTTPAPIClient(server: try url(server))
        client.tls = try tls(client.server, fleet: fleet)
        return client
    }

    static func tls(_ server: APIServerURL, fleet: LeaderFleet) throws -> (@Sendable (Channel) throws -> Void)? {
        do { return try ClientTLS.setup(for: server, caFile: fleet.caFile) } catch { throw LeaderFailure.usage(error.description) }
    }

    static func connectClient(server: String, fleet: LeaderFleet, timeout: Duration) throws -> ConnectClient {
        var client = ConnectClient(server: try url(server))
        client.tls = try tls(client.server, fleet: fleet)
        client.timeout = .nanoseconds(Int64(timeout.milliseconds * 1_000_000))
        return client
    }
}
