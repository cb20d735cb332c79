import BerthModel
import Foundation
import GRDB

/// The single-leader lease: whoever holds it may act on the fleet and write status.
///
/// Wall-clock times in the row are for people. Whether a lease is still held is judged on the
/// monotonic clock of whoever looks (`LeaseWatch`): a lease whose `renewals` have not moved for
/// its TTL is stale, so a clock jump on any host neither deposes a leader nor keeps a dead one.
public struct Lease: Codable, Sendable, Hashable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "lease"
    public static let controller = "controller"

    public var name: String
    public var holder: String
    /// Grows by one each time the lease changes hands; stamped on the containers the holder creates.
    public var epoch: Int64
    public var acquiredAt: Date
    public var renewedAt: Date
    public var expiresAt: Date
    /// Grows with every renewal.
    public var renewals: Int64 = 0

    /// Given up by a clean stop: anyone may take it at once.
    public var released: Bool { expiresAt <= renewedAt }
    /// The renewal period its holder promised, in seconds (1 s to 10 min).
    public var ttl: TimeInterval { min(600, max(1, expiresAt.timeIntervalSince(renewedAt))) }
}

/// Why a status write or an engine action was refused.
public struct LeaseLost: Error, CustomStringConvertible, Sendable {
    public var holder: String?
    public var description: String {
        "the controller lease is held by \(holder ?? "nobody") now; this controller no longer leads"
    }
}

/// One observer's view of the lease over time, on its monotonic clock: a lease held by another is
/// stale once its renewals have not moved for its TTL since this observer first saw them so.
public struct LeaseWatch: Sendable {
    var seen: (holder: String, epoch: Int64, renewals: Int64)?
    var since: ContinuousClock.Instant = .now

    public init() {}

    /// Notes `lease` as seen at `instant`; true when it may be taken over.
    public mutating func isStale(_ lease: Lease, at instant: ContinuousClock.Instant = .now) -> Bool {
        if lease.released { return true }
        let key = (lease.holder, lease.epoch, lease.renewals)
        guard let seen, seen == key else {
            self.seen = key
            since = instant
            return false
        }
        let waited = since.duration(to: instant)
        return waited >= .milliseconds(Int64(lease.ttl * 1000))
    }
}

extension StateStore {
    /// Takes or renews the lease for `holder` until `now + ttl`; returns the lease as it stands
    /// afterwards (held by someone else unless `watch` finds theirs stale). One transaction.
    public func acquireLease(holder: String, ttl: TimeInterval, now: Date = Date(), watch: inout LeaseWatch,
                             at instant: ContinuousClock.Instant = .now) throws -> Lease {
        try write("taking the controller lease") { db in
            if var lease = try Lease.fetchOne(db, key: Lease.controller) {
                if lease.holder == holder && !lease.released {
                    lease.renewedAt = now
                    lease.expiresAt = now.addingTimeInterval(ttl)
                    lease.renewals += 1
                } else if watch.isStale(lease, at: instant) {
                    lease = Lease(name: Lease.controller, holder: holder, epoch: lease.epoch + 1, acquiredAt: now, renewedAt: now,
                                  expiresAt: now.addingTimeInterval(ttl), renewals: 0)
                } else {
                    return lease
                }
                try lease.update(db)
                return lease
            }
            let lease = Lease(name: Lease.controller, holder: holder, epoch: 1, acquiredAt: now, renewedAt: now, expiresAt: now.addingTimeInterval(ttl))
            try lease.insert(db)
            return lease
        }
    }

    /// Renews the lease only while `holder` holds it at `epoch`; throws `LeaseLost` otherwise.
    /// The fence before every batch of engine actions and every image round.
    public func renewLease(holder: String, epoch: Int64, ttl: TimeInterval, now: Date = Date()) throws {
        try write("renewing the controller lease") { db in
            guard var lease = try Lease.fetchOne(db, key: Lease.controller), lease.holder == holder, lease.epoch == epoch, !lease.released else {
                throw LeaseLost(holder: try Lease.fetchOne(db, key: Lease.controller)?.holder)
            }
            lease.renewedAt = now
            lease.expiresAt = now.addingTimeInterval(ttl)
            lease.renewals += 1
            try lease.update(db)
        }
    }

    /// Gives the lease up at once (a clean stop), so a waiting controller need not wait for expiry.
    public func releaseLease(holder: String, now: Date = Date()) throws {
        try write("releasing the controller lease") { db in
            try db.execute(sql: "UPDATE lease SET expiresAt = renewedAt WHERE name = ? AND holder = ?", arguments: [Lease.controller, holder])
        }
    }

