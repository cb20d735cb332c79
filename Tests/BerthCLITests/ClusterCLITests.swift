import BerthTesting
import Foundation
import Testing

/// CLI verbs that talk to the local cluster's engines and registry. One test at a time: several
/// verify on node-1 and one checks that no verifier container is left there, which another
/// test's verifier, still running, would be.
@Suite("berth CLI on the local cluster", .serialized, .enabled(if: ProcessInfo.processInfo.environment["BERTH_INTEGRATION"] == "1", "set BERTH_INTEGRATION=1 and run scripts/local-cluster up"))
struct ClusterCLITests {
    let nodes = BerthProcess.root.appendingPathComponent("state/local-cluster/nodes.yaml").path

    /// The example fleet; with `artifact`, v1 has it (and runs in `image`).
    func fleet(dir: String, artifact: (path: String, sha: String)? = nil, image: String = LocalCluster.imageV1, extraVersion: String? = nil) throws -> String {
        var text = try String(contentsOfFile: BerthProcess.root.appendingPathComponent("examples/local/fleet.yaml").path, encoding: .utf8)
        if let artifact {
            text = text.replacingOccurrences(of: "      image: \(LocalCluster.registry)/berth/standin:v1\n      parameters: 1.5B\n      precision: bf16\n",
                                             with: "      image: \(image)\n      parameters: 1.5B\n      precision: bf16\n      artifacts:\n        - { path: \(artifact.path), sha256: \(artifact.sha) }\n")
        }
        if let extraVersion {
            text = text.replacingOccurrences(of: "    - version: v2\n", with: "    - version: \(extraVersion)\n      image: \(LocalCluster.registry)/berth/standin:\(extraVersion)\n      parameters: 1.5B\n      precision: bf16\n    - version: v2\n")
        }
        let path = dir + "/fleet-\(UUID().uuidString.prefix(6)).yaml"
        write(text, to: path)
        return path
    }

