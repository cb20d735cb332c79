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
        write("""
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

            """ + version("old") + version("mid", pinned: true) + version("v1") + version("v2") + """
            ---
            apiVersion: berth/v1
            kind: Deployment
            metadata: { name: chat }
            spec: { model: m, version: v1, replicas: 1, gpusPerReplica: 1 }
            """, to: dir + "/fleet.yaml")
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
