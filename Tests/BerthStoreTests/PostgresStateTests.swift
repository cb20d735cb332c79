@testable import BerthStore
import BerthModel
import BerthTesting
import Foundation
import Testing

/// Against a real PostgreSQL 15 (Debian's), shared by the test process.
@Suite("State on PostgreSQL: schema, refusals, the lease, copies and snapshots", .serialized,
       .enabled(if: Backing.integration, "set BERTH_INTEGRATION=1 (scripts/install-deps --cluster)"))
struct PostgresStateTests {
    let server: PostgresServer

    init() throws {
        server = try PostgresServer.shared.get()
    }

    func open(_ database: String, create: Bool = false) throws -> StateStore {
        StateStore(postgres: try PostgresState.open(server.location(database), password: server.password, create: create))
    }

    @Test func aNewState_getsEveryMigrationOfTheSQLiteSchema_inOrder_andOpensAgainUnchanged() throws {
        let db = try server.createDatabase()
        let state = try PostgresState.open(server.location(db), password: server.password, create: true)
        #expect(try state.appliedMigrations() == Schema.migrator.migrations)
        state.close()
        let again = try PostgresState.open(server.location(db), password: server.password, create: false)
        #expect(try again.appliedMigrations() == Schema.migrator.migrations)
        again.close()
        #expect(PostgresSchema.migrations.map(\.id) == Schema.migrator.migrations, "one list of migrations, both backends")
    }

