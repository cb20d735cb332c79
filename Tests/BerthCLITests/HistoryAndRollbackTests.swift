import BerthTesting
import Foundation
import Testing

/// A state with three revisions of the r1-distill fleet: the fleet, the canary promoted to v2 with
/// 3 replicas, then a new deployment.
func threeRevisions() throws -> (dir: String, state: String) {
    let dir = BerthProcess.temporaryFolder()
    let state = dir + "/state/berth.db"
    let fleet = BerthProcess.root.appendingPathComponent("manifests/deepseek-r1-distill-7b/fleet.yaml").path
    // Without artifacts: rollback checks of unverified files are tested on their own below.
    let text = withoutArtifacts(try String(contentsOfFile: fleet, encoding: .utf8))
    write(text, to: dir + "/r1.yaml")
    write(text.replacingOccurrences(of: "version: v1\n  replicas: 2", with: "version: v2\n  replicas: 3"), to: dir + "/r2.yaml")
    write("""
        apiVersion: berth/v1
        kind: Deployment
        metadata: { name: extra }
        spec: { model: r1-distill-qwen-7b, version: v1, replicas: 0 }
        """, to: dir + "/extra.yaml")
    #expect(try BerthProcess.run(["apply", "-f", dir + "/r1.yaml", "-m", "first"], state: state).code == 0)
    #expect(try BerthProcess.run(["apply", "-f", dir + "/r2.yaml", "-m", "v2 everywhere"], state: state).code == 0)
    #expect(try BerthProcess.run(["apply", "-f", dir + "/extra.yaml", "-m", "extra"], state: state).code == 0)
    return (dir, state)
}

@Suite("history diff, history --at, rollback")
struct HistoryAndRollbackTests {
    @Test func historyDiff_showsObjectDiffs_andExitsLikeDiff() throws {
        let (_, state) = try threeRevisions()
        let diff = try BerthProcess.run(["history", "diff", "1", "3"], state: state)
        #expect(diff.code == 1)
        #expect(diff.stdout.contains("--- deployment/r1-7b (revision 1)\n+++ deployment/r1-7b (revision 3)\n"))
        #expect(diff.stdout.contains("-  version: v1\n+  version: v2\n"))
        #expect(diff.stdout.contains("--- /dev/null\n+++ deployment/extra (revision 3)\n"))
        #expect(try BerthProcess.run(["history", "diff", "2", "2"], state: state).code == 0)
        #expect(try BerthProcess.run(["history", "diff", "1", "9"], state: state).code == 4)
    }

    @Test func historyAt_printsTheStateInForceAtATime() throws {
        let (_, state) = try threeRevisions()
        let now = try BerthProcess.run(["history", "--at", "2100-01-01T00:00:00Z", "deployment/extra"], state: state)
        #expect(now.stdout.hasPrefix("# revision 3, "))
        #expect(now.stdout.contains("name: extra"))
        let before = try BerthProcess.run(["history", "--at", "2000-01-01"], state: state)
        #expect(before.code == 4)
        #expect(before.stderr.contains("no revision was stored by 2000-01-01 00:00:00Z"))
        let bad = try BerthProcess.run(["history", "--at", "yesterday-ish"], state: state)
        #expect(bad.code == 64)
    }

    @Test func rollbackObject_defaultsToItsPreviousState_asANewRevision() throws {
        let (_, state) = try threeRevisions()
        let r = try BerthProcess.run(["rollback", "deployment/r1-7b", "--skip-image-check"], state: state)
        #expect(r.code == 0, "\(r.stderr)")
        #expect(r.stdout.contains("-  version: v2\n+  version: v1\n"))
        #expect(r.stdout.contains("revision 4 stored: rollback to deployment/r1-7b at revision 1"))
        let history = try BerthProcess.run(["history", "--limit", "1"], state: state)
        #expect(history.stdout.contains("rollback  deployment/r1-7b configured"))
        // Nothing else moved: extra is still there.
        #expect(try BerthProcess.run(["get", "deployment", "extra"], state: state).code == 0)
    }

    @Test func rollbackObject_toBeforeItExisted_deletesIt_andHistoryKeepsIt() throws {
        let (_, state) = try threeRevisions()
        let r = try BerthProcess.run(["rollback", "deployment/extra", "--skip-image-check"], state: state)
        #expect(r.stdout.contains("deployment/extra deleted"), "\(r.stdout)\(r.stderr)")
        #expect(try BerthProcess.run(["get", "deployment", "extra"], state: state).code == 4)
        #expect(try BerthProcess.run(["history", "deployment/extra"], state: state).stdout.contains("deployment/extra deleted"))
    }

    @Test func rollbackAll_toRevisionOrTime_andDryRunStoresNothing() throws {
        let (_, state) = try threeRevisions()
        let dry = try BerthProcess.run(["rollback", "--all", "--to-revision", "1", "--dry-run", "--skip-image-check"], state: state)
        #expect(dry.code == 0)
        #expect(dry.stdout.contains("dry run: nothing stored; the target passed every check"))
        #expect(try BerthProcess.run(["history", "-o", "json"], state: state).stdout.components(separatedBy: "\"revision\"").count == 4)
        let all = try BerthProcess.run(["rollback", "--all", "--to-revision", "1", "--skip-image-check", "-m", "back to the start"], state: state)
        #expect(all.stdout.contains("deployment/extra deleted"))
        #expect(all.stdout.contains("revision 4 stored"))
        #expect(try BerthProcess.run(["history", "diff", "1", "4"], state: state).code == 0, "revision 4 equals revision 1")
        let time = try BerthProcess.run(["rollback", "--all", "--to-time", "2100-01-01", "--skip-image-check"], state: state)
        #expect(time.stdout.contains("nothing to roll back"))
    }

