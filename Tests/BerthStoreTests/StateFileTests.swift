import BerthModel
@testable import BerthStore
import BerthTesting
import Foundation
import GRDB
import Testing

/// Bad state files: each is refused with a clear error and left byte-for-byte as it was.
@Suite("State files")
struct StateFileTests {
    func expectRefused(_ path: String, _ code: StoreError.Code, saying text: String) {
        let before = contents(path)
        do {
            let store = try StateStore.open(path: path, create: true)
            _ = try store.apply(Manifests.load(Manifests.node("a")), options: options())
            Issue.record("expected \(code), the apply went through")
        } catch let error as StoreError {
            #expect(error.code == code, "\(error)")
            #expect(error.description.contains(text), "\(error)")
            #expect(error.description.contains(path))
        } catch {
            Issue.record("unexpected error \(error)")
        }
        #expect(contents(path) == before, "the file must be left untouched")
    }

    @Test func textFile_isRefusedAsNotADatabase() throws {
        let path = temporaryPath()
        try "apiVersion: berth/v1\nthis is a manifest, not a database\n".write(toFile: path, atomically: true, encoding: .utf8)
        expectRefused(path, .notABerthDatabase, saying: "not a SQLite database")
    }

    @Test func otherProgramsSQLiteDatabase_isRefused() throws {
        let path = temporaryPath()
        let queue = try DatabaseQueue(path: path)
        try queue.write { try $0.execute(sql: "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT)") }
        try queue.close()
        expectRefused(path, .notABerthDatabase, saying: "not a Berth state (tables: customers)")
    }

    @Test func truncatedDatabase_isRefusedAsDamaged() throws {
        let path = temporaryPath()
        do {
            let store = try StateStore.open(path: path, create: true)
            // Enough history that the file spans many pages.
            for r in 1...60 {
                _ = try store.apply(Manifests.load(Manifests.node("n\(r)", port: 20000 + r * 100)), options: options(String(repeating: "x", count: 500)))
            }
        }
        let data = try #require(contents(path))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: path))
        let before = contents(path)
        do {
            let store = try StateStore.open(path: path, create: true)
            _ = try store.history(limit: 100)
            _ = try store.objects()
            Issue.record("a truncated database was read without error")
        } catch let error as StoreError {
            #expect(error.code == .corrupt || error.code == .database, "\(error)")
            #expect(error.description.contains("SQLite error"))
        }
        #expect(contents(path) == before)
    }

    @Test func databaseFromNewerBerth_isRefused() throws {
        let path = temporaryPath()
        _ = try StateStore.open(path: path, create: true)
        let queue = try DatabaseQueue(path: path)
        try queue.write { try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v9-from-the-future')") }
        try queue.close()
        expectRefused(path, .newerSchema, saying: "newer Berth (schema steps this build does not know: v9-from-the-future)")
    }

    @Test func folderAsStatePath_isRefused() throws {
        let path = temporaryPath()
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        #expect(throws: StoreError.self) { try StateStore.open(path: path, create: true) }
    }

    @Test func missingState_isNotCreatedByReads() throws {
        let path = temporaryPath()
        #expect(throws: StoreError.self) { try StateStore.open(path: path, create: false) }
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func readOnlyFolder_failsClearly_andKeepsState() throws {
        let path = temporaryPath()
        let folder = (path as NSString).deletingLastPathComponent
        do {
            let store = try StateStore.open(path: path, create: true)
            _ = try store.apply(Manifests.load(Manifests.node("a")), options: options())
        }
        let before = contents(path)
        try ReadOnly.make([path, folder])
        defer { try? ReadOnly.undo([path, folder]) }
        do {
            let store = try StateStore.open(path: path, create: true)
            _ = try store.apply(Manifests.load(Manifests.node("a", gpus: 2)), options: options())
            Issue.record("apply into a read-only folder succeeded")
        } catch let error as StoreError {
            #expect(error.code == .readOnly, "\(error)")
        }
        try ReadOnly.undo([path, folder])
        #expect(contents(path) == before)
        #expect(try StateStore.open(path: path, create: false).object(ObjectKey(.node, "a"))?.resource.node?.gpus.count == 8)
    }

    @Test func newState_isOwnerOnlyInAFreshFolder() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("berth-perm-\(UUID().uuidString)/state").path
        _ = try StateStore.open(path: folder + "/berth.db", create: true)
        let attributes = try FileManager.default.attributesOfItem(atPath: folder)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o700)
    }
}

