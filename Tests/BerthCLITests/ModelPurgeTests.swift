import BerthModel
import BerthStore
import Foundation
import Testing

@Suite("berth model purge")
struct ModelPurgeTests {
    @Test func purge_overwritesThenRemoves_refusesDeployedAndKeptVersions_andRecordsWhoDidIt() throws {
        let dir = BerthProcess.temporaryFolder()
        let state = dir + "/berth.db"
        let data = Data((0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        for name in ["old", "mid", "v1", "v2"] { try data.write(to: URL(fileURLWithPath: "\(dir)/\(name).bin")) }
        // A second name for the old file's bytes: what is left of them after the purge shows the overwrite.
        #expect(link("\(dir)/old.bin", "\(dir)/old.link") == 0)
        let sha = String(repeating: "ab", count: 32)
        func version(_ v: String, pinned: Bool = false) -> String {
            "    - { version: \(v), image: \"r:5000/m:\(v)\", parameters: 1.5B, precision: bf16\(pinned ? ", pinned: true" : ""), artifacts: [{ path: \(dir)/\(v).bin, sha256: \(sha) }] }\n"
        }
        write(purgeFleet(versions: version("old") + version("mid", pinned: true) + version("v1") + version("v2"), deployed: "v1"), to: dir + "/fleet.yaml")
        let applied = try BerthProcess.run(["apply", "-f", dir + "/fleet.yaml"], state: state)
        #expect(applied.code == 0, "\(applied.stderr)")

        let purged = try BerthProcess.run(["model", "purge", "m@old", "--author", "dpo"], state: state)
        #expect(purged.code == 0 && purged.stdout.contains("purged    \(dir)/old.bin (1000000 bytes, 3 passes)"), "\(purged.stdout)\(purged.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/old.bin"))
        let left = try Data(contentsOf: URL(fileURLWithPath: dir + "/old.link"))
        #expect(left.count == data.count && left.allSatisfy { $0 == 0 }, "the bytes were overwritten before the name went")
        let events = try StateStore.open(path: state, create: false).events(kind: "model", name: "m")
        #expect(events.first?.reason == "ArtifactsPurged" && events.first?.message.contains("1 file(s), 1000000 bytes overwritten 3 times and removed by dpo") == true,
                "\(events.map(\.message))")

        let deployed = try BerthProcess.run(["model", "purge", "m@v1"], state: state)
        #expect(deployed.code == 5 && deployed.stderr.contains("m@v1 is deployed (deployment/chat)"), "\(deployed.stderr)")
        let pinned = try BerthProcess.run(["model", "purge", "m@mid"], state: state)
        #expect(pinned.code == 5 && pinned.stderr.contains("it is pinned"), "\(pinned.stderr)")
        let newest = try BerthProcess.run(["model", "purge", "m@v2"], state: state)
        #expect(newest.code == 5 && newest.stderr.contains("among the 1 newest versions kept"), "\(newest.stderr)")
        for name in ["mid", "v1", "v2"] { #expect(FileManager.default.fileExists(atPath: "\(dir)/\(name).bin"), "\(name) untouched") }
        // The model's page shows each version's standing and the purge among its events.
        let described = try BerthProcess.run(["describe", "model", "m"], state: state).stdout
        for line in ["old  ", "collectable", "pinned", "deployed", "ArtifactsPurged", "removed by dpo"] {
            #expect(described.contains(line), "\(line): \(described)")
        }
    }
}

@Suite("berth model purge: shared files")
struct ModelPurgeSharedFileTests {
    /// v1 and v2 name the same bytes (one path, a symbolic link, a hard link); v2 is deployed.
    @Test(arguments: ["same path", "symbolic link", "hard link"])
    func purge_whenAnotherVersionThatMustStayHasTheSameFile_refusesAndTouchesNothing(_ how: String) throws {
        let dir = BerthProcess.temporaryFolder()
        let state = dir + "/berth.db"
        let data = Data((0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        try data.write(to: URL(fileURLWithPath: "\(dir)/weights.bin"))
        var v1Path = "\(dir)/weights.bin"
        if how == "symbolic link" { v1Path = "\(dir)/v1.bin"; try FileManager.default.createSymbolicLink(atPath: v1Path, withDestinationPath: "\(dir)/weights.bin") }
        if how == "hard link" { v1Path = "\(dir)/v1.bin"; #expect(link("\(dir)/weights.bin", v1Path) == 0) }
        let sha = String(repeating: "ab", count: 32)
        write(purgeFleet(versions: """
                - { version: v1, image: "r:5000/m:v1", parameters: 1.5B, precision: bf16, artifacts: [{ path: \(v1Path), sha256: \(sha) }] }
                - { version: v2, image: "r:5000/m:v2", parameters: 1.5B, precision: bf16, artifacts: [{ path: \(dir)/weights.bin, sha256: \(sha) }] }

            """, deployed: "v2"), to: dir + "/fleet.yaml")
        #expect(try BerthProcess.run(["apply", "-f", dir + "/fleet.yaml"], state: state).code == 0)
        let purged = try BerthProcess.run(["model", "purge", "m@v1"], state: state)
        #expect(purged.code == 5, "\(purged.stdout)\(purged.stderr)")
        #expect(purged.stderr.contains("is also \(dir)/weights.bin of m@v2 (deployed)") && purged.stderr.contains("nothing was purged"), "\(purged.stderr)")
        #expect(FileManager.default.contents(atPath: "\(dir)/weights.bin") == data, "v2's bytes are untouched")
    }

    @Test func purge_makesEarlierVerificationsOfThatVersionNoLongerCount() throws {
        let dir = BerthProcess.temporaryFolder()
        let state = dir + "/berth.db"
        try Data("w".utf8).write(to: URL(fileURLWithPath: "\(dir)/old.bin"))
        let sha = "50e721e49c013f00c62cf59f2163542a9d8df02464efeb615d31051b0fddc326"  // sha256("w")
        write("""
            apiVersion: berth/v1
            kind: Model
            metadata: { name: m }
            spec:
              keepVersions: 1
              versions:
                - { version: old, image: "r:5000/m:old", parameters: 1.5B, precision: bf16, artifacts: [{ path: \(dir)/old.bin, sha256: \(sha) }] }
                - { version: v2, image: "r:5000/m:v2", parameters: 1.5B, precision: bf16 }
            """, to: dir + "/fleet.yaml")
        #expect(try BerthProcess.run(["apply", "-f", dir + "/fleet.yaml"], state: state).code == 0)
        let verified = try BerthProcess.run(["model", "verify", "m@old"], state: state)
        #expect(verified.code == 0, "\(verified.stdout)\(verified.stderr)")
        #expect(try BerthProcess.run(["model", "purge", "m@old"], state: state).code == 0)
        let store = try StateStore.open(path: state, create: false)
        let model = try #require(try store.object(ObjectKey(.model, "m"))?.resource.model)
        let problems = try store.verificationProblems(model: "m", version: try #require(model.version("old")))
        #expect(problems.contains { $0.contains("purged") }, "\(problems)")
    }
}

/// One node, model `m` keeping one version with `versions` (lines of its version list), and
/// deployment `chat` on version `deployed`.
func purgeFleet(versions: String, deployed: String) -> String {
    """
    apiVersion: berth/v1
    kind: Node
    metadata: { name: n }
    spec: { address: 127.0.0.1, engine: { endpoint: "unix:///run/docker.sock" }, gpus: { count: 2, memoryGiB: 80 } }
    ---
    apiVersion: berth/v1
    kind: Model
    metadata: { name: m }
    spec:
      keepVersions: 1
      versions:

    """ + versions + """
    ---
    apiVersion: berth/v1
    kind: Deployment
    metadata: { name: chat }
    spec: { model: m, version: \(deployed), replicas: 1, gpusPerReplica: 1 }
    """
}
