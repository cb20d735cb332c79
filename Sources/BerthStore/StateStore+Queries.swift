import BerthModel
import Foundation
import GRDB

extension StateStore {
    /// The stored objects, optionally of one kind, ordered by kind then name.
    public func objects(kind: ResourceKind? = nil) throws -> [StoredObject] {
        try read("listing objects") { db in
            var sql = "SELECT kind, name, document, revision, createdRevision FROM object"
            var arguments: StatementArguments = []
            if let kind {
                sql += " WHERE kind = ?"
                arguments = [kind.rawValue]
            }
            sql += " ORDER BY name"
            let rows = try Row.fetchAll(db, sql: sql, arguments: arguments)
            let documents: [String] = rows.map { $0["document"] }
            let resources = try Self.decodeDocuments(documents)
            return zip(rows, resources).map { row, resource in
                StoredObject(resource: resource, revision: row["revision"], createdRevision: row["createdRevision"], document: row["document"])
            }.sorted { $0.resource.key < $1.resource.key }
        }
    }

    /// One stored object, or nil.
    public func object(_ key: ObjectKey) throws -> StoredObject? {
        try read("reading \(key)") { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT document, revision, createdRevision FROM object WHERE kind = ? AND name = ?",
                                             arguments: [key.kind.rawValue, key.name]) else { return nil }
            let document: String = row["document"]
            return StoredObject(resource: try ResourceCoding.decode(json: document), revision: row["revision"],
                                createdRevision: row["createdRevision"], document: document)
        }
    }

    /// The newest revision number, or nil when nothing was ever applied.
    public func latestRevision() throws -> Int64? {
        try read("reading the latest revision") { db in
            try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM revision")
        }
    }

    /// Revisions newest first, each with the objects it changed; only those that changed `key` when given.
    public func history(of key: ObjectKey? = nil, limit: Int = 20) throws -> [RevisionSummary] {
        try read("reading history") { db in
            let revisions: [Revision]
            if let key {
                revisions = try Revision.fetchAll(db, sql: """
                    SELECT revision.* FROM revision
                    JOIN objectVersion ON objectVersion.revision = revision.id
                    WHERE objectVersion.kind = ? AND objectVersion.name = ?
                    ORDER BY revision.id DESC LIMIT ?
                    """, arguments: [key.kind.rawValue, key.name, limit])
            } else {
                revisions = try Revision.fetchAll(db, sql: "SELECT * FROM revision ORDER BY id DESC LIMIT ?", arguments: [limit])
            }
            guard let newest = revisions.first?.id, let oldest = revisions.last?.id else { return [] }
            var changes: [Int64: [ObjectChange]] = [:]
            let rows = try Row.fetchCursor(db, sql: """
                SELECT revision, kind, name, action FROM objectVersion
                WHERE revision BETWEEN ? AND ? ORDER BY revision, kind, name
                """, arguments: [oldest, newest])
            let wanted = Set(revisions.compactMap(\.id))
            while let row = try rows.next() {
                let revision: Int64 = row["revision"]
                guard wanted.contains(revision), let kind = ResourceKind(rawValue: row["kind"]),
                      let action = ChangeAction(rawValue: row["action"]) else { continue }
                changes[revision, default: []].append(ObjectChange(key: ObjectKey(kind, row["name"]), action: action))
            }
            return revisions.map { r in
                RevisionSummary(revision: r, changes: (changes[r.id!] ?? []).sorted { $0.key < $1.key })
            }
        }
    }

    /// One revision's record, or nil.
    public func revision(_ number: Int64) throws -> Revision? {
        try read("reading revision \(number)") { db in try Revision.fetchOne(db, key: number) }
    }

    /// The whole desired state as it was right after `revision`, ordered by kind then name.
    public func state(at revision: Int64) throws -> [Resource] {
        try read("reconstructing revision \(revision)") { db in
            let documents = try String.fetchAll(db, sql: """
                SELECT v.document FROM objectVersion v
                JOIN (SELECT kind, name, MAX(revision) AS last FROM objectVersion WHERE revision <= ? GROUP BY kind, name) latest
                  ON v.kind = latest.kind AND v.name = latest.name AND v.revision = latest.last
                WHERE v.document IS NOT NULL
                """, arguments: [revision])
            return try Self.decodeDocuments(documents).sorted { $0.key < $1.key }
        }
    }

    /// The whole desired state right after `revision` as stored documents (canonical JSON), by
    /// object: for comparing states without decoding every object.
    public func documents(at revision: Int64) throws -> [ObjectKey: String] {
        try read("reading the documents of revision \(revision)") { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT v.kind, v.name, v.document FROM objectVersion v
                JOIN (SELECT kind, name, MAX(revision) AS last FROM objectVersion WHERE revision <= ? GROUP BY kind, name) latest
                  ON v.kind = latest.kind AND v.name = latest.name AND v.revision = latest.last
                WHERE v.document IS NOT NULL
                """, arguments: [revision])
            var result: [ObjectKey: String] = [:]
            for row in rows {
                guard let kind = ResourceKind(rawValue: row["kind"]) else { continue }
                result[ObjectKey(kind, row["name"])] = row["document"]
            }
            return result
        }
    }

    /// Decodes stored documents with one decoder.
    static func decodeDocuments(_ documents: [String]) throws -> [Resource] {
        let decoder = JSONDecoder()
        return try documents.map { try decoder.decode(Resource.self, from: Data($0.utf8)) }
    }

    /// Events newest first.
    public func events(limit: Int = 50) throws -> [Event] {
        try read("reading events") { db in
            try Event.fetchAll(db, sql: "SELECT * FROM event ORDER BY id DESC LIMIT ?", arguments: [limit])
        }
    }

    /// Runs SQLite's integrity check; returns its findings, empty when the file is sound.
    public func integrityProblems() throws -> [String] {
        try read("checking integrity") { db in
            let result = try String.fetchAll(db, sql: "PRAGMA integrity_check")
            return result == ["ok"] ? [] : result
        }
    }
}
