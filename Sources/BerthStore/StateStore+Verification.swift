import BerthModel
import Foundation
import GRDB

/// The outcome of checking one artifact's sha256, where and when.
public struct Verification: Codable, Sendable, Hashable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "verification"

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

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

extension StateStore {
    /// Records verification results, all in one transaction.
    public func record(_ results: [Verification]) throws {
        try write("recording \(results.count) verification result(s)") { db in
            for var r in results { try r.insert(db) }
        }
    }

    /// The newest result per artifact path (and node) of one model version.
    public func latestVerifications(model: String, version: String) throws -> [Verification] {
        try read("reading verifications of \(model)@\(version)") { db in
            try Verification.fetchAll(db, sql: """
                SELECT v.* FROM verification v
                JOIN (SELECT MAX(id) AS id FROM verification WHERE model = ? AND version = ? GROUP BY path, node) latest ON latest.id = v.id
                ORDER BY v.path, v.node
                """, arguments: [model, version])
        }
    }
}
