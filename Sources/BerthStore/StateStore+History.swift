import BerthModel
import Foundation

extension StateStore {
    /// The newest revision stored at or before `time`, or nil when there was none yet.
    public func revision(at time: Date) throws -> Revision? {
        try read("finding the revision at \(time)") { db in
            try Revision.one(db, "WHERE createdAt <= ? ORDER BY id DESC", [.date(time)])
        }
    }

    /// The object as it was right after `revision`, or nil when it did not exist then.
    public func object(_ key: ObjectKey, at revision: Int64) throws -> Resource? {
        try read("reading \(key) at revision \(revision)") { db in
            let document = try db.row("""
                SELECT document FROM objectVersion WHERE kind = ? AND name = ? AND revision <= ?
                ORDER BY revision DESC LIMIT 1
                """, [.text(key.kind.rawValue), .text(key.name), .int(revision)])?.optionalString(0)
            return try document.map(ResourceCoding.decode(json:))
        }
    }

    /// The revisions that changed `key`, newest first.
    public func revisions(changing key: ObjectKey) throws -> [Int64] {
        try read("listing the revisions of \(key)") { db in
            try db.rows("SELECT revision FROM objectVersion WHERE kind = ? AND name = ? ORDER BY revision DESC",
                        [.text(key.kind.rawValue), .text(key.name)]).map { try $0.int64(0) }
        }
    }
}
