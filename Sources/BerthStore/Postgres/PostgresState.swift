import Foundation
import Logging
import NIOSSL
import PostgresNIO

/// A Berth state on PostgreSQL, for controllers on several hosts to share: its schema (the same
/// named migrations as on SQLite), and the single-leader lease judged by the database's clock,
/// with fencing in the same transaction as the work it guards.
public final class PostgresState: Sendable {
    public let location: PostgresLocation
    let connection: PostgresConnection
    let logger: Logger
    /// One user of the connection at a time: whatever is sent on it runs in whatever transaction
    /// is open on it, so a renewal must never land inside another call's fenced transaction.
    let turns = Turns()

    init(location: PostgresLocation, connection: PostgresConnection, logger: Logger) {
        self.location = location
        self.connection = connection
        self.logger = logger
    }

    /// Connects and checks the database before anything is written: an empty one becomes a new
    /// state when `create` (else `.notFound`), a database of another program (tables but no Berth
    /// marker) and one written by a newer Berth (migrations this build does not know) are refused
    /// untouched; an older Berth state gets the migrations it lacks, in one transaction.
    /// `prefer` and `require` encrypt without checking the server's certificate, as libpq's modes
    /// of those names do.
    public static func open(_ location: PostgresLocation, password: String?, create: Bool,
                            logger: Logger = Logger(label: "berth-state")) async throws -> PostgresState {
        let tls: PostgresConnection.Configuration.TLS
        do {
            switch location.sslMode {
            case .disable: tls = .disable
            case .prefer: tls = .prefer(try NIOSSLContext(configuration: Self.unverified))
            case .require: tls = .require(try NIOSSLContext(configuration: Self.unverified))
            }
        } catch {
            throw StoreError(.unreachable, path: location.description, detail: "TLS could not be set up: \(error)")
        }
        var config = PostgresConnection.Configuration(host: location.host, port: location.port, username: location.user,
                                                      password: password, database: location.database, tls: tls)
        config.options.connectTimeout = .seconds(10)
        // A hung or cut-off holder of a fenced transaction must not hold the lease row for long:
        // the server ends an idle transaction after a minute; nothing waits on a lock past 10 s.
        config.options.additionalStartupParameters = [
            ("statement_timeout", "30000"), ("lock_timeout", "10000"), ("idle_in_transaction_session_timeout", "60000"),
        ]
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(configuration: config, id: 1, logger: logger)
        } catch {
            let why = describe(error)
            if why.contains("SQLSTATE 3D000") {
                throw StoreError(.notFound, path: location.description, detail: "cannot connect: \(why)",
                                 hint: "create the database first (CREATE DATABASE \(location.database)), owned by \(location.user)")
            }
            throw StoreError(.unreachable, path: location.description, detail: "cannot connect: \(why)",
                             hint: password == nil
                                ? "check that the server runs and accepts USER from this host; if it asks for a password, give it by reference (PGPASSFILE, or a password file)"
                                : "check that the server runs, accepts USER from this host, and that the password is right")
        }
        let state = PostgresState(location: location, connection: connection, logger: logger)
        do {
            try await state.prepare(create: create)
        } catch {
            try? await connection.close()
            throw error
        }
        return state
    }

    public func close() async {
        try? await connection.close()
    }

    static var unverified: TLSConfiguration {
        var config = TLSConfiguration.makeClientConfiguration()
        config.certificateVerification = .none
        return config
    }

    /// Refuses what is not a Berth state (or is a newer one), then migrates what is missing.
    func prepare(create: Bool) async throws {
        // pg_tables lists every table, whatever this role may read (information_schema would not).
        let tables = try await strings("SELECT tablename::text FROM pg_catalog.pg_tables WHERE schemaname = current_schema()", doing: "listing tables")
        if tables.isEmpty && !create {
            throw StoreError(.notFound, path: location.description, detail: "no Berth state in this database yet",
                             hint: "an empty database becomes a Berth state when it is opened to create one")
        }
        if !tables.isEmpty {
            guard tables.contains("berth_meta"),
                  try await strings("SELECT value FROM berth_meta WHERE key = 'application'", doing: "reading berth_meta") == [PostgresSchema.application]
            else {
                throw StoreError(.notABerthDatabase, path: location.description,
                                 detail: "is a PostgreSQL database but not a Berth state (tables: \(tables.sorted().prefix(5).joined(separator: ", ")))",
                                 hint: "point --state at a database of its own for Berth (CREATE DATABASE berth); this one was left untouched")
            }
            let applied = try await strings("SELECT identifier FROM berth_migrations", doing: "reading berth_migrations")
            let unknown = applied.filter { id in !PostgresSchema.migrations.contains { $0.id == id } }
            if !unknown.isEmpty {
                throw StoreError(.newerSchema, path: location.description,
                                 detail: "was written by a newer Berth (schema steps this build does not know: \(unknown.sorted().joined(separator: ", ")))",
                                 hint: "upgrade berth; this build refuses to change the database")
            }
        }
        try await migrate()
    }

    /// Applies the migrations not recorded yet, with their records, in one transaction under an
    /// advisory lock, so that two controllers starting at once do not both apply one.
    func migrate() async throws {
        try await transaction("migrating the schema") { c in
            _ = try await c.query("SELECT pg_advisory_xact_lock(4252544801)::text", logger: self.logger).collect()
            let exists = try await c.query("SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = 'berth_meta'",
                                           logger: self.logger).collect()
            if exists.isEmpty {
                for statement in PostgresSchema.bookkeeping { try await c.query(PostgresQuery(unsafeSQL: statement), logger: self.logger) }
            }
            var applied = Set<String>()
            for try await id in try await c.query("SELECT identifier FROM berth_migrations", logger: self.logger).decode(String.self) { applied.insert(id) }
            for migration in PostgresSchema.migrations where !applied.contains(migration.id) {
                for statement in migration.statements { try await c.query(PostgresQuery(unsafeSQL: statement), logger: self.logger) }
                try await c.query("INSERT INTO berth_migrations (identifier) VALUES (\(migration.id))", logger: self.logger)
            }
        }
    }

    /// Migrations recorded: in this build's order, then any it does not know.
    public func appliedMigrations() async throws -> [String] {
        let applied = Set(try await strings("SELECT identifier FROM berth_migrations", doing: "reading berth_migrations"))
        let known = PostgresSchema.migrations.map(\.id)
        return known.filter(applied.contains) + applied.subtracting(known).sorted()
    }

    // MARK: The lease

    /// The lease as the database has it; `expired` judged by the database's clock.
    public struct LeaseRow: Sendable, Equatable {
        public var holder: String
        public var epoch: Int64
        public var expiresAt: Date
        public var expired: Bool
    }

    /// A write or decision refused: this controller no longer holds the lease at its epoch.
    public struct Fenced: Error, Sendable, CustomStringConvertible {
        public var holder: String
        public var epoch: Int64
        public var description: String { "\(holder) no longer holds the lease at epoch \(epoch)" }
    }

    static let leaseName = "controller"

    /// Takes the lease when nobody holds it or its holder let it expire (by the database's clock:
    /// the hosts' clocks are never compared), or renews it for `holder`; returns the lease as it
    /// stands after, whoever holds it. A change of holder, or a holder coming back after its lease
    /// expired, moves the epoch on, so every write of the old epoch is fenced out.
    public func acquireOrRenew(holder: String, ttl: TimeInterval) async throws -> LeaseRow {
        let taken = try await rows(
            """
            INSERT INTO lease (name, holder, epoch, acquiredAt, renewedAt, expiresAt, renewals)
            VALUES (\(Self.leaseName), \(holder), 1, clock_timestamp(), clock_timestamp(), clock_timestamp() + \(ttl) * interval '1 second', 0)
            ON CONFLICT (name) DO UPDATE SET
                epoch = CASE WHEN lease.holder = EXCLUDED.holder AND lease.expiresAt > clock_timestamp() THEN lease.epoch ELSE lease.epoch + 1 END,
                acquiredAt = CASE WHEN lease.holder = EXCLUDED.holder AND lease.expiresAt > clock_timestamp() THEN lease.acquiredAt ELSE clock_timestamp() END,
                holder = EXCLUDED.holder, renewedAt = clock_timestamp(), expiresAt = clock_timestamp() + \(ttl) * interval '1 second',
                renewals = lease.renewals + 1
            WHERE lease.holder = EXCLUDED.holder OR lease.expiresAt <= clock_timestamp()
            RETURNING holder, epoch, expiresAt, expiresAt <= clock_timestamp()
            """, doing: "taking the lease")
        if let row = taken.first { return row }
        guard let current = try await lease() else {
            throw StoreError(.database, path: location.description, detail: "the lease row vanished while it was being taken")
        }
        return current
    }

    /// The lease row, or nil when no controller ever held it.
    public func lease() async throws -> LeaseRow? {
        try await rows("SELECT holder, epoch, expiresAt, expiresAt <= clock_timestamp() FROM lease WHERE name = \(Self.leaseName)", doing: "reading the lease").first
    }

    /// Gives the lease up (a clean stop): it expires at its last renewal, as a released lease
    /// reads on SQLite, so a standby takes it at once.
    public func release(holder: String, epoch: Int64) async throws {
        try await transaction("releasing the lease") { c in
            try await c.query("UPDATE lease SET expiresAt = renewedAt WHERE name = \(Self.leaseName) AND holder = \(holder) AND epoch = \(epoch)", logger: self.logger)
        }
    }

    /// Runs `body` in one transaction that first checks, under a share lock on the lease row,
    /// that `holder` still holds it at `epoch` and unexpired: a successor cannot take the lease
    /// until the transaction ends, and a deposed leader's work is never committed. Throws
    /// `Fenced` (nothing done) otherwise. `body` must let every error through (one swallowed
    /// leaves the transaction aborted, and its COMMIT commits nothing) and send no BEGIN or COMMIT.
    public func fenced<T: Sendable>(holder: String, epoch: Int64, doing: String,
                                    _ body: @Sendable @escaping (PostgresConnection) async throws -> T) async throws -> T {
        try await transaction(doing) { c in
            let held = try await c.query(
                """
                SELECT 1 FROM lease WHERE name = \(Self.leaseName) AND holder = \(holder) AND epoch = \(epoch) AND expiresAt > clock_timestamp() FOR SHARE
                """, logger: self.logger).collect()
            guard !held.isEmpty else { throw Fenced(holder: holder, epoch: epoch) }
            return try await body(c)
        }
    }

    // MARK: Helpers

    func transaction<T: Sendable>(_ doing: String, _ body: @Sendable @escaping (PostgresConnection) async throws -> T) async throws -> T {
        await turns.take()
        defer { turns.give() }
        do {
            return try await connection.withTransaction(logger: logger) { c in try await body(c) }
        } catch let error as PostgresTransactionError {
            if let inner = error.closureError as? Fenced { throw inner }
            if let inner = error.closureError as? StoreError { throw inner }
            throw StoreError(.database, path: location.description, detail: "\(Self.describe(error.closureError ?? error.commitError ?? error.beginError ?? error)) - while \(doing)")
        }
    }

    func strings(_ query: PostgresQuery, doing: String) async throws -> [String] {
        await turns.take()
        defer { turns.give() }
        do {
            var out: [String] = []
            for try await value in try await connection.query(query, logger: logger).decode(String.self) { out.append(value) }
            return out
        } catch {
            throw StoreError(.database, path: location.description, detail: "\(Self.describe(error)) - while \(doing)")
        }
    }

    func rows(_ query: PostgresQuery, doing: String) async throws -> [LeaseRow] {
        await turns.take()
        defer { turns.give() }
        do {
            var out: [LeaseRow] = []
            for try await (holder, epoch, expiresAt, expired) in try await connection.query(query, logger: logger).decode((String, Int64, Date, Bool).self) {
                out.append(LeaseRow(holder: holder, epoch: epoch, expiresAt: expiresAt, expired: expired))
            }
            return out
        } catch {
            throw StoreError(.database, path: location.description, detail: "\(Self.describe(error)) - while \(doing)")
        }
    }

    /// A PostgreSQL error in words: the server's message and SQLSTATE when it sent one.
    static func describe(_ error: any Error) -> String {
        guard let psql = error as? PSQLError else { return "\(error)" }
        if let info = psql.serverInfo, let message = info[.message] {
            return "PostgreSQL: \(message)" + (info[.sqlState].map { " (SQLSTATE \($0))" } ?? "")
        }
        if let underlying = psql.underlying { return "\(psql.code): \(underlying)" }
        return "\(psql.code)"
    }
}

/// Takes turns among async callers, first come first served: one holds the turn until it gives it.
final class Turns: @unchecked Sendable {
    private let lock = NSLock()
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func take() async {
        await withCheckedContinuation { (turn: CheckedContinuation<Void, Never>) in
            lock.lock()
            if busy {
                waiting.append(turn)
                lock.unlock()
            } else {
                busy = true
                lock.unlock()
                turn.resume()
            }
        }
    }

    func give() {
        lock.lock()
        if waiting.isEmpty {
            busy = false
            lock.unlock()
        } else {
            let next = waiting.removeFirst()
            lock.unlock()
            next.resume()
        }
    }
}