    @Test func rollback_refusesATargetThatDoesNotFit_unlessForced() throws {
        let (dir, state) = try threeRevisions()
        // Revision 4 asks for 9 replicas on a fleet of 3 active single-GPU nodes; then back to 4 from a smaller 5.
        let text = try String(contentsOfFile: dir + "/r1.yaml", encoding: .utf8)
        write(text.replacingOccurrences(of: "replicas: 2", with: "replicas: 9"), to: dir + "/big.yaml")
        _ = try BerthProcess.run(["apply", "-f", dir + "/big.yaml"], state: state)
        _ = try BerthProcess.run(["apply", "-f", dir + "/r1.yaml"], state: state)
        let refused = try BerthProcess.run(["rollback", "--all", "--to-revision", "4", "--skip-image-check"], state: state)
        #expect(refused.code == 5)
        #expect(refused.stderr.contains("not feasible: deployment/r1-7b replica"))
        #expect(refused.stderr.contains("is a standby"))
        #expect(refused.stderr.contains("refused: "))
        #expect(try BerthProcess.run(["history", "--limit", "1"], state: state).stdout.contains("apply"), "nothing stored")
        let forced = try BerthProcess.run(["rollback", "--all", "--to-revision", "4", "--skip-image-check", "--force"], state: state)
        #expect(forced.code == 0)
        #expect(forced.stdout.contains("revision 6 stored"))
    }

    @Test func rollback_refusesUnverifiedOrChangedArtifacts() throws {
        let dir = BerthProcess.temporaryFolder()
        let state = dir + "/berth.db"
        let weights = dir + "/weights.bin"
        try Data((0..<100_000).map { UInt8($0 % 251) }).write(to: URL(fileURLWithPath: weights))
        let good = try sha256(weights)
        let base = try String(contentsOfFile: BerthProcess.root.appendingPathComponent("manifests/deepseek-r1-distill-7b/fleet.yaml").path, encoding: .utf8)
        // Point v1's artifact at a real file with its real hash.
        let pattern = try #require(base.range(of: "path: /models/r1-distill-qwen-7b/v1/model.safetensors\n          sha256: "))
        let hashEnd = base.index(pattern.upperBound, offsetBy: 64)
        let withV1 = base.replacingCharacters(in: pattern.lowerBound..<hashEnd, with: "path: \(weights)\n          sha256: \(good)")
        // v2 keeps no artifacts, so only v1's file decides.
        let v2Start = try #require(withV1.range(of: "    - version: v2"))
        let fleet = String(withV1[..<v2Start.lowerBound]) + withoutArtifacts(String(withV1[v2Start.lowerBound...]))
        write(fleet, to: dir + "/fleet.yaml")
        write(fleet.replacingOccurrences(of: "version: v1\n  replicas: 2", with: "version: v2\n  replicas: 2"), to: dir + "/v2.yaml")
        _ = try BerthProcess.run(["apply", "-f", dir + "/fleet.yaml"], state: state)
        _ = try BerthProcess.run(["apply", "-f", dir + "/v2.yaml"], state: state)
        let unverified = try BerthProcess.run(["rollback", "deployment/r1-7b", "--skip-image-check", "--dry-run"], state: state)
        #expect(unverified.code == 5)
        #expect(unverified.stderr.contains("\(weights) has not been verified (run `berth model verify r1-distill-qwen-7b@v1`)"))
        let verify = try BerthProcess.run(["model", "verify", "r1-distill-qwen-7b@v1"], state: state)
        #expect(verify.code == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.contains("ok        r1-distill-qwen-7b@v1  \(weights)"))
        #expect(try BerthProcess.run(["rollback", "deployment/r1-7b", "--skip-image-check", "--dry-run"], state: state).code == 0)
        // One changed byte: verification fails, names both hashes, and blocks the rollback.
        var data = try Data(contentsOf: URL(fileURLWithPath: weights))
        data[10] ^= 0xFF
        try data.write(to: URL(fileURLWithPath: weights))
        let bad = try BerthProcess.run(["model", "verify", "r1-distill-qwen-7b@v1"], state: state)
        #expect(bad.code == 6)
        #expect(bad.stdout.contains("sha256 mismatch: manifest \(good), file \(try sha256(weights))"))
        let blocked = try BerthProcess.run(["rollback", "deployment/r1-7b", "--skip-image-check"], state: state)
        #expect(blocked.code == 5)
        #expect(blocked.stderr.contains("\(weights) failed verification: sha256 mismatch"))
        try FileManager.default.removeItem(atPath: weights)
        #expect(try BerthProcess.run(["model", "verify", "r1-distill-qwen-7b@v1"], state: state).stdout.contains("\(weights): missing"))
    }
}

/// The manifest text without its `artifacts:` lists (each entry is a path line and a sha256 line).
func withoutArtifacts(_ text: String) -> String {
    var out: [Substring] = []
    var skip = 0
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        if skip > 0 { skip -= 1; continue }
        if line.trimmingCharacters(in: .whitespaces) == "artifacts:" { skip = 2; continue }
        out.append(line)
    }
    return out.joined(separator: "\n")
}

/// sha256 by the system's sha256sum, to check Berth's own against.
func sha256(_ path: String) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
    p.arguments = [path]
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(String(decoding: data, as: UTF8.self).prefix(64))
}
