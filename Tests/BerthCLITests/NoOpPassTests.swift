import BerthDocker
import BerthModel
import BerthReconciler
import BerthTesting
import Foundation
import Testing

/// What a pass costs the engines once the fleet is converged.
extension LocalClusterEndToEnd.ReconcileIntegrationTests {
    @Test func aNoOpPass_makesOneDockerCallPerNode_andNothingElse() async throws {
        try LocalCluster.removeBerthContainers()
        defer { try? LocalCluster.removeBerthContainers() }
        let desired = try ManifestLoader.load(paths: [LocalCluster.nodes, LocalCluster.fleet]).map(\.resource)
        let pool = ClientPool()
        let reconciler = Reconciler(runtimes: pool, prober: HTTPProber())
        var converged = false
        for _ in 0..<200 {
            let pass = await reconciler.pass(desired: desired, revision: 1, epoch: 1)
            if pass.plan.isNoOp, pass.plan.deployments.allSatisfy({ $0.rollout == .complete }) {
                converged = true
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(converged, "the example fleet converges")

        let engines = desired.compactMap { r in r.node.map { (r.name, $0.engine) } }
        var clients: [(String, DockerClient)] = []
        for (name, engine) in engines { clients.append((name, try await pool.client(for: engine))) }
        let before = clients.map { $0.1.requestCount }
        let pass = await reconciler.pass(desired: desired, revision: 1, epoch: 1)
        #expect(pass.plan.isNoOp && pass.results.isEmpty)
        for (i, (name, client)) in clients.enumerated() {
            #expect(client.requestCount - before[i] == 1, "\(name): \(client.requestCount - before[i]) engine calls in a no-op pass")
        }
        // The counter counts: a pass that has work to do makes more calls.
        _ = try LocalCluster.docker(1, ["rm", "-f", try LocalCluster.docker(1, ["ps", "-q", "--filter", "label=io.berth.managed-by=berth"]).split(separator: "\n").map(String.init).first ?? "none"])
        let busy = clients.map { $0.1.requestCount }
        let replace = await reconciler.pass(desired: desired, revision: 1, epoch: 1)
        #expect(!replace.plan.isNoOp && clients[0].1.requestCount - busy[0] > 1, "a replacing pass calls node-1's engine more than once")
    }
}
