import BerthModel
import Foundation

/// The single-leader lease: whoever holds it may act on the fleet and write status.
///
/// On SQLite, wall-clock times in the row are for people. Whether a lease is still held is judged
/// on the monotonic clock of whoever looks (`LeaseWatch`): a lease whose `renewals` have not moved
/// for its TTL is stale, so a clock jump on any host neither deposes a leader nor keeps a dead one.
/// On PostgreSQL, shared by hosts, the database's clock judges expiry, and it alone writes the times.
public struct Lease: Codable, Sendable, Hashable {
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
    /// On PostgreSQL the database's clock stands for `now`, and an expired lease may be taken.
    public func acquireLease(holder: String, ttl: TimeInterval, now: Date = Date(), watch: inout LeaseWatch,
                             at instant: ContinuousClock.Instant = .now) throws -> Lease {
        if isPostgres { return try acquireLeaseByServerClock(holder: holder, ttl: ttl) }
        return try write("taking the controller lease") { db in
            if var lease = try Lease.one(db, "WHERE name = ?", [.text(Lease.controller)]) {
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
                try lease.upsert(db, key: ["name"])
                return lease
            }
            let lease = Lease(name: Lease.controller, holder: holder, epoch: 1, acquiredAt: now, renewedAt: now, expiresAt: now.addingTimeInterval(ttl))
            try lease.upsert(db, key: ["name"])
            return lease
        }
    }

    /// The lease on PostgreSQL: taken when nobody holds it or its holder let it expire by the
    /// database's clock (the hosts' clocks are never compared), else renewed for its holder; one
    /// statement, in a transaction of its own, so `now()` is one reading of that clock throughout.
    /// A change of holder, or a holder back after its lease expired, moves the epoch on.
    func acquireLeaseByServerClock(holder: String, ttl: TimeInterval) throws -> Lease {
        try writeLease("taking the controller lease") { db in
            let taken = try db.rows("""
                INSERT INTO lease (name, holder, epoch, acquiredAt, renewedAt, expiresAt, renewals)
                VALUES (?, ?, 1, now(), now(), now() + ? * interval '1 second', 0)
                ON CONFLICT (name) DO UPDATE SET
                    epoch = CASE WHEN lease.holder = excluded.holder AND lease.expiresAt > now() THEN lease.epoch ELSE lease.epoch + 1 END,
                    acquiredAt = CASE WHEN lease.holder = excluded.holder AND lease.expiresAt > now() THEN lease.acquiredAt ELSE now() END,
                    holder = excluded.holder, renewedAt = now(), expiresAt = now() + ? * interval '1 second',
                    renewals = CASE WHEN lease.holder = excluded.holder AND lease.expiresAt > now() THEN lease.renewals + 1 ELSE 0 END
                WHERE lease.holder = excluded.holder OR lease.expiresAt <= now()
                RETURNING \(Lease.columnList)
                """, [.text(Lease.controller), .text(holder), .double(ttl), .double(ttl)]).map(Lease.init(row:))
            if let lease = taken.first { return lease }
            guard let current = try Lease.one(db, "WHERE name = ?", [.text(Lease.controller)]) else {
                throw StoreError(.database, path: path, detail: "the lease row vanished while it was being taken")
            }
            return current
        }
    }

    /// Renews the lease only while `holder` holds it at `epoch` (and, on PostgreSQL, unexpired by
    /// the database's clock); throws `LeaseLost` otherwise. The fence before every batch of engine
    /// actions and every image round.
    public func renewLease(holder: String, epoch: Int64, ttl: TimeInterval, now: Date = Date()) throws {
        try writeLease("renewing the controller lease") { db in
            let renewed: Int
            if db.dialect == .postgres {
                renewed = try db.execute("""
                    UPDATE lease SET renewedAt = now(), expiresAt = now() + ? * interval '1 second', renewals = renewals + 1
                    WHERE name = ? AND holder = ? AND epoch = ? AND expiresAt > now()
                    """, [.double(ttl), .text(Lease.controller), .text(holder), .int(epoch)])
            } else {
                renewed = try db.execute("""
                    UPDATE lease SET renewedAt = ?, expiresAt = ?, renewals = renewals + 1
                    WHERE name = ? AND holder = ? AND epoch = ? AND expiresAt > renewedAt
                    """, [.date(now), .date(now.addingTimeInterval(ttl)), .text(Lease.controller), .text(holder), .int(epoch)])
            }
            guard renewed == 1 else { throw LeaseLost(holder: try Lease.one(db, "WHERE name = ?", [.text(Lease.controller)])?.holder) }
        }
    }

