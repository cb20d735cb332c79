import GRDB

/// The state database's schema: named migrations, append-only. Never edit a registered migration;
/// add a new one.
enum Schema {
    /// `PRAGMA application_id` of Berth state files ("BRTH").
    static let applicationID: Int32 = 0x4252_5448

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-revisions-objects-events") { db in
            try db.execute(sql: "PRAGMA application_id = \(applicationID)")
            try db.create(table: "revision") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("createdAt", .datetime).notNull()
                t.column("author", .text).notNull()
                t.column("message", .text).notNull().defaults(to: "")
                t.column("origin", .text).notNull().check { ["apply", "rollback", "restore"].contains($0) }
                t.column("createdCount", .integer).notNull().check { $0 >= 0 }
                t.column("configuredCount", .integer).notNull().check { $0 >= 0 }
                t.column("deletedCount", .integer).notNull().check { $0 >= 0 }
            }
            try db.create(index: "revision_createdAt", on: "revision", columns: ["createdAt"])
            let kinds = ResourceKindNames.all
            try db.create(table: "objectVersion") { t in
                t.column("revision", .integer).notNull().references("revision", onDelete: .restrict)
                t.column("kind", .text).notNull().check { kinds.contains($0) }
                t.column("name", .text).notNull().check { length($0) > 0 }
                t.column("action", .text).notNull().check { ["created", "configured", "deleted"].contains($0) }
                // Canonical JSON of the whole object; NULL exactly when the object was deleted.
                t.column("document", .text)
                t.primaryKey(["kind", "name", "revision"])
                t.check(sql: "(action = 'deleted') = (document IS NULL)")
            }
            try db.create(index: "objectVersion_revision", on: "objectVersion", columns: ["revision"])
            try db.create(table: "object") { t in
                t.column("kind", .text).notNull().check { kinds.contains($0) }
                t.column("name", .text).notNull()
                t.column("revision", .integer).notNull().references("revision", onDelete: .restrict)
                t.column("createdRevision", .integer).notNull().references("revision", onDelete: .restrict)
                t.column("document", .text).notNull()
                t.primaryKey(["kind", "name"])
            }
            try db.create(table: "event") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("time", .datetime).notNull()
                t.column("revision", .integer).references("revision", onDelete: .restrict)
                t.column("kind", .text)
                t.column("name", .text)
                t.column("type", .text).notNull().check { ["Normal", "Warning"].contains($0) }
                t.column("reason", .text).notNull()
                t.column("message", .text).notNull()
            }
            try db.create(index: "event_object", on: "event", columns: ["kind", "name", "id"])
        }
        migrator.registerMigration("v2-artifact-verifications") { db in
            try db.create(table: "verification") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("model", .text).notNull()
                t.column("version", .text).notNull()
                t.column("path", .text).notNull()
                // NULL: the controller's own filesystem; else the node the hash was computed on.
                t.column("node", .text)
                t.column("expected", .text).notNull()
                t.column("actual", .text)
                t.column("ok", .boolean).notNull()
                t.column("detail", .text).notNull().defaults(to: "")
                t.column("verifiedAt", .datetime).notNull()
            }
            try db.create(index: "verification_version", on: "verification", columns: ["model", "version", "path", "id"])
        }
        migrator.registerMigration("v3-controller-status") { db in
            // The one controller allowed to act; `epoch` grows each time the lease changes hands.
            try db.create(table: "lease") { t in
                t.primaryKey("name", .text)
                t.column("holder", .text).notNull()
                t.column("epoch", .integer).notNull().check { $0 >= 1 }
                t.column("acquiredAt", .datetime).notNull()
                t.column("renewedAt", .datetime).notNull()
                t.column("expiresAt", .datetime).notNull()
            }
            // The leader's last view of the fleet, rewritten as a whole when it changes: JSON
            // documents of `FleetStatus` parts, keyed by kind and name.
            try db.create(table: "status") { t in
                t.column("kind", .text).notNull().check { ["deployment", "node", "gateway", "controller"].contains($0) }
                t.column("name", .text).notNull()
                t.column("document", .text).notNull()
                t.column("updatedAt", .datetime).notNull()
                t.primaryKey(["kind", "name"])
            }
        }
        migrator.registerMigration("v4-node-holds") { db in
            // Operators' holds on nodes (`berth node cordon | drain | promote`). Not part of the
            // desired state's revisions: re-applying manifests or rolling back never lifts a cordon.
            try db.create(table: "nodeHold") { t in
                t.primaryKey("node", .text)
                t.column("cordoned", .boolean).notNull()
                t.column("draining", .boolean).notNull()
                // A promotion asked for and not yet carried out by the controller.
                t.column("promote", .boolean).notNull()
                t.column("author", .text).notNull()
                t.column("reason", .text).notNull().defaults(to: "")
                t.column("since", .datetime).notNull()
            }
        }
        migrator.registerMigration("v5-lease-renewals") { db in
            // Counts renewals: a standby judges the lease stale when this has not moved for a TTL
            // on its own monotonic clock, never by comparing wall-clock times.
            try db.alter(table: "lease") { t in t.add(column: "renewals", .integer).notNull().defaults(to: 0) }
        }
        migrator.registerMigration("v6-staging") { db in
            // Where each staged model version's files stand on each node: one row per node and
            // version, rewritten as the staging goes.
            try db.create(table: "staging") { t in
                t.column("node", .text).notNull()
                t.column("model", .text).notNull()
                t.column("version", .text).notNull()
                t.column("state", .text).notNull().check { ["staging", "staged", "failed", "purged"].contains($0) }
                // Which artifact list the row is about (paths, sizes, sha256s): a changed list stages again.
                t.column("fingerprint", .text).notNull()
                t.column("bytesDone", .integer).notNull().defaults(to: 0)
                t.column("bytesTotal", .integer).notNull().defaults(to: 0)
                t.column("bytesFetched", .integer).notNull().defaults(to: 0)
                t.column("attempts", .integer).notNull().defaults(to: 0)
                t.column("startedAt", .datetime)
                t.column("updatedAt", .datetime).notNull()
                t.column("detail", .text).notNull().defaults(to: "")
                t.primaryKey(["node", "model", "version"])
            }
        }
        migrator.registerMigration("v7-gpu-holds") { db in
            // GPUs out of service: taken out by the controller's health checks or by an operator,
            // returned only by an operator.
            try db.create(table: "gpuHold") { t in
                t.column("node", .text).notNull()
                t.column("gpu", .integer).notNull().check { $0 >= 0 }
                t.column("uuid", .text).notNull().defaults(to: "")
                t.column("fault", .text).notNull()
                t.column("detail", .text).notNull()
                t.column("author", .text).notNull()
                t.column("since", .datetime).notNull()
                // Returned to service (the fault kept, so the same figure does not take it out again).
                t.column("returnedBy", .text)
                t.column("returnedAt", .datetime)
                t.primaryKey(["node", "gpu"])
            }
        }
        return migrator
    }
}

import BerthModel

enum ResourceKindNames {
    static let all = ResourceKind.allCases.map(\.rawValue)
}
