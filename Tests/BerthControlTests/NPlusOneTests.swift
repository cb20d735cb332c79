import BerthControl
import BerthModel
import BerthScheduler
import BerthTesting
import Foundation
import Testing

@Suite("N+1 with the fleet as it stands")
struct NPlusOneTests {
    /// GPUs out of service take nothing in a what-if: a fleet that absorbs losing either node
    /// stops doing so once the other's GPUs are out.
    @Test func gpusOutOfServiceCountAsTakingNothing() {
        let desired = fleet(replicas: 2, nodes: ["a", "b"], gpusPerNode: 2)
        func node(_ name: String, out: [Int]? = nil) -> NodeStatus {
            var n = NodeStatus(name: name, role: "active", ready: true, reason: "EngineReachable", message: "", lastHeartbeat: nil,
                               gpusTotal: 2, gpusAllocated: 1, containers: 1)
            n.gpusOutOfService = out
            return n
        }
        let healthy = NPlusOne.fleet(desired: desired, nodes: [node("a"), node("b")], holds: [:])
        let outcomes = WhatIf.losingAnyOne(healthy)
        #expect(outcomes.allSatisfy { $0.fits })
        let degraded = NPlusOne.fleet(desired: desired, nodes: [node("a"), node("b", out: [0, 1])], holds: [:])
        #expect(degraded.nodes.first { $0.name == "b" }?.outOfService == [0, 1])
        let losingA = WhatIf.losing(["a"], degraded)
        #expect(!losingA.fits && losingA.unplaced.first?.rejections.contains { $0.node == "b" && $0.reason.contains("2 out of service") } == true,
                "\(losingA.unplaced)")
    }
}
