import BerthStore
import BerthTesting
import Foundation
import Testing

@Suite("berth state copy")
struct StateCopyTests {
    let fleet = BerthProcess.root.appendingPathComponent("manifests/deepseek-r1-distill-7b/fleet.yaml").path
    let dir = BerthProcess.temporaryFolder()

    /// A state with three revisions and a cordoned node.
    func source() throws -> String {
        let path = dir + "/source.db"
        #expect(try BerthProcess.run(["apply", "-f", fleet, "-m", "first"], state: path).code == 0)
        let text = try String(contentsOfFile: fleet, encoding: .utf8)
        write(text.replacingOccurrences(of: "replicas: 2", with: "replicas: 1"), to: dir + "/smaller.yaml")
        #expect(try BerthProcess.run(["apply", "-f", dir + "/smaller.yaml", "-m", "smaller"], state: path).code == 0)
        #expect(try BerthProcess.run(["apply", "-f", fleet, "-m", "back"], state: path).code == 0)
        #expect(try BerthProcess.run(["node", "cordon", "l40s-2"], state: path).code == 0)
        return path
    }

    @Test func aFileIsCopiedWhole_intoANewFile_andCheckedByCounts() throws {
        let from = try source()
        let to = dir + "/copy/berth.db"
        let r = try BerthProcess.run(["state", "copy", "--from", from, "--to", to])
        #expect(r.code == 0, "\(r.stderr)")
        #expect(r.stdout.contains("copied 3 revision") && r.stdout.contains("checked: each table holds as many rows"), "\(r.stdout)")
        for verb in [["history"], ["get", "nodes"], ["history", "diff", "1", "3"]] {
            #expect(try BerthProcess.run(verb, state: to).stdout == BerthProcess.run(verb, state: from).stdout, "\(verb)")
        }
        #expect(try BerthProcess.run(["apply", "-f", dir + "/smaller.yaml"], state: to).stdout.contains("revision 4 stored"))
    }

    @Test func anExistingTarget_aMissingSource_orTheSameStateTwice_areRefused_andNothingIsWritten() throws {
        let from = try source()
        let existing = dir + "/existing.db"
        #expect(try BerthProcess.run(["apply", "-f", fleet], state: existing).code == 0)
        let before = FileManager.default.contents(atPath: existing)
        let onto = try BerthProcess.run(["state", "copy", "--from", from, "--to", existing])
        #expect(onto.code == 3 && onto.stderr.contains("exists already"), "\(onto.stderr)")
        #expect(FileManager.default.contents(atPath: existing) == before)
        let missing = try BerthProcess.run(["state", "copy", "--from", dir + "/nope.db", "--to", dir + "/new.db"])
        #expect(missing.code == 4 && !FileManager.default.fileExists(atPath: dir + "/new.db"), "\(missing.stderr)")
        let same = try BerthProcess.run(["state", "copy", "--from", from, "--to", from])
        #expect(same.code == 64 && same.stderr.contains("same state"), "\(same.stderr)")
    }

    @Test func aStateWhoseLeaseIsHeld_isNotCopied() throws {
        let from = try source()
        var watch = LeaseWatch()
        _ = try StateStore.open(path: from, create: false).acquireLease(holder: "host-a:1:x", ttl: 60, watch: &watch)
        let r = try BerthProcess.run(["state", "copy", "--from", from, "--to", dir + "/copy.db"])
        #expect(r.code == 1 && r.stderr.contains("a controller holds the lease") && r.stderr.contains("host-a:1:x"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/copy.db"))
    }

    /// SQLite to PostgreSQL and back, through the CLI, the password by file.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["BERTH_INTEGRATION"] == "1", "needs PostgreSQL 15 (scripts/install-deps --cluster)"))
    func toPostgresAndBack() throws {
        let server = try PostgresServer.shared.get()
        let from = try source()
        let url = server.url(try server.createDatabase())
        let up = try BerthProcess.run(["state", "copy", "--from", from, "--to", url, "--to-password-file", server.passwordFile])
        #expect(up.code == 0, "\(up.stderr)")
        let env = ["BERTH_STATE_PASSWORD_FILE": server.passwordFile]
        #expect(try BerthProcess.run(["history"], state: url, environment: env).stdout == BerthProcess.run(["history"], state: from).stdout)
        let again = try BerthProcess.run(["state", "copy", "--from", from, "--to", url, "--to-password-file", server.passwordFile])
        #expect(again.code == 3 && again.stderr.contains("is not empty"), "\(again.stderr)")
        let down = try BerthProcess.run(["state", "copy", "--from", url, "--from-password-file", server.passwordFile, "--to", dir + "/back.db"])
        #expect(down.code == 0, "\(down.stderr)")
        #expect(try BerthProcess.run(["get", "nodes"], state: dir + "/back.db").stdout == BerthProcess.run(["get", "nodes"], state: from).stdout)
    }
}
