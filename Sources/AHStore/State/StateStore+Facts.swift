import Foundation

extension StateStore: FactsStore {
    public func recordFacts(name: String, facts: ExecutorFacts, now: Date) {
        enqueue("facts of executor \(name.prefix(64))") { try $0.recordFacts(name: name, facts: facts, now: now) }
    }

    public func allFacts() async throws -> [String: ReportedFacts] {
        let (facts, unreadable) = try await run { tables -> ([String: ReportedFacts], [(String, String)]) in
            var unreadable: [(String, String)] = []
            let facts = try tables.allFacts { name, error in unreadable.append((name, "\(error)")) }
            return (facts, unreadable)
        }
        for (name, error) in unreadable { reportUnreadableFacts(name: name, error: error) }
        return facts
    }
}
