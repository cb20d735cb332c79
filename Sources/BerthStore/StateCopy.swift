import BerthModel
import Foundation

/// Copies a fleet's whole history from one state to another, either backend to either: revisions,
/// object versions and objects, events, verification records, node and GPU holds, staging records.
/// What a controller saw (status, the lease) is not copied: the next controller sees for itself.
/// The source is read in one consistent view; the target is written in one transaction, so a
/// failed copy leaves it as it was.
public enum StateCopy {
    /// Rows per table, in the order they are copied (parents first).
    public struct Counts: Sendable, Equatable, CustomStringConvertible {
        public var tables: [(name: String, rows: Int)]

        public static func == (a: Counts, b: Counts) -> Bool {
            a.tables.map(\.name) == b.tables.map(\.name) && a.tables.map(\.rows) == b.tables.map(\.rows)
        }

        public var description: String { tables.map { "\($0.rows) \($0.name)" }.joined(separator: ", ") }

        public var revisions: Int { tables.first { $0.name == "revision" }?.rows ?? 0 }
    }

    /// The tables copied, parents before the rows that refer to them. Every table of the schema
    /// but `lease` and `status` (a test holds this list to the schema).
    static let tables = ["revision", "objectVersion", "object", "event", "verification", "nodeHold", "gpuHold", "staging"]

    /// Everything of `source`, read at once.
    struct History {
        var revisions: [Revision]
        var versions: [ObjectVersionRow]
        var objects: [ObjectRow]
        var events: [Event]
        var verifications: [Verification]
        var nodeHolds: [NodeHold]
        var gpuHolds: [GPUHold]
        var stagings: [Staging]

        var counts: Counts {
            Counts(tables: zip(StateCopy.tables, [revisions.count, versions.count, objects.count, events.count, verifications.count,
                                                  nodeHolds.count, gpuHolds.count, stagings.count]).map { ($0, $1) })
        }
    }

    static func read(_ db: any SQLSession) throws -> History {
        History(revisions: try Revision.all(db, "ORDER BY id"), versions: try ObjectVersionRow.all(db, "ORDER BY revision, kind, name"),
                objects: try ObjectRow.all(db), events: try Event.all(db, "ORDER BY id"), verifications: try Verification.all(db, "ORDER BY id"),
                nodeHolds: try NodeHold.all(db), gpuHolds: try GPUHold.all(db), stagings: try Staging.all(db))
    }

    static func write(_ history: History, into db: any SQLSession) throws {
        try Revision.insert(history.revisions, into: db)
        try ObjectVersionRow.insert(history.versions, into: db)
        try ObjectRow.insert(history.objects, into: db)
        try Event.insert(history.events, into: db)
        try Verification.insert(history.verifications, into: db)
        try NodeHold.insert(history.nodeHolds, into: db)
        try GPUHold.insert(history.gpuHolds, into: db)
        try Staging.insert(history.stagings, into: db)
        if db.dialect == .postgres {
            // Ids were given, not drawn: each sequence moves past the highest, so the next
            // revision, event or verification gets the next number.
            for table in ["revision", "event", "verification"] {
                try db.execute("SELECT setval(pg_get_serial_sequence('\(table)', 'id'), (SELECT COALESCE(MAX(id), 0) + 1 FROM \(table)), false)")
            }
        }
    }

    static func count(_ db: any SQLSession) throws -> Counts {
        Counts(tables: try tables.map { table in (table, Int(try db.row("SELECT COUNT(*) FROM \(table)")?.int64(0) ?? 0)) })
    }

    /// Copies `source` into `target`, which must hold no revision yet; returns the rows copied,
    /// checked against a count of the target afterwards.
    @discardableResult
    public static func copy(from source: StateStore, to target: StateStore) throws -> Counts {
        let history = try source.read("reading the whole history") { try read($0) }
        let expected = history.counts
        let counted = try target.write("copying \(expected.revisions) revision(s) in") { db -> Counts in
            var existing = try count(db)
            // A controller's leftovers (its lease, its status) make a target not empty either.
            for table in ["lease", "status"] { existing.tables.append((table, Int(try db.row("SELECT COUNT(*) FROM \(table)")?.int64(0) ?? 0))) }
            guard existing.tables.allSatisfy({ $0.rows == 0 }) else {
                throw StoreError(.invalidLocation, path: target.path, detail: "is not empty (\(Counts(tables: existing.tables.filter { $0.rows > 0 })))",
                                 hint: "copy into a new state: a file that does not exist yet, or an empty database")
            }
            try write(history, into: db)
            let counted = try count(db)
            // Checked before the commit: a short copy is never kept.
            guard counted == expected else {
                throw StoreError(.database, path: target.path, detail: "the copy holds \(counted) where the source holds \(expected)")
            }
            return counted
        }
        return counted
    }

    /// Rows per table in `store`.
    public static func counts(_ store: StateStore) throws -> Counts {
        try store.read("counting rows") { try count($0) }
    }
}
