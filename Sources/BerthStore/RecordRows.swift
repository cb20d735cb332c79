import BerthModel
import Foundation

// How each stored record reads from and writes to its table, on either backend.

extension Revision: SQLIdentifiedRecord {
    static let table = "revision"
    static let columns = ["id", "createdAt", "author", "message", "origin", "createdCount", "configuredCount", "deletedCount"]

    init(row: SQLRow) throws {
        let originText = try row.string(4)
        guard let origin = Origin(rawValue: originText) else { throw row.mismatch(4, "a revision origin") }
        self.init(id: try row.int64(0), createdAt: try row.date(1), author: try row.string(2), message: try row.string(3), origin: origin,
                  createdCount: try row.int(5), configuredCount: try row.int(6), deletedCount: try row.int(7))
    }

    var values: [SQLValue] {
        [SQLValue(id), .date(createdAt), .text(author), .text(message), .text(origin.rawValue),
         SQLValue(createdCount), SQLValue(configuredCount), SQLValue(deletedCount)]
    }
}

extension Event: SQLIdentifiedRecord {
    static let table = "event"
    static let columns = ["id", "time", "revision", "kind", "name", "type", "reason", "message"]

    init(row: SQLRow) throws {
        self.init(time: try row.date(1), revision: try row.optionalInt64(2), kind: try row.optionalString(3), name: try row.optionalString(4),
                  type: try row.string(5), reason: try row.string(6), message: try row.string(7))
        id = try row.int64(0)
    }

    var values: [SQLValue] {
        [SQLValue(id), .date(time), SQLValue(revision), SQLValue(kind), SQLValue(name), .text(type), .text(reason), .text(message)]
    }
}

extension Verification: SQLIdentifiedRecord {
    static let table = "verification"
    static let columns = ["id", "model", "version", "path", "node", "expected", "actual", "ok", "detail", "verifiedAt"]

    init(row: SQLRow) throws {
        self.init(model: try row.string(1), version: try row.string(2), path: try row.string(3), node: try row.optionalString(4),
                  expected: try row.string(5), actual: try row.optionalString(6), ok: try row.bool(7), detail: try row.string(8),
                  verifiedAt: try row.date(9))
        id = try row.int64(0)
    }

    var values: [SQLValue] {
        [SQLValue(id), .text(model), .text(version), .text(path), SQLValue(node), .text(expected), SQLValue(actual), .bool(ok),
         .text(detail), .date(verifiedAt)]
    }
}

extension Lease: SQLRecord {
    static let table = "lease"
    static let columns = ["name", "holder", "epoch", "acquiredAt", "renewedAt", "expiresAt", "renewals"]

    init(row: SQLRow) throws {
        self.init(name: try row.string(0), holder: try row.string(1), epoch: try row.int64(2), acquiredAt: try row.date(3),
                  renewedAt: try row.date(4), expiresAt: try row.date(5), renewals: try row.int64(6))
    }

    var values: [SQLValue] {
        [.text(name), .text(holder), .int(epoch), .date(acquiredAt), .date(renewedAt), .date(expiresAt), .int(renewals)]
    }
}

extension NodeHold: SQLRecord {
    static let table = "nodeHold"
    static let columns = ["node", "cordoned", "draining", "promote", "author", "reason", "since"]

    init(row: SQLRow) throws {
        self.init(node: try row.string(0), cordoned: try row.bool(1), draining: try row.bool(2), promote: try row.bool(3),
                  author: try row.string(4), reason: try row.string(5), since: try row.date(6))
    }

    var values: [SQLValue] {
        [.text(node), .bool(cordoned), .bool(draining), .bool(promote), .text(author), .text(reason), .date(since)]
    }
}

extension GPUHold: SQLRecord {
    static let table = "gpuHold"
    static let columns = ["node", "gpu", "uuid", "fault", "detail", "author", "since", "returnedBy", "returnedAt"]

