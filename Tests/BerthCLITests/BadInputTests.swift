import BerthTesting
import Foundation
import GRDB
import Testing

/// Every kind of bad input gets a clear error, a non-zero exit, and leaves the stored state exactly as it was.
@Suite("berth CLI bad input")
struct BadInputTests {
    let fleet = BerthProcess.root.appendingPathComponent("manifests/deepseek-r1-distill-7b/fleet.yaml").path

    /// A state with one revision, and its bytes.
    func seededState() throws -> (dir: String, state: String) {
        let dir = BerthProcess.temporaryFolder()
        let state = dir + "/berth.db"
        let r = try BerthProcess.run(["apply", "-f", fleet], state: state)
        #expect(r.code == 0)
        return (dir, state)
    }

    func expectUntouched(_ state: String, after body: () throws -> Void) rethrows {
        let before = FileManager.default.contents(atPath: state)
        try body()
        #expect(FileManager.default.contents(atPath: state) == before, "state file changed")
        #expect(!FileManager.default.fileExists(atPath: state + "-wal") || (try? Data(contentsOf: URL(fileURLWithPath: state + "-wal")))?.isEmpty == true)
    }

    @Test func manifestThatIsNotYAML() throws {
        let (dir, state) = try seededState()
        write("apiVersion: berth/v1\nkind: Node\n  metadata: : :\n\t- [", to: dir + "/bad.yaml")
        try expectUntouched(state) {
            let r = try BerthProcess.run(["apply", "-f", dir + "/bad.yaml"], state: state)
            #expect(r.code == 2)
            #expect(r.stderr.contains("bad.yaml:3:"))
            #expect(r.stderr.contains("not valid YAML or JSON"))
            #expect(r.stderr.contains("nothing was stored"))
        }
    }

    @Test func binaryManifest() throws {
        let (dir, state) = try seededState()
        try Data((0..<4096).map { UInt8($0 % 256) }).write(to: URL(fileURLWithPath: dir + "/weights.yaml"))
        try expectUntouched(state) {
            let r = try BerthProcess.run(["apply", "-f", dir + "/weights.yaml"], state: state)
            #expect(r.code == 2)
            #expect(r.stderr.contains("weights.yaml: file is binary"))
        }
    }

    @Test func hundredMegabyteManifest() throws {
        let (dir, state) = try seededState()
        let path = dir + "/huge.yaml"
        let line = Data(("# " + String(repeating: "x", count: 1021) + "\n").utf8)
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        let chunk = Data((0..<1024).flatMap { _ in line })
        for _ in 0..<100 { handle.write(chunk) }
        try handle.close()
        try expectUntouched(state) {
            let r = try BerthProcess.run(["apply", "-f", path], state: state)
            #expect(r.code == 2)
            #expect(r.stderr.contains("file is 100.0 MiB, over the 32 MiB limit"))
        }
    }

    @Test func namesWithSQLMetacharacters() throws {
        let (dir, state) = try seededState()
        write("""
            apiVersion: berth/v1
            kind: Deployment
            metadata: { name: "r1'; DROP TABLE revision; --" }
            spec: { model: r1-distill-qwen-7b, version: v1 }
            """, to: dir + "/evil.yaml")
        try expectUntouched(state) {
            let r = try BerthProcess.run(["apply", "-f", dir + "/evil.yaml"], state: state)
            #expect(r.code == 2)
            #expect(r.stderr.contains("evil.yaml:3:19: deployment/r1'; DROP TABLE revision; --: metadata.name: name \"r1'; DROP TABLE revision; --\" is not valid"))
            let get = try BerthProcess.run(["get", "deployment", "r1'; DROP TABLE revision; --"], state: state)
            #expect(get.code == 4)
        }
        #expect(try BerthProcess.run(["history"], state: state).stdout.contains("1   "))
    }

    @Test func invalidManifestMixedWithValidChanges_storesNothing() throws {
        let (dir, state) = try seededState()
        let text = try String(contentsOfFile: fleet, encoding: .utf8)
        write(text.replacingOccurrences(of: "replicas: 2", with: "replicas: 5")
                  .replacingOccurrences(of: "deployment: r1-7b-canary", with: "deployment: r1-7b-canry"), to: dir + "/mixed.yaml")
        try expectUntouched(state) {
            let r = try BerthProcess.run(["apply", "-f", dir + "/mixed.yaml"], state: state)
            #expect(r.code == 2)
            #expect(r.stderr.contains("gateway/chat: spec.routes[1].deployment: deployment \"r1-7b-canry\" does not exist"))
            #expect(r.stderr.contains("mixed.yaml:"))
        }
    }

    @Test func stateThatIsNotADatabase() throws {
        let dir = BerthProcess.temporaryFolder()
        let state = dir + "/berth.db"
        write("this is my shopping list\n", to: state)
        try expectUntouched(state) {
            for args in [["apply", "-f", fleet], ["get", "all"], ["history"]] {
                let r = try BerthProcess.run(args, state: state)
                #expect(r.code == 3, "\(args)")
                #expect(r.stderr.contains("not a SQLite database"), "\(r.stderr)")
            }
        }
    }

