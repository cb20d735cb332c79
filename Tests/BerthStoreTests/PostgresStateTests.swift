@testable import BerthStore
import BerthTesting
import Foundation
import Testing

/// Against a real PostgreSQL 15 (Debian's), started for the suite.
@Suite("State on PostgreSQL: schema, refusals, the lease", .serialized,
       .enabled(if: ProcessInfo.processInfo.environment["BERTH_INTEGRATION"] == "1", "set BERTH_INTEGRATION=1 (scripts/install-deps --cluster)"))
final class PostgresStateTests {
    let server: PostgresServer

    init() throws {
        try #require(PostgresServer.installed, "PostgreSQL 15 is not installed: scripts/install-deps --cluster")
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
        let first = try await a.acquireOrRenew(holder: "a", ttl: 60)
        #expect(first.holder == "a" && first.epoch == 1 && !first.expired)
        let refused = try await b.acquireOrRenew(holder: "b", ttl: 60)
        #expect(refused.holder == "a" && refused.epoch == 1, "b sees a's lease and does not take it")
        let renewed = try await a.acquireOrRenew(holder: "a", ttl: 60)
        #expect(renewed.holder == "a" && renewed.epoch == 1 && renewed.expiresAt >= first.expiresAt, "a renewal keeps the epoch")
        // a stops renewing, and the database's clock passes its expiry (moved there, not waited for).
        try server.sql("UPDATE lease SET expiresAt = now() - interval '1 second'", database: db)
        #expect(try await b.lease()?.expired == true)
        let taken = try await b.acquireOrRenew(holder: "b", ttl: 60)
        #expect(taken.holder == "b" && taken.epoch == 2)
        let late = try await a.acquireOrRenew(holder: "a", ttl: 60)
        #expect(late.holder == "b", "the old leader coming back does not take it back")
        await a.close()
        await b.close()
    }

    @Test func callsOnOneState_takeTurns_soARenewalNeverLandsInAFencedTransaction() async throws {
        let db = try server.createDatabase()
        let a = try await PostgresState.open(location(db), password: server.password, create: true)
        _ = try await a.acquireOrRenew(holder: "a", ttl: 60)
        // A fenced body that fails after a renewal was asked for: the renewal must not be undone with it.
        let before = try #require(try await a.lease())
        let failing = Task {
            _ = try? await a.fenced(holder: "a", epoch: 1, doing: "a failing write") { c in
                try await Task.sleep(for: .milliseconds(300))
                _ = try await c.query("SELECT 1/0", logger: .init(label: "t")).collect()
                return true
            }
        }
        try await Task.sleep(for: .milliseconds(100))
        let renewed = try await a.acquireOrRenew(holder: "a", ttl: 120)
        await failing.value
        let after = try #require(try await a.lease())
        #expect(after.expiresAt == renewed.expiresAt && after.expiresAt > before.expiresAt, "the renewal stands: \(before) \(renewed) \(after)")
        await a.close()
    }

    @Test func fencing_aDeposedLeadersWriteIsNeverCommitted() async throws {
        let db = try server.createDatabase()
        let a = try await PostgresState.open(location(db), password: server.password, create: true)
        let b = try await PostgresState.open(location(db), password: server.password, create: false)
        _ = try await a.acquireOrRenew(holder: "a", ttl: 60)
        let wrote = try await a.fenced(holder: "a", epoch: 1, doing: "a test write") { c in
            try await c.query("INSERT INTO event (time, type, reason, message) VALUES (now(), 'Normal', 'Test', 'by a at epoch 1')", logger: .init(label: "t"))
            return true
        }
        #expect(wrote)
        try server.sql("UPDATE lease SET expiresAt = now() - interval '1 second'", database: db)
        _ = try await b.acquireOrRenew(holder: "b", ttl: 60)
        await #expect { _ = try await a.fenced(holder: "a", epoch: 1, doing: "a late write") { c in
            try await c.query("INSERT INTO event (time, type, reason, message) VALUES (now(), 'Normal', 'Test', 'by a, deposed')", logger: .init(label: "t"))
            return true
        } } throws: { $0 is PostgresState.Fenced }
        #expect(try server.sql("SELECT string_agg(message, '|' ORDER BY id) FROM event", database: db) == "by a at epoch 1\n")
        // A clean stop hands over at once.
        try await b.release(holder: "b", epoch: 2)
        #expect(try await a.acquireOrRenew(holder: "a", ttl: 60).epoch == 3)
        await a.close()
        await b.close()
    }
}
