import BerthModel
import Foundation
import Logging
import NIOSSL
import PostgresNIO

import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO

/// A Berth state on PostgreSQL, for controllers on several hosts to share: one connection per
/// state (reconnected when it drops), its schema (the same named migrations as on SQLite), and
/// transactions for `StateStore`'s sessions. Calls block their thread until the server answers,
/// as SQLite calls do; the connection's own event loop is a thread of its own, so no caller can
/// be the thread it waits on. Calls take turns: whatever is sent on the connection runs in the
/// transaction open on it.
public final class PostgresState: @unchecked Sendable {
    public let location: PostgresLocation
    let configuration: PostgresConnection.Configuration
    let logger: Logger
    /// Guards `connection` and the turns on it.
    let lock = NSLock()
    var connection: PostgresConnection?

    /// The thread every state's connection runs on.
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    init(location: PostgresLocation, configuration: PostgresConnection.Configuration, logger: Logger) {
        self.location = location
        self.configuration = configuration
        self.logger = logger
    }

    // Not waited for: a connection to a server that went silent may never finish closing.
    deinit { if let connection { Self.hangUp(connection) } }

    /// Connects and checks the database before anything is written: an empty one becomes a new
    /// state when `create` (else `.notFound`), a database of another program (tables but no Berth
    /// marker) and one written by a newer Berth (migrations this build does not know) are refused
    /// untouched; an older Berth state gets the migrations it lacks, in one transaction.
    /// `prefer` and `require` encrypt without checking the server's certificate, as libpq's modes
    /// of those names do.
    public static func open(_ location: PostgresLocation, password: String?, create: Bool,
                            logger: Logger = Logger(label: "berth-state")) throws -> PostgresState {
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
        // A hung or cut-off holder of a transaction must not hold the lease row or the write lock
        // for long: the server ends an idle transaction after a minute; nothing waits on a lock past 10 s.
        config.options.additionalStartupParameters = [
            ("statement_timeout", "30000"), ("lock_timeout", "10000"), ("idle_in_transaction_session_timeout", "60000"),
        ]
        let state = PostgresState(location: location, configuration: config, logger: logger)
        do {
            state.lock.lock()
            defer { state.lock.unlock() }
            _ = try state.liveConnection()
        }
        do {
            try state.prepare(create: create)
        } catch {
            state.close()
            throw error
        }
        return state
    }

    public func close() {
        lock.lock()
        defer { lock.unlock() }
        if let connection { _ = try? Self.answer(connection.close(), within: .seconds(5)) }
        connection = nil
    }

    /// Closes a connection without waiting for it to finish closing; the connection is kept
    /// until it has (postgres-nio requires a connection closed before it goes).
    static func hangUp(_ connection: PostgresConnection) {
        let closing: EventLoopFuture<Void> = connection.close()
        closing.whenComplete { _ in withExtendedLifetime(connection) {} }
    }

    /// No answer within a deadline: the server went silent (or the network drops its packets).
    struct Silent: Error {}

    /// Waits for `future` at most `deadline`; throws `Silent` past it. A future of a connection
    /// whose server went silent may never complete (closing it waits on the server too), so the
    /// wait is bounded here rather than by closing.
    static func answer<T>(_ future: EventLoopFuture<T>, within deadline: TimeAmount) throws -> T {
        let done = DispatchSemaphore(value: 0)
        let outcome = Outcome<T>()
        future.whenComplete { result in
            outcome.set(result)
            done.signal()
        }
        guard done.wait(timeout: .now() + .nanoseconds(Int(deadline.nanoseconds))) == .success, let result = outcome.get() else { throw Silent() }
        return try result.get()
    }

