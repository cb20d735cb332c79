import BerthTesting
import Foundation
import Testing

/// Model files staged by the controller from a real file server onto the local cluster's nodes:
/// where replicas run, on the standby, kept versions; a corrupted source; a controller killed
/// mid-download; purges of versions no longer kept.
extension LocalClusterEndToEnd.ControllerEndToEndTests {
    static let stagingPort = 18_791

    /// The example fleet plus staged versions of the stand-in (each `name: (path, sha256, size)`
    /// served by `server`, under `prefix`), `chat` on `chat`, keeping `keep` versions.
    func stagedFleet(_ server: FileServer, _ versions: [(name: String, sha: String, size: Int)], chat: String, keep: Int = 3, prefix: String = "") -> String {
        stagedFleet(source: "{ url: \"\(server.url)\(prefix)\" }", versions, chat: chat, keep: keep)
    }

    /// The same with any `source` (YAML flow mapping).
    func stagedFleet(source: String, _ versions: [(name: String, sha: String, size: Int)], chat: String, keep: Int = 3) -> String {
        stagedFleet(source: source, versions.map { ($0.name, [("standin/\($0.name)/weights.bin", $0.sha, $0.size)]) }, chat: chat, keep: keep)
    }

    /// The same with any files per version (`path` under the model root).
    func stagedFleet(source: String, _ versions: [(name: String, files: [(path: String, sha: String, size: Int)])], chat: String, keep: Int = 3) -> String {
        let entries = versions.map { v in
            """
                - version: \(v.name)
                  image: \(LocalCluster.registry)/berth/standin:v2
                  parameters: 1.5B
                  precision: bf16
                  source: \(source)
                  artifacts:

            """ + v.files.map { "        - { path: \($0.path), sha256: \($0.sha), sizeBytes: \($0.size) }\n" }.joined() + "\n"
        }.joined()
        return fleet {
            Self.chatVersion(chat)($0)
                .replacingOccurrences(of: "  keepVersions: 3\n", with: "  keepVersions: \(keep)\n")
                .replacingOccurrences(of: "      precision: bf16\n---\napiVersion: berth/v1\nkind: Deployment\nmetadata: { name: chat }",
                                      with: "      precision: bf16\n" + entries + "---\napiVersion: berth/v1\nkind: Deployment\nmetadata: { name: chat }")
        }
    }

    func stagedFile(_ node: Int, _ version: String) -> String { LocalCluster.modelRoot(node) + "/standin/\(version)/weights.bin" }

    /// Leaves no staged file of the stand-in on any node.
    func clearStaged() {
        for n in 1...3 { try? FileManager.default.removeItem(atPath: LocalCluster.modelRoot(n) + "/standin") }
    }

    func stagingRows() -> String {
        (try? Spawn.run(["/usr/bin/sqlite3", state, "SELECT node, version, state, bytesDone, bytesTotal, bytesFetched FROM staging ORDER BY node, version"]).1) ?? ""
    }

