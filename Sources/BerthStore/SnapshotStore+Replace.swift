import BerthModel
import Foundation

extension SnapshotStore {
    /// A controller holds the lease on the state to be replaced: what it writes next would be lost.
    public struct LeaseHeld: Error, Sendable, CustomStringConvertible {
        public var path: String
        public var lease: Lease
        public var description: String {
            "a controller holds the lease on \(path) (\(lease.holder), until \(UTCTime.text(lease.expiresAt))); stop it before replacing the database"
        }
    }

    /// Disaster recovery: the state file at `statePath` (and its WAL) is moved aside as
    /// `<name>.broken-<time>` and a copy of verified snapshot `id` takes its place, with the
    /// snapshot's controller state (lease, status) forgotten: the next controller observes afresh.
    /// Refused while a controller holds the lease. `note` hears each step; returns the newest
    /// revision the state now holds.
    public func replaceDatabase(at statePath: String, with id: String, now: Date = Date(), note: (String) -> Void) throws -> Int64 {
        if PostgresLocation.isURL(statePath) {
            throw StoreError(.invalidLocation, path: PostgresLocation.redacted(statePath), detail: "is a PostgreSQL state: there is no file to replace",
                             hint: "restore the snapshot as a new revision (`berth snapshot restore \(id)`), or copy it into an empty database: `berth state copy --from \(databasePath(id)) --to URL`")
        }
        let snapshot = try open(id)
        if let current = try? StateStore.open(path: statePath, create: false), let live = (try? current.liveLeaseHolder(now: now)) ?? nil {
            throw LeaseHeld(path: statePath, lease: live)
        }
        let fm = FileManager.default
        let aside = statePath + ".broken-" + UTCTime.text(now).replacingOccurrences(of: " ", with: "T").replacingOccurrences(of: ":", with: "")
        note("disaster recovery: the database file is replaced by snapshot \(snapshot.record.id) (revision \(snapshot.record.revision)).")
        if fm.fileExists(atPath: statePath) {
            note("  keeping the current file aside: \(statePath) -> \(aside)")
            for suffix in ["", "-wal", "-shm"] where fm.fileExists(atPath: statePath + suffix) {
                try fm.moveItem(atPath: statePath + suffix, toPath: aside + suffix)
            }
        } else {
            note("  there is no current file at \(statePath)")
        }
        try fm.createDirectory(atPath: (statePath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try fm.copyItem(atPath: databasePath(id), toPath: statePath)
        // Prove the copy opens as a Berth state before saying so.
        let restored = try StateStore.open(path: statePath, create: false)
        // The snapshot's status is an old observation (NodeFailed marks, a lease).
        try restored.forgetControllerState()
        let latest = try restored.latestRevision() ?? 0
        note("  restored: \(statePath) now holds revisions up to \(latest)")
        return latest
    }
}