    /// The connection, opened anew when there is none or the last one dropped (a restarted
    /// server, a cut network). Called holding `lock`.
    func liveConnection() throws -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        if let old = connection { Self.hangUp(old) }
        connection = nil
        do {
            let fresh = try Self.answer(PostgresConnection.connect(on: Self.group.next(), configuration: configuration, id: 1, logger: logger),
                                        within: .seconds(15))
            connection = fresh
            return fresh
        } catch {
            let why = error is Silent ? "no answer within 15 s" : Self.describe(error)
            if why.contains("SQLSTATE 3D000") {
                throw StoreError(.notFound, path: location.description, detail: "cannot connect: \(why)",
                                 hint: "create the database first (CREATE DATABASE \(location.database)), owned by \(location.user)")
            }
            throw StoreError(.unreachable, path: location.description, detail: "cannot connect: \(why)",
                             hint: configuration.password == nil
                                ? "check that the server runs and accepts USER from this host; if it asks for a password, give it by reference (--state-password-file, PGPASSFILE or ~/.pgpass)"
                                : "check that the server runs, accepts USER from this host, and that the password is right")
        }
    }

    static var unverified: TLSConfiguration {
        var config = TLSConfiguration.makeClientConfiguration()
        config.certificateVerification = .none
        return config
    }

    /// Refuses what is not a Berth state (or is a newer one), then migrates what is missing.
    func prepare(create: Bool) throws {
        let tables = try transaction(write: false, doing: "reading the schema") { session -> (tables: [String], marker: [String], applied: [String]) in
            // pg_tables lists every table, whatever this role may read (information_schema would not).
            let tables = try session.rows("SELECT tablename::text FROM pg_catalog.pg_tables WHERE schemaname = current_schema()").map { try $0.string(0) }
            guard tables.contains("berth_meta") else { return (tables, [], []) }
            let marker = try session.rows("SELECT value FROM berth_meta WHERE key = 'application'").map { try $0.string(0) }
            guard tables.contains("berth_migrations") else { return (tables, marker, []) }
            return (tables, marker, try session.rows("SELECT identifier FROM berth_migrations").map { try $0.string(0) })
        }
        if tables.tables.isEmpty && !create {
            throw StoreError(.notFound, path: location.description, detail: "no Berth state in this database yet",
                             hint: "run `berth apply -f MANIFESTS --state URL` to make it one")
        }
        if !tables.tables.isEmpty {
            guard tables.marker == [PostgresSchema.application] else {
                throw StoreError(.notABerthDatabase, path: location.description,
                                 detail: "is a PostgreSQL database but not a Berth state (tables: \(tables.tables.sorted().prefix(5).joined(separator: ", ")))",
                                 hint: "point --state at a database of its own for Berth (CREATE DATABASE berth); this one was left untouched")
            }
            let unknown = tables.applied.filter { id in !PostgresSchema.migrations.contains { $0.id == id } }
            if !unknown.isEmpty {
                throw StoreError(.newerSchema, path: location.description,
                                 detail: "was written by a newer Berth (schema steps this build does not know: \(unknown.sorted().joined(separator: ", ")))",
                                 hint: "upgrade berth; this build refuses to change the database")
            }
            if tables.applied.count == PostgresSchema.migrations.count { return }
        }
        try migrate()
    }

    /// Applies the migrations not recorded yet, with their records, in one transaction under an
    /// advisory lock, so that two controllers starting at once do not both apply one.
    func migrate() throws {
        try transaction(write: true, doing: "migrating the schema") { session in
            let exists = try session.rows("SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = 'berth_meta'")
            if exists.isEmpty {
                for statement in PostgresSchema.bookkeeping { try session.execute(statement) }
            }
            let applied = Set(try session.rows("SELECT identifier FROM berth_migrations").map { try $0.string(0) })
            for migration in PostgresSchema.migrations where !applied.contains(migration.id) {
                for statement in migration.statements { try session.execute(statement) }
                try session.execute("INSERT INTO berth_migrations (identifier) VALUES (?)", [.text(migration.id)])
            }
        }
    }

    /// Migrations recorded: in this build's order, then any it does not know.
    public func appliedMigrations() throws -> [String] {
        let applied = Set(try transaction(write: false, doing: "reading berth_migrations") { session in
            try session.rows("SELECT identifier FROM berth_migrations").map { try $0.string(0) }
        })
        let known = PostgresSchema.migrations.map(\.id)
        return known.filter(applied.contains) + applied.subtracting(known).sorted()
    }

    // MARK: Transactions

    /// Every writer takes this lock first, in its transaction: writes one at a time, as on SQLite,
    /// so an apply never builds on a state another apply is changing.
    static let writeLock: Int64 = 4_252_544_802

    /// Runs `body` in one transaction: a write takes the writers' lock first (unless `lockWrites`
    /// is false: the lease's own statements, which lock its row instead); a read sees one
    /// consistent view (repeatable read) and can change nothing. Rolled back on any error, and
    /// refused when the server did not commit. No statement waits for its answer longer than
    /// `deadline`: past it the connection is closed (a server cut off without a word, its packets
    /// dropped, would otherwise hold the caller for ever) and the next call opens another.
    func transaction<T>(write: Bool, lockWrites: Bool = true, deadline: TimeAmount = .seconds(60), doing: String,
                        _ body: (PostgresSession) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        let session = PostgresSession(connection: try liveConnection(), state: self, deadline: deadline)
        do {
            try session.execute(write ? "BEGIN" : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            if write && lockWrites {
                // Migrating also takes it: two controllers starting at once do not both migrate.
                try session.execute("SELECT pg_advisory_xact_lock(?)", [.int(Self.writeLock)])
            } else if write {
                // The lease's row lock is waited for briefly: a renewal must not outwait its lease.
                try session.execute("SET LOCAL lock_timeout = '2s'")
            }
            let result = try body(session)
            let committed: Bool
            do {
                committed = try session.commit()
            } catch {
                throw StoreError(.unreachable, path: location.description,
                                 detail: "the connection failed while committing, so whether the change was stored is unknown (\(Self.describe(error))) - while \(doing)",
                                 hint: "look before repeating it (`berth history`, `berth status`)")
            }
            guard committed else {
                throw StoreError(.database, path: location.description, detail: "the server rolled the transaction back - while \(doing)")
            }
            return result
        } catch {
            _ = try? session.execute("ROLLBACK")
            if var known = error as? StoreError {
                if known.path.isEmpty { known.path = location.description }
                if known.code == .database && !known.detail.contains(" - while ") { known.detail += " - while \(doing)" }
                throw known
            }
            // What the body decided (a manifest problem, a lost lease) goes to the caller as it is.
            guard let psql = error as? PSQLError else { throw error }
            let why = Self.describe(psql)
            let sqlState = psql.serverInfo?[.sqlState] ?? ""
            // Connection-level failures, and the server ending the session (admin shutdown, idle
            // transaction timeout, crash recovery): the next call connects again.
            let dropped = [.serverClosedConnection, .connectionError, .uncleanShutdown, .clientClosedConnection].contains(psql.code)
                || ["57P01", "57P02", "57P03", "25P03"].contains(sqlState)
            throw StoreError(dropped ? .unreachable : .database, path: location.description, detail: "\(why) - while \(doing)",
                             hint: dropped ? "the connection to PostgreSQL dropped or went unanswered (deadline \(deadline.nanoseconds / 1_000_000_000) s); the next call connects again" : nil)
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

/// A session inside one of `PostgresState`'s transactions: `?` placeholders become `$1`, `$2`…,
/// and each answer is waited for.
struct PostgresSession: SQLSession {
    let connection: PostgresConnection
    let state: PostgresState
    /// The longest wait for one answer.
    let deadline: TimeAmount
    var dialect: SQLDialect { .postgres }

    @discardableResult
    func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int {
        try run(sql, arguments).metadata.rows ?? 0
    }

    func rows(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
        try run(sql, arguments).rows.map { row in SQLRow(values: try row.map(Self.value)) }
    }

    /// COMMIT; false when the server answered that it rolled back (an earlier statement failed).
    func commit() throws -> Bool {
        try run("COMMIT", []).metadata.command == "COMMIT"
    }

    func run(_ sql: String, _ arguments: [SQLValue]) throws -> PostgresQueryResult {
        var binds = PostgresBindings(capacity: arguments.count)
        for value in arguments {
            switch value {
            case .null: binds.appendNull()
            case .int(let n): binds.append(n)
            case .double(let d): binds.append(d)
            case .text(let s): binds.append(s)
            case .bool(let b): binds.append(b)
            case .date(let d): binds.append(d)
            }
        }
        let (text, count) = Self.numbered(sql)
        guard count == arguments.count else {
            throw StoreError(.database, path: "", detail: "a statement has \(count) placeholder(s) for \(arguments.count) value(s): \(sql.prefix(120))")
        }
        // A connection given up on (below) answers nothing more: fail at once, not after another deadline.
        guard state.connection === connection, !connection.isClosed else {
            throw StoreError(.unreachable, path: "", detail: "the connection to PostgreSQL was given up", hint: "the next call connects again")
        }
        do {
            return try PostgresState.answer(connection.query(PostgresQuery(unsafeSQL: text, binds: binds), logger: state.logger), within: deadline)
        } catch is PostgresState.Silent {
            // Given up: the next call opens another connection. (Called under the state's lock.)
            state.connection = nil
            PostgresState.hangUp(connection)
            throw StoreError(.unreachable, path: "", detail: "PostgreSQL did not answer within \(deadline.nanoseconds / 1_000_000_000) s",
                             hint: "the server or the network to it went silent; the next call connects again")
        }
    }

    /// `?` placeholders numbered as PostgreSQL wants them (`$1`…), leaving quoted text alone, and
    /// how many there were. The store's statements use no `?` operator, comment or other quoting.
    static func numbered(_ sql: String) -> (String, Int) {
        var out = ""
        out.reserveCapacity(sql.count + 8)
        var n = 0
        var quoted = false
        for c in sql {
            if c == "'" { quoted.toggle() }
            if c == "?" && !quoted {
                n += 1
                out += "$\(n)"
            } else {
                out.append(c)
            }
        }
        return (out, n)
    }

    static func value(_ cell: PostgresCell) throws -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int8, .int4, .int2: return .int(try cell.decode(Int64.self))
        case .bool: return .bool(try cell.decode(Bool.self))
        case .timestamptz, .timestamp: return .date(try cell.decode(Date.self))
        case .float8, .float4: return .double(try cell.decode(Double.self))
        default: return .text(try cell.decode(String.self))
        }
    }
}

/// The result of a future, handed from the event loop to the waiting thread.
final class Outcome<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<T, any Error>?

    func set(_ value: Result<T, any Error>) { lock.withLock { result = value } }
    func get() -> Result<T, any Error>? { lock.withLock { result } }
}