    @Test func corruptDatabase() throws {
        let (_, state) = try seededState()
        // Overwrite the middle of the file: the header stays valid, the pages do not.
        var data = try Data(contentsOf: URL(fileURLWithPath: state))
        let start = 4096
        data.replaceSubrange(start..<min(data.count, start + 8192), with: Data(repeating: 0xA5, count: min(data.count - start, 8192)))
        try data.write(to: URL(fileURLWithPath: state))
        try expectUntouched(state) {
            let r = try BerthProcess.run(["apply", "-f", fleet], state: state)
            #expect(r.code == 3, "\(r.stdout)\(r.stderr)")
            #expect(r.stderr.contains("SQLite error"))
        }
    }

    @Test func databaseFromNewerSchema() throws {
        let (_, state) = try seededState()
        let queue = try DatabaseQueue(path: state)
        try queue.write { try $0.execute(sql: "INSERT INTO grdb_migrations VALUES ('v7-future-feature')") }
        try queue.close()
        try expectUntouched(state) {
            let r = try BerthProcess.run(["apply", "-f", fleet], state: state)
            #expect(r.code == 3)
            #expect(r.stderr.contains("was written by a newer Berth"))
            #expect(r.stderr.contains("upgrade berth"))
        }
    }

    @Test func readOnlyStateFolder() throws {
        let (dir, state) = try seededState()
        let text = try String(contentsOfFile: fleet, encoding: .utf8)
        write(text.replacingOccurrences(of: "replicas: 2", with: "replicas: 5"), to: dir + "/../changed-\(UUID().uuidString).yaml")
        let changed = (dir as NSString).deletingLastPathComponent + "/" + ((try FileManager.default.contentsOfDirectory(atPath: (dir as NSString).deletingLastPathComponent)).first { $0.hasPrefix("changed-") }!)
        try Immutable.set(true, [state, dir])
        defer { try? Immutable.set(false, [state, dir]) }
        try expectUntouched(state) {
            let r = try BerthProcess.run(["apply", "-f", changed], state: state)
            #expect(r.code == 3, "\(r.stdout)\(r.stderr)")
            #expect(r.stderr.contains("cannot write the state") || r.stderr.contains("not writable"), "\(r.stderr)")
        }
        try Immutable.set(false, [state, dir])
        #expect(try BerthProcess.run(["get", "deployment", "r1-7b", "-o", "yaml"], state: state).stdout.contains("replicas: 2"))
    }
}

/// Makes paths unwritable even for root (immutable attribute), or by mode for other users.
enum Immutable {
    static func set(_ on: Bool, _ paths: [String]) throws {
        for p in paths {
            if getuid() == 0 {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/chattr")
                process.arguments = [on ? "+i" : "-i", p]
                try process.run()
                process.waitUntilExit()
                guard process.terminationStatus == 0 else {
                    throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: p, NSLocalizedDescriptionKey: "chattr \(on ? "+i" : "-i") \(p) failed (a filesystem without immutable files?)"])
                }
            } else {
                chmod(p, on ? 0o555 : 0o755)
            }
        }
    }
}

extension BadInputTests {
    /// A PostgreSQL URL with a password written in it, or naming a server that is not there: a
    /// clear refusal that never repeats the password, and nothing made on disk.
    @Test(arguments: [["get", "nodes"], ["apply", "-f"], ["history"], ["status"]])
    func aPostgresURL_isRefusedClearly_neverEchoingAPassword(verb: [String]) throws {
        let dir = BerthProcess.temporaryFolder()
        let arguments = verb == ["apply", "-f"] ? verb + [fleet] : verb
        for url in ["postgres://berth:hunter2-secret@db.internal:5432/fleet", "postgres://berth@db.internal/fleet"] {
            let r = try BerthProcess.run(arguments, state: url, cwd: dir)
            #expect(r.code == 3, "\(verb): \(r.stderr)")
            #expect(!r.stderr.contains("hunter2-secret") && !r.stdout.contains("hunter2-secret"))
            #expect(r.stderr.contains(url.contains("hunter2") ? "password written in it" : "cannot connect"), "\(r.stderr)")
        }
        #expect((try? FileManager.default.contentsOfDirectory(atPath: dir))?.isEmpty == true, "nothing made on disk")
    }

    @Test func theControllersPrintConfig_neverShowsAPasswordInTheStateURL() throws {
        let r = try BerthProcess.run(["controller", "--print-config", "--config", "none"], state: "postgres://berth:hunter2-secret@db/fleet")
        #expect(r.code != 0 && r.stderr.contains("postgres://berth:***@db/fleet"), "\(r.stderr)")
        #expect(!r.stderr.contains("hunter2-secret") && !r.stdout.contains("hunter2-secret"))
    }
}