    @Test func anEmptyDatabase_isNotAStateUnlessCreating() throws {
        let db = try server.createDatabase()
        #expect { _ = try PostgresState.open(server.location(db), password: server.password, create: false) } throws: {
            ($0 as? StoreError)?.code == .notFound
        }
        #expect(try server.sql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'", database: db) == "0\n")
    }

    @Test func anotherProgramsDatabase_isRefusedUntouched() throws {
        let db = try server.createDatabase()
        try server.sql("CREATE TABLE invoices (id int); INSERT INTO invoices VALUES (1)", database: db)
        #expect { _ = try PostgresState.open(server.location(db), password: server.password, create: true) } throws: {
            ($0 as? StoreError)?.code == .notABerthDatabase && "\($0)".contains("invoices")
        }
        #expect(try server.sql("SELECT string_agg(table_name, ',') FROM information_schema.tables WHERE table_schema = 'public'", database: db) == "invoices\n")
    }

    @Test func aStateFromANewerBerth_isRefusedUntouched() throws {
        let db = try server.createDatabase()
        try PostgresState.open(server.location(db), password: server.password, create: true).close()
        try server.sql("INSERT INTO berth_migrations (identifier) VALUES ('v99-from-the-future')", database: db)
        #expect { _ = try PostgresState.open(server.location(db), password: server.password, create: false) } throws: {
            ($0 as? StoreError)?.code == .newerSchema && "\($0)".contains("v99-from-the-future")
        }
    }

    @Test func aWrongPasswordOrNone_orAServerThatIsNotThere_sayWhat() throws {
        #expect { _ = try PostgresState.open(server.location("postgres"), password: "wrong", create: true) } throws: {
            ($0 as? StoreError)?.code == .unreachable && "\($0)".contains("password")
        }
        #expect { _ = try PostgresState.open(server.location("postgres"), password: nil, create: true) } throws: {
            ($0 as? StoreError)?.code == .unreachable && "\($0)".contains("--state-password-file")
        }
        var nowhere = server.location("postgres")
        nowhere.port = unusedLoopbackPort()
        #expect { _ = try PostgresState.open(nowhere, password: server.password, create: true) } throws: {
            ($0 as? StoreError)?.code == .unreachable && "\($0)".contains("cannot connect")
        }
    }

    @Test func oneLeads_theOtherWaits_andTakesOverOnlyOnceTheLeaseExpiresByTheDatabasesClock() throws {
        let db = try server.createDatabase()
        let a = try open(db, create: true)
        let b = try open(db)
        var watch = LeaseWatch()
        let first = try a.acquireLease(holder: "a", ttl: 60, watch: &watch)
        #expect(first.holder == "a" && first.epoch == 1)
        let refused = try b.acquireLease(holder: "b", ttl: 60, watch: &watch)
        #expect(refused.holder == "a" && refused.epoch == 1, "b sees a's lease and does not take it")
        let renewed = try a.acquireLease(holder: "a", ttl: 60, watch: &watch)
        #expect(renewed.epoch == 1 && renewed.renewals == 1 && renewed.expiresAt >= first.expiresAt, "a renewal keeps the epoch")
        #expect(try b.liveLeaseHolder()?.holder == "a")
        // A clock on b's host far in the future changes nothing: the database's clock judges.
        #expect(try b.liveLeaseHolder(now: Date().addingTimeInterval(86_400))?.holder == "a")
        // a stops renewing, and the database's clock passes its expiry (moved there, not waited for).
        try server.sql("UPDATE lease SET expiresAt = now() - interval '1 second'", database: db)
        #expect(try b.liveLeaseHolder() == nil)
        let taken = try b.acquireLease(holder: "b", ttl: 60, watch: &watch)
        #expect(taken.holder == "b" && taken.epoch == 2)
        #expect(try a.acquireLease(holder: "a", ttl: 60, watch: &watch).holder == "b", "the old leader coming back does not take it back")
    }

    @Test func fencing_aDeposedLeadersStatusWriteAndRenewal_areRefused_andNothingOfThemIsKept() throws {
        let db = try server.createDatabase()
        let a = try open(db, create: true)
        let b = try open(db)
        var watch = LeaseWatch()
        _ = try a.acquireLease(holder: "a", ttl: 60, watch: &watch)
        let mine = FleetStatus(controller: ControllerStatus(holder: "a", epoch: 1, startedAt: Date(), lastPassAt: Date(), lastPassMilliseconds: 1, passes: 1, revision: 0, listen: nil), deployments: [], nodes: [])
        try a.writeStatus(mine, events: [Event(time: Date(), revision: nil, kind: nil, name: nil, reason: "Test", message: "by a at epoch 1")], holder: "a")
        try a.renewLease(holder: "a", epoch: 1, ttl: 60)
        try server.sql("UPDATE lease SET expiresAt = now() - interval '1 second'", database: db)
        // Expired, not yet taken: a's writes are already refused (the database's clock, not a's).
        #expect(throws: LeaseLost.self) { try a.renewLease(holder: "a", epoch: 1, ttl: 60) }
        _ = try b.acquireLease(holder: "b", ttl: 60, watch: &watch)
        #expect(throws: LeaseLost.self) {
            try a.writeStatus(mine, events: [Event(time: Date(), revision: nil, kind: nil, name: nil, reason: "Test", message: "by a, deposed")], holder: "a")
        }
        #expect(throws: LeaseLost.self) { try a.renewLease(holder: "a", epoch: 1, ttl: 60) }
        #expect(try b.events(limit: 10).map(\.message) == ["by a at epoch 1"])
        // A clean stop hands over at once.
        try b.releaseLease(holder: "b")
        #expect(try a.acquireLease(holder: "a", ttl: 60, watch: &watch).epoch == 3)
        // a leads again, at epoch 3: a status it made at epoch 1 is still refused.
        #expect(throws: LeaseLost.self) { try a.writeStatus(mine, holder: "a") }
    }

    @Test func aStatusWriteHoldsOffATakeover_untilItCommits() throws {
        // The fence share-locks the lease row: a successor's takeover waits for the write, then
        // finds the lease renewed or not, never a write of an epoch it already replaced.
        let db = try server.createDatabase()
        let a = try open(db, create: true)
        var watch = LeaseWatch()
        _ = try a.acquireLease(holder: "a", ttl: 60, watch: &watch)
        try a.write("a slow fenced write") { session in
            try a.fence(session, holder: "a")
            // Another session tries to expire the lease meanwhile: it must wait for this transaction.
            let started = Date()
            #expect { try server.sql("SET lock_timeout = '300ms'; UPDATE lease SET expiresAt = now()", database: db) } throws: {
                "\($0)".contains("lock timeout")
            }
            #expect(Date().timeIntervalSince(started) >= 0.3)
        }
    }

    @Test func aRestartedServer_costsOneCall_andLosesNoRevision() throws {
        let db = try server.createDatabase()
        let store = try open(db, create: true)
        for r in 1...3 { _ = try store.apply(Manifests.load(Manifests.node("a"), Manifests.model, Manifests.deployment("chat", replicas: r)), options: options()) }
        try server.restart()
        var failures = 0
        var latest: Int64?
        for _ in 0..<3 {
            do {
                latest = try store.latestRevision()
                break
            } catch let error as StoreError {
                #expect(error.code == .unreachable, "\(error)")
                failures += 1
            }
        }
        #expect(latest == 3 && failures <= 1, "reconnected after \(failures) failed call(s)")
        #expect(try store.apply(Manifests.load(Manifests.deployment("chat", replicas: 4)), options: options()).revision == 4)
    }

    @Test func stateCopy_movesTheWholeHistory_SQLiteToPostgresAndBack_andTheNextRevisionNumbersOn() throws {
        let file = try StateStore.open(path: temporaryPath(), create: true)
        for r in 1...5 { _ = try file.apply(Manifests.load(Manifests.node("a"), Manifests.model, Manifests.deployment("chat", replicas: r)), options: options("r\(r)")) }
        try file.change(node: "a", .cordon, author: "ops", reason: "fan")
        try file.holdGPUs([GPUHold(node: "a", gpu: 2, fault: .operatorHold, detail: "reseat", author: "ops")])
        try file.record([Verification(model: "llama", version: "v1", path: "/m/w", node: nil, expected: "ab", actual: "ab", ok: true, detail: "", verifiedAt: Date())])
        try file.record(stagings: [Staging(node: "a", model: "llama", version: "v1", state: .staged, fingerprint: "f", bytesDone: 9, bytesTotal: 9, updatedAt: Date())])

        let pg = try open(try server.createDatabase(), create: true)
        let counts = try StateCopy.copy(from: file, to: pg)
        let fileCounts = try StateCopy.counts(file)
        #expect(counts.revisions == 5 && counts == fileCounts)
        #expect(try pg.history(limit: 10).map(\.revision) == file.history(limit: 10).map(\.revision))
        #expect(try pg.documents(at: 3) == file.documents(at: 3))
        #expect(try pg.nodeHolds() == file.nodeHolds() && pg.gpuHolds() == file.gpuHolds() && pg.stagings() == file.stagings())
        #expect(try pg.events(limit: 100) == file.events(limit: 100))
        #expect(try pg.apply(Manifests.load(Manifests.deployment("chat", replicas: 9)), options: options()).revision == 6)
        // Events and verification records take ids from sequences: each moved past the copied ids.
        let eventsBefore = try file.events(limit: 1000).compactMap(\.id).max() ?? 0
        #expect(try pg.events(limit: 1).first?.id.map { $0 > eventsBefore } == true, "the apply's event got a new id")
        try pg.record([Verification(model: "llama", version: "v1", path: "/m/w2", node: nil, expected: "cd", actual: "cd", ok: true, detail: "", verifiedAt: Date())])
        let verificationIDs = try pg.latestVerifications(model: "llama", version: "v1").compactMap(\.id)
        #expect(Set(verificationIDs).count == 2 && verificationIDs.allSatisfy { $0 >= 1 }, "\(verificationIDs)")
        #expect { try StateCopy.copy(from: file, to: pg) } throws: { ($0 as? StoreError)?.code == .invalidLocation && "\($0)".contains("not empty") }

        let back = try StateStore.open(path: temporaryPath(), create: true)
        try StateCopy.copy(from: pg, to: back)
        #expect(try back.state(at: 6) == pg.state(at: 6) && back.latestRevision() == 6)
    }

    @Test func aSnapshotOfAPostgresState_isAVerifiedSQLiteFile_thatRollsBackLikeAnyOther() throws {
        let pg = try open(try server.createDatabase(), create: true)
        for r in 1...3 { _ = try pg.apply(Manifests.load(Manifests.node("a"), Manifests.model, Manifests.deployment("chat", replicas: r)), options: options()) }
        let snapshots = SnapshotStore(folder: (temporaryPath() as NSString).deletingLastPathComponent + "/snapshots")
        let record = try snapshots.create(from: pg)
        #expect(record.revision == 3)
        #expect(try snapshots.verify(record.id).isEmpty)
        let (_, copy) = try snapshots.open(record.id)
        #expect(try copy.state(at: 3) == pg.state(at: 3))
        #expect(try snapshots.list().map(\.id) == [record.id])
    }

    /// A server whose packets are lost without a word (the proxy drops everything): a lease call
    /// fails within its 5 s deadline instead of holding the caller for ever, and once the network
    /// heals the next call connects again.
    @Test func aNetworkThatDropsPackets_failsALeaseCallWithinItsDeadline_andTheNextCallReconnects() throws {
        let database = try server.createDatabase()
        let port = unusedLoopbackPort()
        let log = (temporaryPath() as NSString).deletingLastPathComponent + "/proxy.log"
        let proxy = try Spawn.start(["/usr/bin/python3", LocalCluster.root.path + "/scripts/lib/cut-proxy", "\(port)", "127.0.0.1", "\(server.port)"], stdout: log)
        defer { kill(proxy, SIGTERM); Spawn.wait(proxy) }
        #expect(waitUntil(10) { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("ready") } != nil)
        var through = server.location(database)
        through.port = port
        let store = StateStore(postgres: try PostgresState.open(through, password: server.password, create: true))
        var watch = LeaseWatch()
        _ = try store.acquireLease(holder: "a", ttl: 60, watch: &watch)
        kill(proxy, SIGHUP)
        let started = Date()
        #expect { _ = try store.lease() } throws: { ($0 as? StoreError)?.code == .unreachable }
        let waited = Date().timeIntervalSince(started)
        #expect(waited >= 4.5 && waited < 10, "failed after \(waited) s")
        kill(proxy, SIGUSR2)
        #expect(try store.lease()?.holder == "a")
    }
}
