import BerthModel
import Foundation

/// The outcome of checking one artifact's sha256, where and when.
public struct Verification: Codable, Sendable, Hashable {
    public var id: Int64?
    public var model: String
    public var version: String
    public var path: String
    /// nil: the controller's filesystem.
    public var node: String?
    public var expected: String
    /// nil when the file could not be read.
    public var actual: String?
    public var ok: Bool
    /// Why not ok: `missing`, `unreadable: …`, `sha256 mismatch`.
    public var detail: String
    public var verifiedAt: Date

    public init(model: String, version: String, path: String, node: String?, expected: String, actual: String?, ok: Bool, detail: String, verifiedAt: Date) {
        self.model = model
        self.version = version
        self.path = path
        self.node = node
        self.expected = expected
        self.actual = actual
        self.ok = ok
        self.detail = detail
        self.verifiedAt = verifiedAt
    }
}

extension StateStore {
    /// Records verification results, all in one transaction.
    public func record(_ results: [Verification]) throws {
        try write("recording \(results.count) verification result(s)") { db in
            try Verification.append(results, into: db)
        }
    }

    /// The newest result per artifact path (and node) of one model version.
    public func latestVerifications(model: String, version: String) throws -> [Verification] {
        try read("reading verifications of \(model)@\(version)") { db in
            try Verification.all(db, """
                WHERE id IN (SELECT MAX(id) FROM verification WHERE model = ? AND version = ? GROUP BY path, node)
                """, [.text(model), .text(version)])
            // Sorted here: the database's collation and its place for NULLs differ by backend.
            .sorted { ($0.path, $0.node ?? "") < ($1.path, $1.node ?? "") }
        }
    }
}

extension StateStore {
    /// What stands between `version`'s artifacts and being served, one line per artifact: never
    /// verified, or its newest result (on any node, or here) failed, naming both hashes. Empty
    /// when every artifact has verified and no newer check failed.
    public func verificationProblems(model: String, version: ModelVersion) throws -> [String] {
        guard !version.artifacts.isEmpty else { return [] }
        let results = try latestVerifications(model: model, version: version.version)
        var problems: [String] = []
        for artifact in version.artifacts {
            let mine = results.filter { $0.path == artifact.path && $0.expected == artifact.sha256 }
            if mine.isEmpty {
                problems.append("\(model)@\(version.version): \(artifact.path) has not been verified (run `berth model verify \(model)@\(version.version)`)")
            } else if let bad = mine.first(where: { !$0.ok }) {
                problems.append("\(model)@\(version.version): \(artifact.path) failed verification\(bad.node.map { " on \($0)" } ?? ""): \(bad.detail)"
                                + (bad.actual.map { " (manifest \(bad.expected), file \($0))" } ?? ""))
            }
        }
        return problems
    }

    /// The nodes (nil: this machine) where `version` has a result for every artifact.
    public func verifiedPlaces(model: String, version: ModelVersion) throws -> Set<String?> {
        let results = try latestVerifications(model: model, version: version.version)
        let places = Set(results.map(\.node))
        return places.filter { place in
            version.artifacts.allSatisfy { a in results.contains { $0.node == place && $0.path == a.path && $0.expected == a.sha256 } }
        }
    }

    /// Records that `version`'s files were purged: a failing result for each artifact, here and on
    /// every node that had results, so none of its earlier verifications counts any more.
    public func recordPurge(model: String, version: ModelVersion, by who: String, at time: Date = Date()) throws {
        let places = Set(try latestVerifications(model: model, version: version.version).map(\.node)).union([nil])
        try record(places.flatMap { place in
            version.artifacts.map {
                Verification(model: model, version: version.version, path: $0.path, node: place, expected: $0.sha256, actual: nil,
                             ok: false, detail: "purged by \(who); verify again before serving it", verifiedAt: time)
            }
        })
    }
}
