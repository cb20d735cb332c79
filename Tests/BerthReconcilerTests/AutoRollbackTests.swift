import BerthModel
import BerthReconciler
import Foundation
import Testing

@Suite("Automatic rollback: which halted rollouts return to their last good revision")
struct AutoRollbackTests {
    func status(_ name: String, rollout: DeploymentStatus.Rollout, revision: Int64, lastGood: Int64?, why: String = "replica 0 not ready after 600 s") -> DeploymentStatus {
        let progressing = Condition(type: .progressing, status: rollout != .halted, reason: rollout == .halted ? .readyDeadlineExceeded : .rollingOut,
                                    message: why, lastTransition: Date(timeIntervalSince1970: 0))
        return DeploymentStatus(name: name, objectRevision: revision, observedRevision: revision, modelVersion: "v2", desired: 2, ready: 1, updated: 1,
                                updatedReady: 0, rollout: rollout, conditions: [progressing], replicas: [], lastGoodRevision: lastGood)
    }

    func spec(autoRollback: Bool) -> DeploymentSpec {
        var spec = DeploymentSpec(model: "m", version: "v2", replicas: 2, gpusPerReplica: 1)
        spec.rollout.autoRollback = autoRollback
        return spec
    }

    @Test func aHaltedRolloutWithAutoRollback_returnsToItsLastGoodRevision_sayingWhy() {
        let decisions = AutoRollback.decisions([status("chat", rollout: .halted, revision: 7, lastGood: 5)], specs: ["chat": spec(autoRollback: true)])
        #expect(decisions == [AutoRollback.Decision(deployment: "chat", toRevision: 5, reason: "replica 0 not ready after 600 s")])
    }

    @Test func nothingElseRollsBack() {
        let specs = ["on": spec(autoRollback: true), "off": spec(autoRollback: false)]
        let deployments = [
            status("off", rollout: .halted, revision: 7, lastGood: 5),        // not asked for
            status("on", rollout: .progressing, revision: 7, lastGood: 5),    // still rolling
            status("on", rollout: .halted, revision: 7, lastGood: nil),       // never good
            status("on", rollout: .halted, revision: 5, lastGood: 5),         // halted on its good revision
            status("gone", rollout: .halted, revision: 7, lastGood: 5),       // no spec any more
        ]
        #expect(AutoRollback.decisions(deployments, specs: specs).isEmpty)
    }
}
