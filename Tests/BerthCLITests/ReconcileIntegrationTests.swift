import BerthTesting
import Foundation
import Testing

/// The suites that own every Berth container on the local cluster: one at a time, one test at a
/// time, and alone — `scripts/test` runs them after the others.
@Suite("the local cluster, end to end", .serialized,
       .enabled(if: ProcessInfo.processInfo.environment["BERTH_RECONCILE_INTEGRATION"] == "1", "run by scripts/test after the other suites"))
enum LocalClusterEndToEnd {}

/// `berth reconcile` against the local cluster.
extension LocalClusterEndToEnd {
@Suite("berth reconcile on the local cluster")
struct ReconcileIntegrationTests {
    let nodes = LocalCluster.nodes
    let fleet = LocalCluster.fleet

    @Test func converges_replacesKilled_rollsVersions_leavesForeignContainersAlone() throws {
        try LocalCluster.removeBerthContainers()
        let dir = BerthProcess.temporaryFolder()
        let state = dir + "/berth.db"
        #expect(try BerthProcess.run(["apply", "-f", nodes, "-f", fleet], state: state).code == 0)
        let foreign = try LocalCluster.docker(1, ["run", "-d", "--name", "berth-chat-0-foreign", "--network", "none", "\(LocalCluster.registry)/berth/standin:v1"])
        defer { _ = try? LocalCluster.docker(1, ["rm", "-f", foreign]) }

        let first = try BerthProcess.run(["reconcile"], state: state)
        #expect(first.code == 0, "\(first.stdout)\(first.stderr)")
        #expect(first.stdout.contains("3 of 3 action(s) done"))
        let live = try LocalCluster.running()
        #expect(live.count == 3, "\(live)")
        Thread.sleep(forTimeInterval: 1.5)  // the example's load delay
        for line in live {
            let parts = line.split(separator: " ")
            #expect(LocalCluster.answers(String(parts[1])).contains("standin@\(parts[2])"), "\(line)")
        }
        #expect(try BerthProcess.run(["reconcile"], state: state).stdout.contains("nothing to do: 3 container(s) match"))

        // A replica removed behind Berth's back comes back.
        let victim = String(live[0].split(separator: " ")[0])
        for n in 1...2 { _ = try LocalCluster.docker(n, ["rm", "-f", victim]) }
        let healed = try BerthProcess.run(["reconcile"], state: state)
        #expect(healed.stdout.contains("create \(victim)"), "\(healed.stdout)")
        #expect(try LocalCluster.running().count == 3)
        Thread.sleep(forTimeInterval: 1.5)  // ready again: replacing a replica that is not ready costs nothing, and would not wait its turn

        // chat to v2: maxSurge 1, maxUnavailable 0 → a surge replica first, then one replacement
        // per pass once the newest one is ready; never fewer than 2 serving.
        let text = try String(contentsOfFile: fleet, encoding: .utf8).replacingOccurrences(of: "  version: v1\n  replicas: 2", with: "  version: v2\n  replicas: 2")
        write(text, to: dir + "/v2.yaml")
        _ = try BerthProcess.run(["apply", "-f", dir + "/v2.yaml"], state: state)
        var passes = 0
        while passes < 30, try LocalCluster.running().contains(where: { $0.hasSuffix(" v1") }) || LocalCluster.running().count > 3 {
            let pass = try BerthProcess.run(["reconcile"], state: state)
            #expect(pass.stdout.components(separatedBy: "\ncreate ").count + (pass.stdout.hasPrefix("create ") ? 1 : 0) <= 2, "at most one replacement per pass: \(pass.stdout)")
            #expect(try LocalCluster.running().filter { $0.contains("berth-chat-") && !$0.contains("canary") }.count >= 2, "never below 2 chat replicas")
            passes += 1
            Thread.sleep(forTimeInterval: 0.5)
        }
        let final = try LocalCluster.running()
        #expect(final.allSatisfy { $0.hasSuffix(" v2") }, "\(final)")
        #expect(passes >= 3, "a surge replica, then two replacements one at a time")
        #expect(final.count == 3, "the surge replica is gone: \(final)")

        // Removing the deployments removes their containers; the foreign one stays.
        write(try String(contentsOfFile: nodes, encoding: .utf8), to: dir + "/only-nodes.yaml")
        _ = try BerthProcess.run(["apply", "-f", dir + "/only-nodes.yaml", "--prune"], state: state)
        let cleanup = try BerthProcess.run(["reconcile"], state: state)
        #expect(cleanup.stdout.contains("deployment chat is gone"))
        #expect(try LocalCluster.running().isEmpty)
        #expect(try LocalCluster.docker(1, ["inspect", "-f", "{{.Name}}", foreign]) == "/berth-chat-0-foreign")
    }
}
}