    /// The version of each running `chat` replica (not `chat-canary`'s).
    func chatVersions() -> [String] {
        ((try? LocalCluster.running()) ?? []).compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count == 3, fields[0].hasPrefix("berth-chat-"), fields[0].dropFirst("berth-chat-".count).first?.isNumber == true else { return nil }
            return String(fields[2])
        }
    }

    @Test func stagesWhereReplicasRunAndOnTheStandby_thenPurgesAVersionNoLongerKept() throws {
        try LocalCluster.removeBerthContainers()
        clearStaged()
        let server = try FileServer(root: dir + "/weights", port: Self.stagingPort)
        defer { server.stop(); cleanUp(); clearStaged() }
        let size = 8 << 20
        let s1 = try server.generate("standin/s1/weights.bin", size: size, seed: 1)
        let s2 = try server.generate("standin/s2/weights.bin", size: size, seed: 2)

        let controller = try startController(on: fleet())
        defer { controller.stop() }
        // chat moves to s1: its replicas wait for their files, then roll.
        let rolled = try apply(stagedFleet(server, [("s1", s1, size)], chat: "s1"), timeout: 120)
        #expect(rolled.code == 0, "\(rolled.stderr)\n\(controller.text.suffix(3000))")
        let chatNodes = try (1...2).filter { !(try LocalCluster.docker($0, ["ps", "-q", "--filter", "label=io.berth.deployment=chat"])).isEmpty }
        #expect(!chatNodes.isEmpty)
        for n in chatNodes {
            #expect(try FileServer.sha256(of: stagedFile(n, "s1")) == s1, "node-\(n) serves s1 and holds its file")
        }
        // The standby holds what the fleet serves, so a promotion never downloads.
        let onStandby = waitUntil(30) { (try? FileServer.sha256(of: stagedFile(3, "s1"))) == s1 }
        #expect(onStandby != nil, "node-3 (standby) holds s1: \(stagingRows())")
        // Replicas see the model root read-only at /models.
        let id = try LocalCluster.docker(chatNodes[0], ["ps", "-q", "--filter", "label=io.berth.deployment=chat"]).split(separator: "\n")[0]
        let mounts = try LocalCluster.docker(chatNodes[0], ["inspect", "--format", "{{range .Mounts}}{{.Source}}:{{.Destination}}:{{.RW}} {{end}}", String(id)])
        #expect(mounts.contains("\(LocalCluster.modelRoot(chatNodes[0])):/models:false"), "\(mounts)")
        let status = try BerthProcess.run(["model", "status", "standin"], state: state)
        #expect(status.code == 0, "\(status.stdout)\(status.stderr)")
        #expect(status.stdout.contains("node-3") && status.stdout.contains("standby"), "\(status.stdout)")
        #expect(controller.text.contains("ArtifactsStaged"), "\(controller.text.suffix(2000))")

        // s2 replaces s1 with one version kept (and v2, which the canary runs): s1 is purged from every node.
        let moved = try apply(stagedFleet(server, [("s1", s1, size), ("s2", s2, size)], chat: "s2", keep: 1), timeout: 120)
        #expect(moved.code == 0, "\(moved.stderr)\n\(controller.text.suffix(3000))")
        let purged = waitUntil(60) { (1...3).allSatisfy { !FileManager.default.fileExists(atPath: stagedFile($0, "s1")) } }
        #expect(purged != nil, "s1 purged everywhere: \(stagingRows())\n\(controller.text.suffix(2000))")
        for n in chatNodes { #expect(FileManager.default.fileExists(atPath: stagedFile(n, "s2")), "s2 stays where it serves") }
        #expect(controller.text.contains("ArtifactsPurgedFromNode"))
        let after = try BerthProcess.run(["model", "status", "standin", "-o", "json"], state: state).stdout
        #expect(after.contains("\"purged\""), "\(after)")
    }

    @Test func aMultiGiBWeightsFolder_reachesWhereItServesAndTheStandby_everyByteChecked() throws {
        try LocalCluster.removeBerthContainers()
        clearStaged()
        let server = try FileServer(root: dir + "/weights", port: Self.stagingPort)
        defer { server.stop(); cleanUp(); clearStaged(); try? FileManager.default.removeItem(atPath: dir + "/weights") }
        // 4 shards of 512 MiB (2 GiB), random bytes, as a real checkpoint's safetensors would be.
        let size = 512 << 20
        var files: [(path: String, sha: String, size: Int)] = []
        for i in 1...4 {
            let path = "standin/g1/model-0000\(i)-of-00004.safetensors"
            try FileManager.default.createDirectory(atPath: server.root + "/standin/g1", withIntermediateDirectories: true)
            let (rc, _, err) = try Spawn.run(["/bin/sh", "-c", "head -c \(size) /dev/urandom > \"$0\"", server.root + "/" + path])
            #expect(rc == 0, "\(err)")
            files.append((path, try FileServer.sha256(of: server.root + "/" + path), size))
        }
        let controller = try startController(on: fleet())
        defer { controller.stop() }
        let rolled = try apply(stagedFleet(source: "{ url: \"\(server.url)\" }", [("g1", files)], chat: "g1"), timeout: 300)
        #expect(rolled.code == 0, "\(rolled.stderr)\n\(stagingRows())\n\(controller.text.suffix(3000))")
        #expect(chatVersions() == ["g1", "g1"], "\(chatVersions())")
        let everywhere = waitUntil(180) { stagingRows().components(separatedBy: "|g1|staged|").count == 4 }
        #expect(everywhere != nil, "the two serving nodes and the standby hold g1: \(stagingRows())")
        for n in 1...3 {
            for f in files {
                #expect(try FileServer.sha256(of: LocalCluster.modelRoot(n) + "/" + f.path) == f.sha, "node-\(n): \(f.path)")
            }
            #expect(!FileManager.default.fileExists(atPath: LocalCluster.modelRoot(n) + "/" + files[0].path + ".berth-partial"))
        }
        #expect(stagingRows().contains("|g1|staged|\(4 * size)|\(4 * size)|\(4 * size)"), "every byte fetched once: \(stagingRows())")
    }

    @Test func aCorruptedSourceFileHoldsTheRollout_v1KeepsServing_andARepairedSourceRollsOn() throws {
        try LocalCluster.removeBerthContainers()
        clearStaged()
        let server = try FileServer(root: dir + "/weights", port: Self.stagingPort)
        defer { server.stop(); cleanUp(); clearStaged() }
        let size = 4 << 20
        let good = try server.generate("standin/s1/weights.bin", size: size, seed: 11)
        let bad = try server.generate("standin/s1/weights.bin", size: size, seed: 12)

        let controller = try startController(on: fleet())
        defer { controller.stop() }
        let held = try apply(stagedFleet(server, [("s1", good, size)], chat: "s1"), timeout: 15)
        #expect(held.code == 1, "the rollout does not finish: \(held.stdout)")
        #expect(chatVersions() == ["v1", "v1"], "v1 keeps serving: \(chatVersions())")
        for n in 1...3 { #expect(!FileManager.default.fileExists(atPath: stagedFile(n, "s1")), "a file that differs is never put in place") }
        let status = try BerthProcess.run(["model", "status", "standin"], state: state)
        #expect(status.code == 1 && status.stdout.contains("failed") && status.stdout.contains("fetched file \(bad)"), "\(status.stdout)")
        #expect(controller.text.contains("ArtifactStagingFailed"))

        // The source is repaired: the next attempt (15 s backoff) stages it and the rollout finishes.
        _ = try server.generate("standin/s1/weights.bin", size: size, seed: 11)
        let rolled = waitUntil(90) { chatVersions() == ["s1", "s1"] }
        #expect(rolled != nil, "\(stagingRows())\n\(controller.text.suffix(3000))")
    }

    @Test func aControllerKilledMidDownload_itsSuccessorResumes_fetchingOnlyTheRest() throws {
        try LocalCluster.removeBerthContainers()
        clearStaged()
        // 24 MiB at 2 MiB/s: about 12 s per node.
        let server = try FileServer(root: dir + "/weights", port: Self.stagingPort, slowRate: 2 << 20)
        defer { server.stop(); cleanUp(); clearStaged() }
        let size = 24 << 20
        let sha = try server.generate("standin/s1/weights.bin", size: size, seed: 21)
        // Only the standby needs s1 (kept: the fleet serves v1 and v2); the replicas stay as they are.
        let fleet = stagedFleet(server, [("s1", sha, size)], chat: "v1", prefix: "slow/")
        _ = try apply(fleet, wait: false)
        let first = try ControllerProcess(state: state, folder: dir, name: "first")
        let partial = stagedFile(3, "s1") + ".berth-partial"
        let begun = waitUntil(60) { ((try? FileManager.default.attributesOfItem(atPath: partial))?[.size] as? Int ?? 0) > 4 << 20 }
        #expect(begun != nil, "\(stagingRows())\n\(first.text.suffix(2000))")
        first.crash()
        let second = try ControllerProcess(state: state, folder: dir, name: "second")
        defer { second.stop() }
        let staged = waitUntil(90) { (try? FileServer.sha256(of: stagedFile(3, "s1"))) == sha }
        #expect(staged != nil, "\(stagingRows())\n\(second.text.suffix(3000))")
        // The successor's stager fetched less than the whole file: it resumed the partial one.
        let recorded = waitUntil(15) { stagingRows().contains("node-3|s1|staged|") }
        #expect(recorded != nil, "\(stagingRows())")
        let row = stagingRows().split(separator: "\n").first { $0.hasPrefix("node-3|s1|staged|") }.map { $0.split(separator: "|").map(String.init) }
        let fetched = Int(row?[5] ?? "") ?? -1
        #expect(fetched >= 0 && fetched < size, "node-3 fetched \(fetched) of \(size) bytes after the restart: \(stagingRows())")
        #expect(!FileManager.default.fileExists(atPath: partial))
    }
}

extension LocalClusterEndToEnd.ControllerEndToEndTests {
    @Test func afterACrash_thePromotedStandbyServesFromFilesStagedBefore() throws {
        try LocalCluster.removeBerthContainers()
        clearStaged()
        let server = try FileServer(root: dir + "/weights", port: Self.stagingPort)
        defer {
            try? cluster("heal", "node-2")
            server.stop(); cleanUp(); clearStaged()
        }
        let size = 8 << 20
        let s1 = try server.generate("standin/s1/weights.bin", size: size, seed: 31)
        let fleet = stagedFleet(server, [("s1", s1, size)], chat: "s1")
        let controller = try startController(on: fleet, arguments: ["--node-check-interval", "1"])
        defer { controller.stop() }
        let onStandby = waitUntil(30) { (try? FileServer.sha256(of: stagedFile(3, "s1"))) == s1 }
        #expect(onStandby != nil, "node-3 (standby) holds s1: \(stagingRows())")
        #expect(replicas().contains("node-2"), "\(replicas())")
        let stagedAt = try FileManager.default.attributesOfItem(atPath: stagedFile(3, "s1"))[.modificationDate] as? Date

        try cluster("partition", "node-2")
        let back = waitUntil(60) { chatReady(avoiding: "node-2") }
        #expect(back != nil, "\(replicas())\n\(controller.text.suffix(2000))")
        #expect(controller.text.contains("PromotionSucceeded"), "\(controller.text.suffix(2000))")
        #expect(!controller.text.contains("missing at"), "the promotion waited for no file")
        let now = try FileManager.default.attributesOfItem(atPath: stagedFile(3, "s1"))[.modificationDate] as? Date
        #expect(stagedAt != nil && now == stagedAt, "node-3's file was not fetched again")
    }
}

extension LocalClusterEndToEnd.ControllerEndToEndTests {
    @Test func aVersionCopiedFromANode_reachesWhereItServesAndTheStandby_andTheServerGoes() throws {
        try LocalCluster.removeBerthContainers()
        clearStaged()
        defer { cleanUp(); clearStaged() }
        // p1's file is on node-1 only, put there by hand; no file server anywhere.
        let size = 8 << 20
        let sha = try FileServer.write(stagedFile(1, "p1"), size: size, seed: 41)
        let placed = try FileManager.default.attributesOfItem(atPath: stagedFile(1, "p1"))[.modificationDate] as? Date
        let controller = try startController(on: fleet())
        defer { controller.stop() }
        let rolled = try apply(stagedFleet(source: "{ node: node-1 }", [("p1", sha, size)], chat: "p1"), timeout: 120)
        #expect(rolled.code == 0, "\(rolled.stderr)\n\(stagingRows())\n\(controller.text.suffix(3000))")
        #expect(chatVersions() == ["p1", "p1"], "\(chatVersions())")
        for n in 2...3 {
            let copied = waitUntil(30) { (try? FileServer.sha256(of: stagedFile(n, "p1"))) == sha }
            #expect(copied != nil, "node-\(n) holds a copy of node-1's p1: \(stagingRows())")
        }
        // node-1 itself was checked in place, not fetched again.
        #expect(stagingRows().contains("node-1|p1|staged|"), "\(stagingRows())")
        let now = try FileManager.default.attributesOfItem(atPath: stagedFile(1, "p1"))[.modificationDate] as? Date
        #expect(placed != nil && now == placed, "node-1's file was not rewritten")
        // The file servers lived only as long as the copies.
        let servers = waitUntil(15) { (1...3).allSatisfy { ((try? LocalCluster.docker($0, ["ps", "-aq", "--filter", "label=io.berth.task=serve"])) ?? "x").isEmpty } }
        #expect(servers != nil, "no file server left running")
        let status = try BerthProcess.run(["model", "status", "standin"], state: state)
        #expect(status.stdout.contains("p1") && !status.stdout.contains("failed"), "\(status.stdout)")
    }

    @Test func copiesFromANodeFanOut_aNodeThatHoldsTheVersionServesTheNextCopy() throws {
        try LocalCluster.removeBerthContainers()
        clearStaged()
        defer { cleanUp(); clearStaged() }
        let size = 8 << 20
        let sha = try FileServer.write(stagedFile(1, "p3"), size: size, seed: 43)
        // One copy at a time from any node: node-2 copies from node-1 first; node-3 waits, then
        // copies from node-2, which holds it by then, rather than from the origin.
        let controller = try startController(on: fleet(), arguments: ["--copies-per-source", "1"])
        defer { controller.stop() }
        let rolled = try apply(stagedFleet(source: "{ node: node-1 }", [("p3", sha, size)], chat: "p3"), timeout: 120)
        #expect(rolled.code == 0, "\(rolled.stderr)\n\(stagingRows())\n\(controller.text.suffix(3000))")
        let details = { (try? Spawn.run(["/usr/bin/sqlite3", self.state, "SELECT node || ' ' || detail FROM staging WHERE version = 'p3' ORDER BY node"]).1) ?? "" }
        let copied = waitUntil(60) { details().components(separatedBy: "staged in").count == 4 }
        #expect(copied != nil, "every node holds p3: \(details())")
        #expect((2...3).allSatisfy { (try? FileServer.sha256(of: stagedFile($0, "p3"))) == sha })
        let rows = details()
        let row = { (n: Int) in rows.split(separator: "\n").first { $0.hasPrefix("node-\(n) staged in") }.map(String.init) ?? "" }
        #expect(row(1).hasSuffix("MiB fetched"), "node-1 checks its own files in place: \(rows)")
        #expect(row(2).hasSuffix("fetched from node node-1"), "\(rows)")
        #expect(row(3).hasSuffix("fetched from node node-2"), "\(rows)")
    }

    @Test func aCopyFromAHolderWhoseFileWentBad_failsThere_andTheRetryReadsTheOrigin() throws {
        try LocalCluster.removeBerthContainers()
        clearStaged()
        defer { cleanUp(); clearStaged() }
        let size = 4 << 20
        let sha = try FileServer.write(stagedFile(1, "p4"), size: size, seed: 44)
        // chat moves to p4 (on node-1 and node-2; node-3 backs them). node-2 gets it by hand
        // first, then a byte of its copy rots; its staging row still says staged.
        let path = fleet()
        _ = try apply(path, wait: false)
        let moved = stagedFleet(source: "{ node: node-1 }", [("p4", sha, size)], chat: "p4")
        _ = try apply(moved, wait: false)
        let staged = try BerthProcess.run(["model", "stage", "standin@p4", "--node", "node-2"], state: state)
        #expect(staged.code == 0, "\(staged.stderr)")
        let handle = try #require(FileHandle(forUpdatingAtPath: stagedFile(2, "p4")))
        try handle.seek(toOffset: 1000)
        let byte = try #require(try handle.read(upToCount: 1)?.first)
        try handle.seek(toOffset: 1000)
        try handle.write(contentsOf: Data([byte ^ 0xFF]))
        try handle.close()
        let controller = try startController(on: moved, arguments: ["--copies-per-source", "1"])
        defer { controller.stop() }
        // node-3 reads node-2 first (a holder before the origin), finds the hash wrong, and its
        // retry (15 s later) reads node-1.
        let details = { (try? Spawn.run(["/usr/bin/sqlite3", self.state, "SELECT node || ' ' || state || ' ' || detail FROM staging WHERE version = 'p4' AND node = 'node-3'"]).1) ?? "" }
        let failed = waitUntil(30) { details().contains("failed") }
        #expect(failed != nil && details().contains("sha256 mismatch"), "\(details())\n\(stagingRows())\n\(controller.text.suffix(3000))")
        let copied = waitUntil(45) { details().contains("staged in") }
        #expect(copied != nil && details().hasSuffix("fetched from node node-1\n"), "\(details())")
        #expect((try? FileServer.sha256(of: stagedFile(3, "p4"))) == sha)
    }

    @Test func aCopyFromANodeThatLacksTheFile_failsSayingSo_andNothingIsPutInPlace() throws {
        try LocalCluster.removeBerthContainers()
        clearStaged()
        defer { cleanUp(); clearStaged() }
        let size = 1 << 20
        let sha = String(repeating: "ab", count: 32)
        let controller = try startController(on: fleet())
        defer { controller.stop() }
        let held = try apply(stagedFleet(source: "{ node: node-3 }", [("p2", sha, size)], chat: "p2"), timeout: 15)
        #expect(held.code == 1, "the rollout does not finish: \(held.stdout)")
        #expect(chatVersions() == ["v1", "v1"], "v1 keeps serving: \(chatVersions())")
        let status = try BerthProcess.run(["model", "status", "standin"], state: state)
        #expect(status.stdout.contains("copying from node node-3"), "\(status.stdout)\n\(stagingRows())")
        for n in 1...3 { #expect(!FileManager.default.fileExists(atPath: stagedFile(n, "p2"))) }
    }
}

extension LocalClusterEndToEnd.ControllerEndToEndTests {
    @Test func aVersionRemovedFromTheManifest_isPurgedOnceNothingRunsIt_pathsFromItsStoredRevision() throws {
        try LocalCluster.removeBerthContainers()
        clearStaged()
        let server = try FileServer(root: dir + "/weights", port: Self.stagingPort)
        defer { server.stop(); cleanUp(); clearStaged() }
        let size = 4 << 20
        let s1 = try server.generate("standin/s1/weights.bin", size: size, seed: 51)
        let s2 = try server.generate("standin/s2/weights.bin", size: size, seed: 52)
        let controller = try startController(on: fleet())
        defer { controller.stop() }
        let first = try apply(stagedFleet(server, [("s1", s1, size)], chat: "s1"), timeout: 120)
        #expect(first.code == 0, "\(first.stderr)\n\(controller.text.suffix(3000))")
        let everywhere = waitUntil(30) { (1...3).allSatisfy { FileManager.default.fileExists(atPath: stagedFile($0, "s1")) } }
        #expect(everywhere != nil, "\(stagingRows())")
        // s1 leaves the manifest in the same apply that moves chat to s2: its replicas serve
        // until s2's are ready, and only then are its files purged.
        let moved = try apply(stagedFleet(server, [("s2", s2, size)], chat: "s2"), timeout: 120)
        #expect(moved.code == 0, "\(moved.stderr)\n\(controller.text.suffix(3000))")
        #expect(chatVersions() == ["s2", "s2"], "\(chatVersions())")
        let purged = waitUntil(60) { (1...3).allSatisfy { !FileManager.default.fileExists(atPath: stagedFile($0, "s1")) } }
        #expect(purged != nil, "s1 purged everywhere: \(stagingRows())\n\(controller.text.suffix(2000))")
        #expect(controller.text.contains("removed from the manifest; paths from its last stored revision"), "\(controller.text.suffix(2000))")
        for n in 1...3 { #expect(FileManager.default.fileExists(atPath: stagedFile(n, "s2")), "s2 stays on node-\(n)") }
        #expect(stagingRows().contains("node-3|s1|purged|"), "\(stagingRows())")
    }
}

extension LocalClusterEndToEnd.ControllerEndToEndTests {
    @Test func aControllerKilledMidPurge_leavesNoRowClaimingFilesItOverwrote_andItsSuccessorFinishes() throws {
        try LocalCluster.removeBerthContainers()
        clearStaged()
        let server = try FileServer(root: dir + "/weights", port: Self.stagingPort)
        defer { server.stop(); cleanUp(); clearStaged() }
        // Big enough that three overwrite passes take a moment.
        let size = 96 << 20
        let s1 = try server.generate("standin/s1/weights.bin", size: size, seed: 61)
        let s2 = try server.generate("standin/s2/weights.bin", size: 1 << 20, seed: 62)
        _ = try apply(stagedFleet(server, [("s1", s1, size)], chat: "s1"), wait: false)
        let first = try ControllerProcess(state: state, folder: dir, name: "first")
        let staged = waitUntil(120) { stagingRows().components(separatedBy: "|s1|staged|").count == 4 }
        #expect(staged != nil, "s1 staged on all three nodes: \(stagingRows())\n\(first.text.suffix(2000))")

        // s1 is dropped (one version kept, chat on s2): the purges start; the controller is
        // killed the moment one is seen running.
        _ = try apply(stagedFleet(server, [("s1", s1, size), ("s2", s2, 1 << 20)], chat: "s2", keep: 1), wait: false)
        let purging = waitUntil(90) {
            (1...3).contains { !((try? LocalCluster.docker($0, ["ps", "-q", "--filter", "label=io.berth.task=purge"])) ?? "").isEmpty }
        }
        first.crash()
        #expect(purging != nil, "a purge was seen running: \(stagingRows())\n\(first.text.suffix(2000))")
        // Let the orphaned purge containers finish on their own.
        _ = waitUntil(30) { (1...3).allSatisfy { ((try? LocalCluster.docker($0, ["ps", "-q", "--filter", "label=io.berth.task=purge"])) ?? "x").isEmpty } }
        // No row says staged about a file that is not whole.
        for n in 1...3 where stagingRows().contains("node-\(n)|s1|staged|") {
            #expect((try? FileServer.sha256(of: stagedFile(n, "s1"))) == s1, "node-\(n)'s row claims s1, its file must be whole: \(stagingRows())")
        }
        // The successor finishes the purges.
        let second = try ControllerProcess(state: state, folder: dir, name: "second")
        defer { second.stop() }
        let done = waitUntil(90) { stagingRows().components(separatedBy: "|s1|purged|").count == 4 }
        #expect(done != nil, "\(stagingRows())\n\(second.text.suffix(2000))")
        for n in 1...3 { #expect(!FileManager.default.fileExists(atPath: stagedFile(n, "s1"))) }
    }
}
