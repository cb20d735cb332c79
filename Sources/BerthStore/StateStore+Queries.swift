import BerthModel
import Foundation

extension StateStore {
    /// The stored objects, optionally of one kind, ordered by kind then name.
    public func objects(kind: ResourceKind? = nil) throws -> [StoredObject] {
        try read("listing objects") { db in
            let rows = try kind.map { try ObjectRow.all(db, "WHERE kind = ?", [.text($0.rawValue)]) } ?? ObjectRow.all(db)
            let resources = try Self.decodeDocuments(rows.map(\.document))
            return zip(rows, resources).map { row, resource in
                StoredObject(resource: resource, revision: row.revision, createdRevision: row.createdRevision, document: row.document)
            }.sorted { $0.resource.key < $1.resource.key }
        }
    }

    /// One stored object, or nil.
    public func object(_ key: ObjectKey) throws -> StoredObject? {
        try read("reading \(key)") { db in
            guard let row = try ObjectRow.one(db, "WHERE kind = ? AND name = ?", [.text(key.kind.rawValue), .text(key.name)]) else { return nil }
            return StoredObject(resource: try ResourceCoding.decode(json: row.document), revision: row.revision,
                                createdRevision: row.createdRevision, document: row.document)
        }
    }

    /// The newest revision number, or nil when nothing was ever applied.
    public func latestRevision() throws -> Int64? {
        try read("reading the latest revision") { db in
            try db.row("SELECT MAX(id) FROM revision")?.optionalInt64(0)
        }
    }

    /// Revisions newest first, each with the objects it changed; only those that changed `key` when given.
    public func history(of key: ObjectKey? = nil, limit: Int = 20) throws -> [RevisionSummary] {
        try read("reading history") { db in
            let revisions: [Revision]
            if let key {
                revisions = try Revision.all(db, """
                    WHERE id IN (SELECT revision FROM objectVersion WHERE kind = ? AND name = ?)
                    ORDER BY id DESC LIMIT ?
                    """, [.text(key.kind.rawValue), .text(key.name), .int(Int64(limit))])
            } else {
                revisions = try Revision.all(db, "ORDER BY id DESC LIMIT ?", [.int(Int64(limit))])
            }
            guard let newest = revisions.first?.id, let oldest = revisions.last?.id else { return [] }
            var changes: [Int64: [ObjectChange]] = [:]
            let rows = try db.rows("""
                SELECT revision, kind, name, action FROM objectVersion
                WHERE revision BETWEEN ? AND ?
                """, [.int(oldest), .int(newest)])
            let wanted = Set(revisions.compactMap(\.id))
            for row in rows {
                let revision = try row.int64(0)
                guard wanted.contains(revision), let kind = ResourceKind(rawValue: try row.string(1)),
                      let action = ChangeAction(rawValue: try row.string(3)) else { continue }
                changes[revision, default: []].append(ObjectChange(key: ObjectKey(kind, try row.string(2)), action: action))
            }
            return revisions.map { r in
                RevisionSummary(revision: r, changes: (changes[r.id!] ?? []).sorted { $0.key < $1.key })
            }
        }
    }

    /// One revision's record, or nil.
    public func revision(_ number: Int64) throws -> Revision? {
        try read("reading revision \(number)") { db in try Revision.one(db, "WHERE id = ?", [.int(number)]) }
    }

    /// The whole desired state as it was right after `revision`, ordered by kind then name.
    public func state(at revision: Int64) throws -> [Resource] {
        try read("reconstructing revision \(revision)") { db in
            let documents = try db.rows("""
                SELECT v.document FROM objectVersion v
                JOIN (SELECT kind, name, MAX(revision) AS last FROM objectVersion WHERE revision <= ? GROUP BY kind, name) latest
                  ON v.kind = latest.kind AND v.name = latest.name AND v.revision = latest.last
                WHERE v.document IS NOT NULL
                """, [.int(revision)]).map { try $0.string(0) }
            return try Self.decodeDocuments(documents).sorted { $0.key < $1.key }
        }
    }

    /// The whole desired state right after `revision` as stored documents (canonical JSON), by
    /// object: for comparing states without decoding every object.
    public func documents(at revision: Int64) throws -> [ObjectKey: String] {
        try read("reading the documents of revision \(revision)") { db in
            let rows = try db.rows("""
                SELECT v.kind, v.name, v.document FROM objectVersion v
                JOIN (SELECT kind, name, MAX(revision) AS last FROM objectVersion WHERE revision <= ? GROUP BY kind, name) latest
                  ON v.kind = latest.kind AND v.name = latest.name AND v.revision = latest.last
                WHERE v.document IS NOT NULL
                """, [.int(revision)])
            var result: [ObjectKey: String] = [:]
            for row in rows {
                guard let kind = ResourceKind(rawValue: try row.string(0)) else { continue }
                result[ObjectKey(kind, try row.string(1))] = try row.string(2)
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
            try Event.all(db, "ORDER BY id DESC LIMIT ?", [.int(Int64(limit))])
        }
    }

    /// Runs SQLite's integrity check; returns its findings, empty when the file is sound. On
    /// PostgreSQL (which checks its own pages) it checks what the schema cannot: every object's
    /// current row matches its newest version in the history.
    public func integrityProblems() throws -> [String] {
        try read("checking integrity") { db in
            if db.dialect == .sqlite {
                let result = try db.rows("PRAGMA integrity_check").map { try $0.string(0) }
                return result == ["ok"] ? [] : result
            }
            // IS DISTINCT FROM: an object whose newest version is a deletion (NULL), or that has
            // no version at all, is reported too.
            return try db.rows("""
                SELECT o.kind, o.name FROM object o
                WHERE o.document IS DISTINCT FROM (SELECT v.document FROM objectVersion v WHERE v.kind = o.kind AND v.name = o.name
                                                   ORDER BY v.revision DESC LIMIT 1)
                """).map { "\(try $0.string(0)) \(try $0.string(1)) differs from its newest version in the history" }
        }
    }
}