    /// Gives the lease up at once (a clean stop), so a waiting controller need not wait for expiry.
    public func releaseLease(holder: String, now: Date = Date()) throws {
        try writeLease("releasing the controller lease") { db in
            try db.execute("UPDATE lease SET expiresAt = renewedAt WHERE name = ? AND holder = ?", [.text(Lease.controller), .text(holder)])
        }
    }

    public func lease() throws -> Lease? {
        try readLease("reading the controller lease") { try Lease.one($0, "WHERE name = ?", [.text(Lease.controller)]) }
    }

    /// Who holds the lease now by the wall clock (for one-shot commands that must not act beside
    /// a controller); nil when nobody does. On PostgreSQL, by the database's clock.
    public func liveLeaseHolder(now: Date = Date()) throws -> Lease? {
        if isPostgres {
            return try readLease("reading the controller lease") { db in
                try Lease.one(db, "WHERE name = ? AND expiresAt > renewedAt AND expiresAt > clock_timestamp()", [.text(Lease.controller)])
            }
        }
        guard let lease = try lease(), !lease.released, lease.expiresAt > now else { return nil }
        return lease
    }

    /// Checks, inside a write, that `holder` holds the lease (at `epoch` when given; on PostgreSQL also unexpired by the
    /// database's clock, the row share-locked so that no successor takes it before this
    /// transaction ends); throws `LeaseLost` otherwise.
    func fence(_ db: any SQLSession, holder: String, epoch: Int64? = nil) throws {
        let lock = db.dialect == .postgres ? " AND expiresAt > clock_timestamp() FOR SHARE" : ""
        let atEpoch = epoch == nil ? "" : " AND epoch = ?"
        let held = try db.rows("SELECT 1 FROM lease WHERE name = ? AND holder = ? AND expiresAt > renewedAt" + atEpoch + lock,
                               [.text(Lease.controller), .text(holder)] + (epoch.map { [SQLValue.int($0)] } ?? []))
        if held.isEmpty { throw LeaseLost(holder: try Lease.one(db, "WHERE name = ?", [.text(Lease.controller)])?.holder) }
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
            // At the epoch the status names, when it names one: a write of an earlier leadership is refused.
            try fence(db, holder: holder, epoch: status.controller?.epoch)
            var current: [Key: String] = [:]
            for row in try db.rows("SELECT kind, name, document FROM status") {
                current[Key(kind: try row.string(0), name: try row.string(1))] = try row.string(2)
            }
            for key in current.keys where rows[key] == nil {
                try db.execute("DELETE FROM status WHERE kind = ? AND name = ?", [.text(key.kind), .text(key.name)])
            }
            let changed = rows.filter { current[$0.key] != $0.value }
            try StatusRow.upsert(changed.map { StatusRow(kind: $0.key.kind, name: $0.key.name, document: $0.value, updatedAt: now) },
                                 key: ["kind", "name"], into: db)
            try Event.append(events, into: db)
        }
    }

    /// The last stored status (empty when no controller has written one).
    public func fleetStatus() throws -> FleetStatus {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try read("reading the fleet status") { db in
            var status = FleetStatus(controller: nil, deployments: [], nodes: [])
            let rows = try db.rows("SELECT kind, name, document FROM status")
                .map { (kind: try $0.string(0), name: try $0.string(1), document: try $0.string(2)) }
                .sorted { ($0.kind, $0.name) < ($1.kind, $1.name) }
            for row in rows {
                let data = Data(row.document.utf8)
                switch row.kind {
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
            try db.execute("DELETE FROM status")
            try db.execute("DELETE FROM lease")
        }
    }

    /// Deletes events older than `days`, and beyond the newest `keep` whatever their age; returns
    /// how many went. The event log would otherwise grow for ever.
    @discardableResult
    public func pruneEvents(olderThanDays days: Double, keep: Int = 100_000, now: Date = Date()) throws -> Int {
        try write("pruning old events") { db in
            try db.execute("DELETE FROM event WHERE time < ? OR id <= (SELECT MAX(id) FROM event) - ?",
                           [.date(now.addingTimeInterval(-days * 86_400)), .int(Int64(keep))])
        }
    }

    /// Appends events outside a status write.
    public func record(events: [Event]) throws {
        guard !events.isEmpty else { return }
        try write("recording events") { db in try Event.append(events, into: db) }
    }

    /// The newest events about one object, newest first.
    public func events(kind: String, name: String, limit: Int = 20) throws -> [Event] {
        try read("reading events") { db in
            try Event.all(db, "WHERE kind = ? AND name = ? ORDER BY id DESC LIMIT ?", [.text(kind), .text(name), .int(Int64(limit))])
        }
    }
}
