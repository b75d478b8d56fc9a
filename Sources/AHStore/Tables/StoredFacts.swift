import Foundation

/// The JSON of `executor_facts.facts_json`, by shape:
///
/// - shape 1 (no `shape` key): the executor's Hello message exactly as the access point
///   received it (`{"version":1,"type":"hello","name":...,"agentVersion":...}`), written by
///   versions before the store had a facts type of its own;
/// - shape 2: `{"shape":2,"facts":{...ExecutorFacts...}}`, written now.
///
/// Old rows are never rewritten; they decode through their shape until the executor reports
/// again. A shape newer than this build knows is refused by name instead of misread.
enum StoredFacts {
    static let currentShape = 2

    private struct Current: Codable {
        var shape: Int
        var facts: ExecutorFacts
    }

    private struct ShapeProbe: Decodable {
        var shape: Int?
    }

    /// Shape 1: the Hello fields the facts are made of. Fields the Hello had beyond these
    /// (name, tags, version, type) are ignored.
    private struct HelloShape: Decodable {
        var agentVersion: String
        var os: String
        var osVersion: String
        var arch: String
        var cpuCount: Int
        var memoryBytes: UInt64
        var sshEnabled: Bool
        var sshHostKeys: [ExecutorFacts.HostKey]?
        var allowedPorts: [Int]?
        var heartbeatIntervalMillis: Int

        var facts: ExecutorFacts {
            ExecutorFacts(agentVersion: agentVersion, os: os, osVersion: osVersion, arch: arch, cpuCount: cpuCount,
                          memoryBytes: memoryBytes, sshEnabled: sshEnabled, sshHostKeys: sshHostKeys ?? [],
                          allowedPorts: allowedPorts ?? [], heartbeatIntervalMillis: heartbeatIntervalMillis)
        }
    }

    static func encode(_ facts: ExecutorFacts) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(Current(shape: currentShape, facts: facts)), as: UTF8.self)
    }

    static func decode(_ json: String, name: String) throws -> ExecutorFacts {
        let data = Data(json.utf8)
        let decoder = JSONDecoder()
        do {
            switch try decoder.decode(ShapeProbe.self, from: data).shape {
            case nil:
                return try decoder.decode(HelloShape.self, from: data).facts
            case currentShape?:
                return try decoder.decode(Current.self, from: data).facts
            case let shape?:
                throw IdentityStoreError.corruptRow(
                    "executor_facts of \(name) has shape \(shape), newer than this ah knows (\(currentShape)); upgrade ah")
            }
        } catch let error as IdentityStoreError {
            throw error
        } catch {
            throw IdentityStoreError.corruptRow("executor_facts of \(name) cannot be decoded: \(json.prefix(200))")
        }
    }
}