    @Test func modelVerifyOnANode_hashesInAShortLivedContainer() throws {
        // The verifier runs in the version's image; other suites' controllers may have collected it.
        _ = try LocalCluster.docker(1, ["pull", "-q", LocalCluster.imageV1])
        let dir = BerthProcess.temporaryFolder()
        let state = dir + "/berth.db"
        let weights = dir + "/models/weights.bin"
        try FileManager.default.createDirectory(atPath: dir + "/models", withIntermediateDirectories: true)
        try Data((0..<2_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }).write(to: URL(fileURLWithPath: weights))
        let sha = try sha256(weights)
        let applied = try BerthProcess.run(["apply", "-f", nodes, "-f", try fleet(dir: dir, artifact: (weights, sha))], state: state)
        #expect(applied.code == 0, "\(applied.stderr)")
        let ok = try BerthProcess.run(["model", "verify", "standin@v1", "--node", "node-1"], state: state)
        #expect(ok.code == 0, "\(ok.stdout)\(ok.stderr)")
        #expect(ok.stdout.contains("ok        standin@v1 on node-1  \(weights)"))
        var data = try Data(contentsOf: URL(fileURLWithPath: weights))
        data[0] ^= 0xFF
        try data.write(to: URL(fileURLWithPath: weights))
        let bad = try BerthProcess.run(["model", "verify", "standin@v1", "--node", "node-1"], state: state)
        #expect(bad.code == 6)
        #expect(bad.stdout.contains("on node-1  \(weights): sha256 mismatch: manifest \(sha), file \(try sha256(weights))"))
        // The verifier containers are gone.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/docker")
        p.arguments = ["-H", LocalCluster.socket(1), "ps", "-aq", "--filter", "label=io.berth.task=verify"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let ids = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(ids.isEmpty)
    }

    @Test func modelVerifyOnANode_takesPathsAsArguments_soAQuoteInOneIsJustACharacter() throws {
        // The verifier runs in the version's image; other suites' controllers may have collected it.
        _ = try LocalCluster.docker(1, ["pull", "-q", LocalCluster.imageV1])
        let dir = BerthProcess.temporaryFolder()
        let state = dir + "/berth.db"
        let weights = dir + "/it's/weights.bin"
        try FileManager.default.createDirectory(atPath: dir + "/it's", withIntermediateDirectories: true)
        try Data((0..<1_000).map { UInt8(truncatingIfNeeded: $0) }).write(to: URL(fileURLWithPath: weights))
        let applied = try BerthProcess.run(["apply", "-f", nodes, "-f", try fleet(dir: dir, artifact: ("\"\(weights)\"", try sha256(weights)))], state: state)
        #expect(applied.code == 0, "\(applied.stderr)")
        let ok = try BerthProcess.run(["model", "verify", "standin@v1", "--node", "node-1"], state: state)
        #expect(ok.code == 0 && ok.stdout.contains("ok        standin@v1 on node-1  \(weights)"), "\(ok.stdout)\(ok.stderr)")
    }

    /// The verifier's shell runs even in an image whose entrypoint is its server (vLLM's): the
    /// task container sets its own entrypoint instead of handing the script to the server.
    @Test func modelVerifyOnANode_worksInAnImageWhoseEntrypointIsTheServer() throws {
        // On node-2: the test above counts verifier containers left on node-1 while this runs.
        _ = try LocalCluster.docker(2, ["pull", "-q", LocalCluster.imageWithEntrypoint])
        let dir = BerthProcess.temporaryFolder()
        let state = dir + "/berth.db"
        let weights = dir + "/models/weights.bin"
        try FileManager.default.createDirectory(atPath: dir + "/models", withIntermediateDirectories: true)
        try Data((0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 3) }).write(to: URL(fileURLWithPath: weights))
        let path = try fleet(dir: dir, artifact: (weights, try sha256(weights)), image: LocalCluster.imageWithEntrypoint)
        #expect(try String(contentsOfFile: path, encoding: .utf8).contains("standin:entrypoint"))
        let applied = try BerthProcess.run(["apply", "-f", nodes, "-f", path], state: state)
        #expect(applied.code == 0, "\(applied.stderr)")
        let ok = try BerthProcess.run(["model", "verify", "standin@v1", "--node", "node-2"], state: state)
        #expect(ok.code == 0, "\(ok.stdout)\(ok.stderr)")
        #expect(ok.stdout.contains("ok        standin@v1 on node-2  \(weights)"))
    }

    @Test func rollback_checksImagesOnNodesAndInTheRegistry() throws {
        let dir = BerthProcess.temporaryFolder()
        let state = dir + "/berth.db"
        let withMissing = try fleet(dir: dir, extraVersion: "v9")
        _ = try BerthProcess.run(["apply", "-f", nodes, "-f", withMissing], state: state)
        write(try String(contentsOfFile: withMissing, encoding: .utf8).replacingOccurrences(of: "  version: v1\n  replicas: 2", with: "  version: v9\n  replicas: 2"), to: dir + "/v9.yaml")
        _ = try BerthProcess.run(["apply", "-f", dir + "/v9.yaml"], state: state)
        // Back from v9 to v1: v1 and v2 are in the registry, so every check passes.
        let back = try BerthProcess.run(["rollback", "deployment/chat", "--dry-run"], state: state)
        #expect(back.code == 0, "\(back.stderr)")
        #expect(back.stdout.contains("-  version: v9\n+  version: v1\n"))
        #expect(back.stdout.contains("the target passed every check"))
        _ = try BerthProcess.run(["apply", "-f", withMissing], state: state)
        // Back to revision 2 would serve standin:v9, which no node has and the registry lacks.
        let refused = try BerthProcess.run(["rollback", "--all", "--to-revision", "2", "--dry-run"], state: state)
        #expect(refused.code == 5)
        #expect(refused.stderr.contains("image \(LocalCluster.registry)/berth/standin:v9 is on no node and is not pullable: registry \(LocalCluster.registry) has no berth/standin:v9"), "\(refused.stderr)")
    }
}
