import BerthModel
import Foundation
import GRDB
import NIOCore

/// Options of one apply.
public struct ApplyOptions: Sendable {
    /// Compute and validate the changes, store nothing.
    public var dryRun = false
    /// Delete stored objects the input does not contain.
    public var prune = false
    public var author: String
    public var message: String
    public var origin: Revision.Origin = .apply
    /// Time stamped on the revision; now when nil.
    public var time: Date?
    /// Stored objects to delete even without `prune` (a rollback to before an object existed).
    public var deleting: Set<ObjectKey> = []

    public init(author: String, message: String = "", dryRun: Bool = false, prune: Bool = false, origin: Revision.Origin = .apply, time: Date? = nil) {
        self.author = author
        self.message = message
        self.dryRun = dryRun
        self.prune = prune
        self.origin = origin
        self.time = time
    }
}

/// The outcome of one apply.
public struct ApplyResult: Sendable {
    /// One entry per input object, then one per pruned object, in apply order.
    public var changes: [ObjectChange]
    /// The new revision, or nil when nothing changed or it was a dry run.
    public var revision: Int64?

    public var isNoOp: Bool { changes.allSatisfy { $0.action == .unchanged } }
}

/// The desired state of a fleet and its full history, in one SQLite file (or in memory), or in a
/// PostgreSQL database that controllers on several hosts share.
///
/// Every apply is one transaction and creates at most one revision. History is append-only:
/// each revision records the objects it changed, so the whole desired state at any revision can
/// be reconstructed.
public final class StateStore: Sendable {
    enum Backend: Sendable {
        case sqlite(any DatabaseWriter)
        /// The state, and the connection the lease's statements use: a long read (a snapshot)
        /// or write (a big apply) on the first never delays a renewal.
        case postgres(PostgresState, lease: PostgresState)
    }

    let backend: Backend
    /// The file path, `:memory:`, or the PostgreSQL URL (never with a password).
    public let path: String

    init(writer: any DatabaseWriter, path: String) {
        self.backend = .sqlite(writer)
        self.path = path
    }

    init(postgres: PostgresState, lease: PostgresState? = nil) {
        self.backend = .postgres(postgres, lease: lease ?? postgres)
        self.path = postgres.location.description
    }

    /// Whether the state is on PostgreSQL (no file: no snapshots folder, no SQLite checks).
    public var isPostgres: Bool {
        if case .postgres = backend { return true }
        return false
    }

    var dialect: SQLDialect { isPostgres ? .postgres : .sqlite }

    /// A fresh in-memory store, for tests and dry runs.
    public static func inMemory() throws -> StateStore {
        let queue = try DatabaseQueue(configuration: configuration(readOnly: false))
        try Schema.migrator.migrate(queue)
        return StateStore(writer: queue, path: ":memory:")
    }

