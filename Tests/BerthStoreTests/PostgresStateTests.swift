@testable import BerthStore
import BerthTesting
import Foundation
import Testing

/// Against a real PostgreSQL 15 (Debian's), started for the suite.
@Suite("State on PostgreSQL: schema, refusals, the lease", .serialized,
       .enabled(if: ProcessInfo.processInfo.environment["BERTH_INTEGRATION"] == "1", "set BERTH_INTEGRATION=1 (scripts/install-deps --postgres)"))
final class PostgresStateTests {
    let server: PostgresServer

    init() throws {
        try #require(PostgresServer.installed, "PostgreSQL 15 is not installed: scripts/install-deps --postgres")
        server = try PostgresServer()
    }

    deinit { server.stop() }

    func location(_ database: String) -> PostgresLocation {
        PostgresLocation(user: server.user, host: server.host, port: server.port, database: database, sslMode: .disable)
    }

    @Test func aNewState_getsEveryMigrationOfTheSQLiteSchema_inOrder_andOpensAgainUnchanged() async throws {
        let db = try server.createDatabase()
        let state = try await PostgresState.open(location(db), password: server.password, create: true)
        #expect(try await state.appliedMigrations() == Schema.migrator.migrations)
        await state.close()
        let again = try await PostgresState.open(location(db), password: server.password, create: false)
        #expect(try await again.appliedMigrations() == Schema.migrator.migrations)
        await again.close()
        #expect(PostgresSchema.migrations.map(\.id) == Schema.migrator.migrations, "one list of migrations, both backends")
    }

    @Test func anEmptyDatabase_isNotAStateUnlessCreating() async throws {
        let db = try server.createDatabase()
        await #expect { _ = try await PostgresState.open(self.location(db), password: self.server.password, create: false) } throws: {
            ($0 as? StoreError)?.code == .notFound
        }
        #expect(try server.sql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'", database: db) == "0\n")
    }

    @Test func anotherProgramsDatabase_isRefusedUntouched() async throws {
        let db = try server.createDatabase()
        try server.sql("CREATE TABLE invoices (id int); INSERT INTO invoices VALUES (1)", database: db)
        await #expect { _ = try await PostgresState.open(self.location(db), password: self.server.password, create: true) } throws: {
            ($0 as? StoreError)?.code == .notABerthDatabase && "\($0)".contains("invoices")
        }
        #expect(try server.sql("SELECT string_agg(table_name, ',') FROM information_schema.tables WHERE table_schema = 'public'", database: db) == "invoices\n")
    }

    @Test func aStateFromANewerBerth_isRefusedUntouched() async throws {
        let db = try server.createDatabase()
        await (try await PostgresState.open(location(db), password: server.password, create: true)).close()
        try server.sql("INSERT INTO berth_migrations (identifier) VALUES ('v99-from-the-future')", database: db)
        await #expect { _ = try await PostgresState.open(self.location(db), password: self.server.password, create: false) } throws: {
            ($0 as? StoreError)?.code == .newerSchema && "\($0)".contains("v99-from-the-future")
        }
    }

    @Test func aWrongPasswordOrNone_orAServerThatIsNotThere_sayWhat() async throws {
        await #expect { _ = try await PostgresState.open(self.location("postgres"), password: "wrong", create: true) } throws: {
            ($0 as? StoreError)?.code == .unreachable && "\($0)".contains("password")
        }
        await #expect { _ = try await PostgresState.open(self.location("postgres"), password: nil, create: true) } throws: {
            ($0 as? StoreError)?.code == .unreachable && "\($0)".contains("PGPASSFILE")
        }
        var nowhere = location("postgres")
        nowhere.port = unusedLoopbackPort()
        await #expect { _ = try await PostgresState.open(nowhere, password: self.server.password, create: true) } throws: {
            ($0 as? StoreError)?.code == .unreachable && "\($0)".contains("cannot connect")
        }
    }

    @Test func oneLeads_theOtherWaits_andTakesOverOnlyOnceTheLeaseExpires_withANewEpoch() async throws {
        let db = try server.createDatabase()
        let a = try await PostgresState.open(location(db), password: server.password, create: true)
        let b = try await PostgresState.open(location(db), password: server.password, create: false)
        defer { Task { await a.close(); await b.close() } }
        let first = try await a.acquireOrRenew(holder: "a", ttl: 1)
        #expect(first.holder == "a" && first.epoch == 1)
        let refused = try await b.acquireOrRenew(holder: "b", ttl: 1)
        #expect(refused.holder == "a" && refused.epoch == 1, "b sees a's lease and does not take it")
        let renewed = try await a.acquireOrRenew(holder: "a", ttl: 1)
        #expect(renewed.holder == "a" && renewed.epoch == 1, "a renewal keeps the epoch")
        // a stops renewing: once the database's clock passes its expiry, b takes it at epoch 2.
        try await Task.sleep(for: .milliseconds(1200))
        let taken = try await b.acquireOrRenew(holder: "b", ttl: 5)
        #expect(taken.holder == "b" && taken.epoch == 2)
        let late = try await a.acquireOrRenew(holder: "a", ttl: 5)
        #expect(late.holder == "b", "the old leader coming back does not take it back")
    }

    @Test func fencing_aDeposedLeadersWriteIsNeverCommitted() async throws {
        let db = try server.createDatabase()
        let a = try await PostgresState.open(location(db), password: server.password, create: true)
        let b = try await PostgresState.open(location(db), password: server.password, create: false)
        defer { Task { await a.close(); await b.close() } }
        _ = try await a.acquireOrRenew(holder: "a", ttl: 0.5)
        let wrote = try await a.fenced(holder: "a", epoch: 1, doing: "a test write") { c in
            try await c.query("INSERT INTO event (time, type, reason, message) VALUES (now(), 'Normal', 'Test', 'by a at epoch 1')", logger: .init(label: "t"))
            return true
        }
        #expect(wrote)
        try await Task.sleep(for: .milliseconds(700))
        _ = try await b.acquireOrRenew(holder: "b", ttl: 30)
        await #expect { _ = try await a.fenced(holder: "a", epoch: 1, doing: "a late write") { c in
            try await c.query("INSERT INTO event (time, type, reason, message) VALUES (now(), 'Normal', 'Test', 'by a, deposed')", logger: .init(label: "t"))
            return true
        } } throws: { $0 is PostgresState.Fenced }
        #expect(try server.sql("SELECT string_agg(message, '|' ORDER BY id) FROM event", database: db) == "by a at epoch 1\n")
        // A clean stop hands over at once.
        try await b.release(holder: "b", epoch: 2)
        #expect(try await a.acquireOrRenew(holder: "a", ttl: 5).epoch == 3)
    }
}
