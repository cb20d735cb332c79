import Crypto
import Foundation
import GRDB

/// What is known of one snapshot: kept as `<id>.json` beside `<id>.db`.
public struct SnapshotRecord: Codable, Sendable, Hashable {
    public var id: String
    public var createdAt: Date
    /// The newest revision the snapshot holds.
    public var revision: Int64
    public var sha256: String
    public var sizeBytes: Int64
}

/// Consistent copies of the state database in `<state folder>/snapshots/`, each checked with
/// `PRAGMA integrity_check` and hashed before it counts.
public struct SnapshotStore: Sendable {
    public let folder: String

    /// Beside the state file; for a PostgreSQL state, in this host's `state/snapshots`.
    public init(statePath: String) {
        let stateFolder = PostgresLocation.isURL(statePath) ? "state" : (statePath as NSString).deletingLastPathComponent
        folder = (stateFolder as NSString).appendingPathComponent("snapshots")
    }

    public init(folder: String) {
        self.folder = folder
    }

    public func databasePath(_ id: String) -> String { (folder as NSString).appendingPathComponent(id + ".db") }
    func recordPath(_ id: String) -> String { (folder as NSString).appendingPathComponent(id + ".json") }

    /// Takes a snapshot of `store` while it stays in use (`VACUUM INTO` reads one consistent view;
    /// writers are not blocked in WAL mode), checks it, and records it.
    public func create(from store: StateStore, now: Date = Date()) throws -> SnapshotRecord {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let stamp = Self.stamp(now)
        let temporary = (folder as NSString).appendingPathComponent(".\(stamp)-\(UUID().uuidString.prefix(6)).db")
        defer { try? FileManager.default.removeItem(atPath: temporary) }
        let revision = try store.snapshot(into: temporary)
        let problems = try Self.integrityProblems(temporary)
        guard problems.isEmpty else {
            throw StoreError(.corrupt, path: temporary, detail: "the new snapshot failed its integrity check: \(problems.prefix(3).joined(separator: "; "))")
        }
        let id = "\(stamp)-r\(revision)"
        let record = SnapshotRecord(id: id, createdAt: now, revision: revision, sha256: try Self.sha256(temporary),
                                    sizeBytes: Int64((try FileManager.default.attributesOfItem(atPath: temporary)[.size] as? NSNumber)?.int64Value ?? 0))
        if FileManager.default.fileExists(atPath: databasePath(id)) { try FileManager.default.removeItem(atPath: databasePath(id)) }
        try FileManager.default.moveItem(atPath: temporary, toPath: databasePath(id))
        try write(record)
        return record
    }