    /// Opens the state at `path`. With `create`, a missing file (and folder) is made; without,
    /// a missing file throws `.notFound`. The file is inspected read-only first, so a file that is
    /// not Berth's, is damaged, or comes from a newer Berth is refused without being touched.
    ///
    /// A `postgres://` URL opens that database instead (see `PostgresState.open`), with the
    /// password read from `passwordFile`, else `$BERTH_STATE_PASSWORD_FILE`, else the libpq
    /// password file. One connection per database serves the whole process: later opens of the
    /// same URL share it.
    public static func open(path: String, create: Bool, passwordFile: String? = nil) throws -> StateStore {
        if PostgresLocation.isURL(path) {
            let (state, lease) = try PostgresStates.shared.open(path, create: create, passwordFile: passwordFile)
            return StateStore(postgres: state, lease: lease)
        }
        let fm = FileManager.default
        let exists = fm.fileExists(atPath: path)
        if !exists && !create {
            throw StoreError(.notFound, path: path, detail: "no state database here yet",
                             hint: "run `berth apply -f MANIFESTS` to create it, or point --state at an existing one")
        }
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw StoreError(.notABerthDatabase, path: path, detail: "is a folder, not a database file",
                             hint: "give the path of the database file, e.g. \(path)/berth.db")
        }
        if exists {
            try inspect(path: path)
        } else {
            let folder = (path as NSString).deletingLastPathComponent
            if !folder.isEmpty, !fm.fileExists(atPath: folder) {
                do {
                    try fm.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                } catch {
                    throw StoreError(.readOnly, path: path, detail: "cannot create the state folder \(folder): \(error.localizedDescription)",
                                     hint: "choose a writable --state path")
                }
            }
            if !fm.isWritableFile(atPath: folder.isEmpty ? "." : folder) {
                throw StoreError(.readOnly, path: path, detail: "the folder \(folder.isEmpty ? "." : folder) is not writable",
                                 hint: "make it writable by this user, or choose another --state path")
            }
        }
        do {
            // A queue rather than a pool: opening a pool writes to the file (it forces a WAL into
            // existence), and a read must leave the file byte-for-byte as it was.
            var config = configuration(readOnly: false)
            config.prepareDatabase { db in
                // Persistent once set; a no-op that writes nothing when the file is already in WAL mode.
                try db.execute(sql: "PRAGMA journal_mode = WAL")
            }
            let queue = try DatabaseQueue(path: path, configuration: config)
            // Migrate only when needed, for the same reason.
            if try !queue.read({ try Schema.migrator.hasCompletedMigrations($0) }) {
                try Schema.migrator.migrate(queue)
            }
            return StateStore(writer: queue, path: path)
        } catch {
            throw StoreError.wrap(error, path: path, doing: "opening the state database")
        }
    }

    /// Refuses, without writing anything, a file that is not a Berth database of a known schema.
    static func inspect(path: String) throws {
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration(readOnly: true))
            try queue.read { db in
                let appID = try Int32(Int.fetchOne(db, sql: "PRAGMA application_id") ?? 0)
                let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'")
                if tables.isEmpty && appID == 0 { return }  // an empty SQLite file: becomes a new state
                guard appID == Schema.applicationID else {
                    throw StoreError(.notABerthDatabase, path: path,
                                     detail: "is a SQLite database but not a Berth state (tables: \(tables.prefix(5).joined(separator: ", ")))",
                                     hint: "point --state at a Berth state file; this one was left untouched")
                }
                let known = Set(Schema.migrator.migrations)
                let applied = try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations")
                let unknown = applied.filter { !known.contains($0) }
                if !unknown.isEmpty {
                    throw StoreError(.newerSchema, path: path,
                                     detail: "was written by a newer Berth (schema steps this build does not know: \(unknown.joined(separator: ", ")))",
                                     hint: "upgrade berth; this build refuses to change the file")
                }
            }
        } catch {
            throw StoreError.wrap(error, path: path, doing: "reading the state database")
        }
    }

    static func configuration(readOnly: Bool) -> Configuration {
        var config = Configuration()
        config.readonly = readOnly
        config.foreignKeysEnabled = true
        config.busyMode = .timeout(10)
        config.label = "berth-state"
        return config
    }

    /// Runs `body` in one read transaction: one consistent view, nothing written.
    func read<T>(_ doing: String, _ body: (any SQLSession) throws -> T) throws -> T {
        try transaction(write: false, lease: false, doing, body)
    }

    /// Runs `body` in one write transaction, one writer at a time; nothing stays of a body that throws.
    func write<T>(_ doing: String, _ body: (any SQLSession) throws -> T) throws -> T {
        try transaction(write: true, lease: false, doing, body)
    }

    /// Runs one of the lease's own statements: on SQLite a write like any other; on PostgreSQL on
    /// the lease's connection, without the writers' lock (the lease row's lock orders it against
    /// fenced writes), and answered within 5 s or failed.
    func writeLease<T>(_ doing: String, _ body: (any SQLSession) throws -> T) throws -> T {
        try transaction(write: true, lease: true, doing, body)
    }

    /// Reads the lease: on PostgreSQL on the lease's connection.
    func readLease<T>(_ doing: String, _ body: (any SQLSession) throws -> T) throws -> T {
        try transaction(write: false, lease: true, doing, body)
    }

    private func transaction<T>(write: Bool, lease: Bool, _ doing: String, _ body: (any SQLSession) throws -> T) throws -> T {
        switch backend {
        case .sqlite(let writer):
            do {
                if write { return try writer.write { try body(SQLiteSession(db: $0)) } }
                // A deferred transaction of its own rather than GRDB's `read`, which switches
                // `PRAGMA query_only` on and off around it: every such switch makes SQLite throw
                // away the compiled statements the connection keeps. The session refuses writes instead.
                return try writer.writeWithoutTransaction { db in
                    var result: T?
                    try db.inTransaction(.deferred) {
                        result = try body(SQLiteSession(db: db, readOnly: true))
                        return .commit
                    }
                    return result!
                }
            } catch {
                throw StoreError.wrap(error, path: path, doing: doing)
            }
        case .postgres(let state, let leaseState):
            return try lease
                ? leaseState.transaction(write: write, lockWrites: false, deadline: .seconds(5), doing: doing, body)
                : state.transaction(write: write, doing: doing, body)
        }
    }
}