/// Makes paths unwritable even for root (immutable attribute), or by mode for other users.
enum ReadOnly {
    static func make(_ paths: [String]) throws {
        for p in paths {
            if getuid() == 0 { try run("/usr/bin/chattr", ["+i", p]) } else { chmod(p, 0o555) }
        }
    }

    static func undo(_ paths: [String]) throws {
        for p in paths {
            if getuid() == 0 { try run("/usr/bin/chattr", ["-i", p]) } else { chmod(p, 0o755) }
        }
    }

    static func run(_ tool: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSLocalizedDescriptionKey: "\(tool) \(arguments.joined(separator: " ")) failed"])
        }
    }
}

@Suite("State file settings")
struct StateFileSettingsTests {
    @Test func onDiskState_usesWAL_andEnforcesForeignKeys() throws {
        let path = temporaryPath()
        _ = try StateStore.open(path: path, create: true).apply(Manifests.load(Manifests.node("a")), options: options())
        let queue = try DatabaseQueue(path: path)
        defer { try? queue.close() }
        #expect(try queue.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") } == "wal")
        #expect(try queue.read { try Int.fetchOne($0, sql: "PRAGMA application_id") } == 0x4252_5448)
        // An object version pointing at a revision that does not exist is refused by the schema itself.
        #expect(throws: DatabaseError.self) {
            try queue.write { try $0.execute(sql: "INSERT INTO objectVersion (revision, kind, name, action, document) VALUES (99, 'Node', 'x', 'created', '{}')") }
        }
        #expect(throws: DatabaseError.self) {
            try queue.write { try $0.execute(sql: "INSERT INTO objectVersion (revision, kind, name, action, document) VALUES (1, 'Pod', 'x', 'created', '{}')") }
        }
    }

    /// `berth state copy` moves every table but the controller's own (lease, status): a table a
    /// new migration adds must be added to the copy, or this fails.
    @Test func theCopyKnowsEveryTableOfTheSchema() throws {
        let path = temporaryPath()
        _ = try StateStore.open(path: path, create: true)
        let queue = try DatabaseQueue(path: path)
        let tables = try queue.read { try String.fetchAll($0, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'grdb_migrations'") }
        #expect(Set(tables) == Set(StateCopy.tables + ["lease", "status"]), "\(tables.sorted())")
    }

    /// A read runs in a deferred transaction of its own (GRDB's `read` would switch
    /// `query_only` around it, throwing away every compiled statement): a write slipped into a
    /// read is refused all the same, and changes nothing.
    @Test func aWriteInsideARead_isRefused_andChangesNothing() throws {
        let path = temporaryPath()
        let store = try StateStore.open(path: path, create: true)
        _ = try store.apply(Manifests.load(Manifests.node("a")), options: options())
        for (sql, arguments) in [("DELETE FROM object WHERE kind = ?", [SQLValue.text("Node")]), ("DELETE FROM object", [])] {
            let error = #expect(throws: (any Error).self) { try store.read("test") { try $0.execute(sql, arguments) } }
            #expect("\(error.map { "\($0)" } ?? "")".contains("a write in a read transaction"), "\(String(describing: error))")
            #expect(throws: (any Error).self) { try store.read("test") { _ = try $0.rows(sql + " RETURNING name", arguments) } }
        }
        #expect(try store.objects().count == 1)
        // The same read, twice, from the connection's kept statement.
        #expect(try store.read("test") { try $0.rows("SELECT name FROM object WHERE kind = ?", [.text("Node")]).count } == 1)
        #expect(try store.read("test") { try $0.rows("SELECT name FROM object WHERE kind = ?", [.text("Node")]).count } == 1)
    }
}