    func write(_ record: SnapshotRecord) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        try encoder.encode(record).write(to: URL(fileURLWithPath: recordPath(record.id)), options: .atomic)
    }

    /// Every recorded snapshot, newest first.
    public func list() throws -> [SnapshotRecord] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return names.filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.compactMap { name in
            guard let data = FileManager.default.contents(atPath: (folder as NSString).appendingPathComponent(name)) else { return nil }
            return try? decoder.decode(SnapshotRecord.self, from: data)
        }.sorted { $0.createdAt > $1.createdAt }
    }

    public func record(_ id: String) throws -> SnapshotRecord {
        guard let r = try list().first(where: { $0.id == id }) else {
            throw StoreError(.notFound, path: databasePath(id), detail: "no snapshot \(id)", hint: "`berth snapshot list` shows the snapshots")
        }
        return r
    }

    /// What is wrong with a snapshot: its file missing, its hash changed, or SQLite's integrity check failing.
    public func verify(_ id: String) throws -> [String] {
        let r = try record(id)
        let path = databasePath(id)
        guard FileManager.default.fileExists(atPath: path) else { return ["the file \(path) is missing"] }
        var problems: [String] = []
        let actual = try Self.sha256(path)
        if actual != r.sha256 { problems.append("sha256 is \(actual), the record says \(r.sha256): the file changed after it was taken") }
        do {
            problems += try Self.integrityProblems(path).map { "integrity check: \($0)" }
        } catch {
            problems.append("cannot be read as a database: \(error)")
        }
        return problems
    }

    /// A verified snapshot, opened read-only.
    public func open(_ id: String) throws -> (record: SnapshotRecord, store: StateStore) {
        let problems = try verify(id)
        guard problems.isEmpty else {
            throw StoreError(.corrupt, path: databasePath(id), detail: "snapshot \(id) failed verification: \(problems.joined(separator: "; "))",
                             hint: "choose another snapshot (`berth snapshot list`)")
        }
        return (try record(id), try StateStore.openReadOnly(path: databasePath(id)))
    }

    /// Deletes snapshots beyond the newest per hour for `hourly` hours and the newest per day for `daily` days.
    @discardableResult
    public func prune(hourly: Int, daily: Int) throws -> [String] {
        let all = try list()
        var keep = Set<String>()
        var hours = Set<String>(), days = Set<String>()
        for r in all {  // newest first
            let hour = String(r.id.prefix(11)), day = String(r.id.prefix(8))
            if hours.count < hourly, hours.insert(hour).inserted { keep.insert(r.id) }
            if days.count < daily, days.insert(day).inserted { keep.insert(r.id) }
        }
        let removed = all.filter { !keep.contains($0.id) }.map(\.id)
        for id in removed {
            try? FileManager.default.removeItem(atPath: databasePath(id))
            try? FileManager.default.removeItem(atPath: recordPath(id))
        }
        return removed + pruneLeftovers(recorded: Set(all.map(\.id)))
    }

    /// Removes what a snapshot killed half-way leaves: temporary copies (`.STAMP-…db` and their
    /// journals) and database files without a record, once older than `age` (a snapshot still in
    /// progress is left alone).
    @discardableResult
    public func pruneLeftovers(recorded: Set<String>? = nil, olderThan age: TimeInterval = 3600, now: Date = Date()) -> [String] {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: folder) else { return [] }
        let recorded = recorded ?? Set((try? list())?.map(\.id) ?? [])
        var removed: [String] = []
        for name in names {
            let temporary = name.hasPrefix(".") && name.contains(".db")
            let unrecorded = !name.hasPrefix(".") && name.hasSuffix(".db") && !recorded.contains(String(name.dropLast(3)))
            guard temporary || unrecorded else { continue }
            let path = (folder as NSString).appendingPathComponent(name)
            guard let modified = (try? fm.attributesOfItem(atPath: path))?[.modificationDate] as? Date, now.timeIntervalSince(modified) > age else { continue }
            if (try? fm.removeItem(atPath: path)) != nil { removed.append(name) }
        }
        return removed
    }

    /// `20261129T030000Z`.
    static func stamp(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return f.string(from: date)
    }

    static func sha256(_ path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw CocoaError(.fileReadNoSuchFile) }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 4 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    static func integrityProblems(_ path: String) throws -> [String] {
        var config = Configuration()
        config.readonly = true
        let queue = try DatabaseQueue(path: path, configuration: config)
        defer { try? queue.close() }
        let result = try queue.read { try String.fetchAll($0, sql: "PRAGMA integrity_check") }
        return result == ["ok"] ? [] : result
    }
}

extension StateStore {
    /// Writes a consistent copy of the database to `path` and returns the newest revision it holds.
    /// `VACUUM INTO` reads one snapshot of the database; in WAL mode writers go on meanwhile.
    /// On PostgreSQL the snapshot is a SQLite file all the same: Berth's tables read in one
    /// repeatable-read view (`StateCopy`), so every snapshot verb, and rollback to a snapshot, work
    /// alike on both backends.
    func snapshot(into path: String) throws -> Int64 {
        let writer: any DatabaseWriter
        switch backend {
        case .sqlite(let sqlite):
            writer = sqlite
        case .postgres:
            let building = path + ".building"
            defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: building + suffix) } }
            let copy = try StateStore.open(path: building, create: true)
            try StateCopy.copy(from: self, to: copy)
            guard case .sqlite(let built) = copy.backend else { return 0 }
            writer = built
        }
        do {
            try writer.writeWithoutTransaction { db in try db.execute(sql: "VACUUM INTO ?", arguments: [path]) }
            // The revision is read from the copy itself, so it is exactly what the copy holds.
            let copy = try DatabaseQueue(path: path, configuration: Self.configuration(readOnly: true))
            defer { try? copy.close() }
            return try copy.read { try Int64.fetchOne($0, sql: "SELECT COALESCE(MAX(id), 0) FROM revision") ?? 0 }
        } catch {
            throw StoreError.wrap(error, path: path, doing: "taking a snapshot")
        }
    }

    /// Opens a database file read-only (a snapshot); nothing is ever written to it.
    public static func openReadOnly(path: String) throws -> StateStore {
        try inspect(path: path)
        do {
            return StateStore(writer: try DatabaseQueue(path: path, configuration: configuration(readOnly: true)), path: path)
        } catch {
            throw StoreError.wrap(error, path: path, doing: "opening \(path) read-only")
        }
    }
}