    public func lease() throws -> Lease? {
        try read("reading the controller lease") { try Lease.fetchOne($0, key: Lease.controller) }
    }

    /// Who holds the lease now by the wall clock (for one-shot commands that must not act beside
    /// a controller); nil when nobody does.
    public func liveLeaseHolder(now: Date = Date()) throws -> Lease? {
        guard let lease = try lease(), !lease.released, lease.expiresAt > now else { return nil }
        return lease
    }

    /// Replaces the stored status with `status` and appends `events`, in one transaction, only
    /// while `holder` holds an unexpired lease (a deposed leader cannot overwrite its successor).
    /// Rows whose document did not change are not rewritten.
    public func writeStatus(_ status: FleetStatus, events: [Event] = [], holder: String, now: Date = Date()) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        struct Key: Hashable {
            var kind: String
            var name: String
        }
        var rows: [Key: String] = [:]
        func put(_ kind: String, _ name: String, _ value: some Encodable) throws {
            rows[Key(kind: kind, name: name)] = String(decoding: try encoder.encode(value), as: UTF8.self)
        }
        for d in status.deployments { try put("deployment", d.name, d) }
        for n in status.nodes { try put("node", n.name, n) }
        for g in status.gateways { try put("gateway", g.name, g) }
        if let c = status.controller { try put("controller", "leader", c) }
        try write("storing the fleet status") { db in
            let lease = try Lease.fetchOne(db, key: Lease.controller)
            guard let lease, lease.holder == holder, !lease.released else { throw LeaseLost(holder: lease?.holder) }
            var current: [Key: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT kind, name, document FROM status") {
                current[Key(kind: row["kind"], name: row["name"])] = row["document"]
            }
            for key in current.keys where rows[key] == nil {
                try db.execute(sql: "DELETE FROM status WHERE kind = ? AND name = ?", arguments: [key.kind, key.name])
            }
            for (key, document) in rows where current[key] != document {
                try db.execute(sql: "INSERT OR REPLACE INTO status (kind, name, document, updatedAt) VALUES (?, ?, ?, ?)",
                               arguments: [key.kind, key.name, document, now])
            }
            for var e in events { try e.insert(db) }
        }
    }

    /// The last stored status (empty when no controller has written one).
    public func fleetStatus() throws -> FleetStatus {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try read("reading the fleet status") { db in
            var status = FleetStatus(controller: nil, deployments: [], nodes: [])
            for row in try Row.fetchAll(db, sql: "SELECT kind, document FROM status ORDER BY kind, name") {
                let data = Data((row["document"] as String).utf8)
                switch row["kind"] as String {
                case "deployment": status.deployments.append(try decoder.decode(DeploymentStatus.self, from: data))
                case "node": status.nodes.append(try decoder.decode(NodeStatus.self, from: data))
                case "gateway": status.gateways.append(try decoder.decode(GatewayStatus.self, from: data))
                default: status.controller = try decoder.decode(ControllerStatus.self, from: data)
                }
            }
            return status
        }
    }

    /// Drops the stored status and the lease: after a restore, what a controller saw then is not
    /// what holds now (a node failed then is not failed now).
    public func forgetControllerState() throws {
        try write("forgetting the restored status") { db in
            try db.execute(sql: "DELETE FROM status")
            try db.execute(sql: "DELETE FROM lease")
        }
    }

    /// Deletes events older than `days`, and beyond the newest `keep` whatever their age; returns
    /// how many went. The event log would otherwise grow for ever.
    @discardableResult
    public func pruneEvents(olderThanDays days: Double, keep: Int = 100_000, now: Date = Date()) throws -> Int {
        try write("pruning old events") { db in
            try db.execute(sql: "DELETE FROM event WHERE time < ? OR id <= (SELECT MAX(id) FROM event) - ?",
                           arguments: [now.addingTimeInterval(-days * 86_400), keep])
            return db.changesCount
        }
    }

    /// Appends events outside a status write.
    public func record(events: [Event]) throws {
        guard !events.isEmpty else { return }
        try write("recording events") { db in for var e in events { try e.insert(db) } }
    }

    /// The newest events about one object, newest first.
    public func events(kind: String, name: String, limit: Int = 20) throws -> [Event] {
        try read("reading events") { db in
            try Event.filter(Column("kind") == kind && Column("name") == name).order(Column("id").desc).limit(limit).fetchAll(db)
        }
    }
}