    init(row: SQLRow) throws {
        guard let fault = GPUHealth.Fault(rawValue: try row.string(3)) else { throw row.mismatch(3, "a GPU fault") }
        self.init(node: try row.string(0), gpu: try row.int(1), uuid: try row.string(2), fault: fault, detail: try row.string(4),
                  author: try row.string(5), since: try row.date(6))
        returnedBy = try row.optionalString(7)
        returnedAt = try row.optionalDate(8)
    }

    var values: [SQLValue] {
        [.text(node), SQLValue(gpu), .text(uuid), .text(fault.rawValue), .text(detail), .text(author), .date(since),
         SQLValue(returnedBy), SQLValue(returnedAt)]
    }
}

extension Staging: SQLRecord {
    static let table = "staging"
    static let columns = ["node", "model", "version", "state", "fingerprint", "bytesDone", "bytesTotal", "bytesFetched", "attempts",
                          "startedAt", "updatedAt", "detail"]

    init(row: SQLRow) throws {
        guard let state = State(rawValue: try row.string(3)) else { throw row.mismatch(3, "a staging state") }
        self.init(node: try row.string(0), model: try row.string(1), version: try row.string(2), state: state, fingerprint: try row.string(4),
                  bytesDone: try row.int64(5), bytesTotal: try row.int64(6), bytesFetched: try row.int64(7), attempts: try row.int(8),
                  startedAt: try row.optionalDate(9), updatedAt: try row.date(10), detail: try row.string(11))
    }

    var values: [SQLValue] {
        [.text(node), .text(model), .text(version), .text(state.rawValue), .text(fingerprint), .int(bytesDone), .int(bytesTotal),
         .int(bytesFetched), SQLValue(attempts), SQLValue(startedAt), .date(updatedAt), .text(detail)]
    }
}

/// An object as it stands now.
struct ObjectRow: SQLRecord {
    static let table = "object"
    static let columns = ["kind", "name", "revision", "createdRevision", "document"]
    var kind: String
    var name: String
    var revision: Int64
    var createdRevision: Int64
    var document: String

    init(kind: String, name: String, revision: Int64, createdRevision: Int64, document: String) {
        self.kind = kind
        self.name = name
        self.revision = revision
        self.createdRevision = createdRevision
        self.document = document
    }

    init(row: SQLRow) throws {
        self.init(kind: try row.string(0), name: try row.string(1), revision: try row.int64(2), createdRevision: try row.int64(3),
                  document: try row.string(4))
    }

    var values: [SQLValue] { [.text(kind), .text(name), .int(revision), .int(createdRevision), .text(document)] }
}

/// One object's change in one revision.
struct ObjectVersionRow: SQLRecord {
    static let table = "objectVersion"
    static let columns = ["revision", "kind", "name", "action", "document"]
    var revision: Int64
    var kind: String
    var name: String
    var action: String
    var document: String?

    init(revision: Int64, kind: String, name: String, action: String, document: String?) {
        self.revision = revision
        self.kind = kind
        self.name = name
        self.action = action
        self.document = document
    }

    init(row: SQLRow) throws {
        self.init(revision: try row.int64(0), kind: try row.string(1), name: try row.string(2), action: try row.string(3),
                  document: try row.optionalString(4))
    }

    var values: [SQLValue] { [.int(revision), .text(kind), .text(name), .text(action), SQLValue(document)] }
}

/// A row of the leader's last view: one JSON document per deployment, node, gateway, controller.
struct StatusRow: SQLRecord {
    static let table = "status"
    static let columns = ["kind", "name", "document", "updatedAt"]
    var kind: String
    var name: String
    var document: String
    var updatedAt: Date

    init(kind: String, name: String, document: String, updatedAt: Date) {
        self.kind = kind
        self.name = name
        self.document = document
        self.updatedAt = updatedAt
    }

    init(row: SQLRow) throws {
        self.init(kind: try row.string(0), name: try row.string(1), document: try row.string(2), updatedAt: try row.date(3))
    }

    var values: [SQLValue] { [.text(kind), .text(name), .text(document), .date(updatedAt)] }
}
