import BerthModel
import Foundation

extension StateStore {
    /// Stores `input` as the new desired state in one transaction, creating at most one revision.
    ///
    /// Input objects replace stored ones of the same kind and name; with `prune`, stored objects
    /// missing from the input are deleted. The resulting desired state is validated as a whole
    /// first: on any problem, `ManifestErrors` is thrown and nothing is written.
    public func apply(_ input: [LoadedResource], options: ApplyOptions) throws -> ApplyResult {
        let body = { (db: any SQLSession) throws -> ApplyResult in
            let stored = try Self.currentRows(db)
            let encoder = CanonicalEncoder()
            var changes: [ObjectChange] = []
            var writes: [(key: ObjectKey, action: ChangeAction, document: String?)] = []
            var inputKeys = Set<ObjectKey>()
            for item in input {
                let key = item.resource.key
                inputKeys.insert(key)
                let document = encoder.encode(item.resource)
                let action: ChangeAction = switch stored[key]?.document {
                case nil: .created
                case document: .unchanged
                default: .configured
                }
                changes.append(ObjectChange(key: key, action: action))
                if action != .unchanged { writes.append((key, action, document)) }
            }
            let deleted = Set(stored.keys.filter { !inputKeys.contains($0) && (options.prune || options.deleting.contains($0)) })
            for key in deleted.sorted() {
                changes.append(ObjectChange(key: key, action: .deleted))
                writes.append((key, .deleted, nil))
            }
            // Validate the whole resulting state: the input plus what stays stored.
            let staying = try Self.decodeDocuments(stored.filter { key, _ in !inputKeys.contains(key) && !deleted.contains(key) }.values.map(\.document))
            let issues = FleetValidator.validate(input: input, others: staying)
            if !issues.isEmpty { throw ManifestErrors(issues) }
            if writes.isEmpty || options.dryRun { return ApplyResult(changes: changes, revision: nil) }

            let count = { (a: ChangeAction) in writes.filter { $0.action == a }.count }
            var revision = Revision(
                id: nil, createdAt: options.time ?? Date(), author: options.author, message: options.message,
                origin: options.origin, createdCount: count(.created), configuredCount: count(.configured), deletedCount: count(.deleted))
            // Numbered here, under the write lock, not by a sequence: numbers stay dense on every
            // backend (PostgreSQL's sequences skip numbers after a crash or a rolled-back write).
            let number = try db.row("SELECT COALESCE(MAX(id), 0) + 1 FROM revision")?.int64(0) ?? 1
            revision.id = number
            try Revision.insert([revision], into: db)
            try ObjectVersionRow.insert(writes.map {
                ObjectVersionRow(revision: number, kind: $0.key.kind.rawValue, name: $0.key.name, action: $0.action.rawValue, document: $0.document)
            }, into: db)
            try ObjectRow.upsert(writes.compactMap { w in
                w.document.map {
                    ObjectRow(kind: w.key.kind.rawValue, name: w.key.name, revision: number, createdRevision: stored[w.key]?.createdRevision ?? number, document: $0)
                }
            }, key: ["kind", "name"], into: db)
            for w in writes where w.document == nil {
                try db.execute("DELETE FROM object WHERE kind = ? AND name = ?", [.text(w.key.kind.rawValue), .text(w.key.name)])
            }
            let summary = [("created", count(.created)), ("configured", count(.configured)), ("deleted", count(.deleted))]
                .filter { $0.1 > 0 }.map { "\($0.1) \($0.0)" }.joined(separator: ", ")
            var event = Event(time: revision.createdAt, revision: number, kind: nil, name: nil,
                              reason: options.origin == .apply ? Reason.applied.rawValue : options.origin == .rollback ? Reason.rolledBack.rawValue : Reason.restored.rawValue,
                              message: "revision \(number) by \(options.author): \(summary)")
            try event.insert(db)
            return ApplyResult(changes: changes, revision: number)
        }
        if options.dryRun {
            return try read("computing a dry-run apply", body)
        }
        return try write("applying \(input.count) object(s)", body)
    }

    struct CurrentRow {
        var document: String
        var revision: Int64
        var createdRevision: Int64
    }

    static func currentRows(_ db: any SQLSession) throws -> [ObjectKey: CurrentRow] {
        var rows: [ObjectKey: CurrentRow] = [:]
        for row in try ObjectRow.all(db) {
            guard let kind = ResourceKind(rawValue: row.kind) else { continue }
            rows[ObjectKey(kind, row.name)] = CurrentRow(document: row.document, revision: row.revision, createdRevision: row.createdRevision)
        }
        return rows
    }
}

/// Canonical JSON with one reusable encoder.
struct CanonicalEncoder {
    let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    func encode(_ resource: Resource) -> String {
        String(decoding: try! encoder.encode(resource), as: UTF8.self)
    }
}
