import BerthDocker
import BerthModel
import BerthReconciler
import BerthTesting
import Foundation
import Testing

@Suite("Planner")
struct PlannerTests {
    @Test func fromEmpty_createsEveryReplica_waitsForHealth_thenIsComplete() {
        var cluster = Cluster()
        let first = cluster.plan(fleet())
        #expect(first.actions.count == 2 && first.actions.allSatisfy(\.isCreate))
        #expect(Set(first.actions.map(\.node)) == ["a", "b"], "spread over both nodes")
        cluster.run(first)
        let starting = cluster.plan(fleet())
        #expect(starting.isNoOp)
        #expect(starting.deployments[0].replicas.map(\.phase) == [.starting, .starting])
        #expect(starting.deployments[0].rollout == .progressing, "running is not ready")
        cluster.markAllReady()
        let done = cluster.plan(fleet())
        #expect(done.isNoOp && done.kept.count == 2)
        #expect(done.deployments[0].rollout == .complete)
        #expect(done.deployments[0].replicas.map(\.phase) == [.ready, .ready])
    }

    @Test func stoppedContainer_isStartedAgain() {
        var cluster = Cluster()
        cluster.run(cluster.plan(fleet()), running: false)
        let plan = cluster.plan(fleet())
        #expect(plan.actions.count == 2 && plan.actions.allSatisfy(\.isStart))
    }

    /// Rolls v1 → v2 pass by pass, new containers becoming ready one pass after they start, and
    /// checks after every pass that no more replicas are down than the policy allows.
    @Test(arguments: [(3, 1, 0), (3, 0, 1), (4, 2, 0), (4, 0, 2), (5, 1, 1), (2, 0, 0), (6, 3, 3)])
    func rollingUpdate_neverDropsBelowTheAllowedReady(replicas: Int, surge: Int, unavailable: Int) {
        var cluster = Cluster(nodes: ["a", "b", "c", "d"])
        let v1 = fleet(replicas: replicas, nodes: ["a", "b", "c", "d"], gpusPerNode: 4, maxSurge: surge, maxUnavailable: unavailable)
        cluster.run(cluster.plan(v1))
        cluster.markAllReady()
        #expect(cluster.plan(v1).isNoOp)
        let v2 = fleet(replicas: replicas, version: "v2", nodes: ["a", "b", "c", "d"], gpusPerNode: 4, maxSurge: surge, maxUnavailable: unavailable)
        let floor = replicas - max(unavailable, surge == 0 ? 1 : 0)
        var passes = 0
        while passes < 50 {
            passes += 1
            let plan = cluster.plan(v2, revision: 2)
            if plan.isNoOp && plan.deployments[0].rollout == .complete { break }
            cluster.run(plan)
            #expect(cluster.readyCount >= floor, "pass \(passes): \(cluster.readyCount) ready, floor \(floor)")
            #expect(cluster.all.count <= replicas + max(surge, 0) + (surge == 0 ? 0 : 0), "pass \(passes): \(cluster.all.count) containers")
            cluster.markAllReady()
        }
        #expect(passes < 50, "the rollout finished")
        #expect(cluster.all.count == replicas)
        #expect(cluster.all.allSatisfy { $0.modelVersion == "v2" && $0.replica < replicas })
    }

    @Test func newVersionNeverReady_haltsAtTheDeadline_oldOnesKeepServing() {
        var cluster = Cluster(nodes: ["a", "b", "c"])
        let v1 = fleet(replicas: 4, nodes: ["a", "b", "c"], gpusPerNode: 2, maxSurge: 0, maxUnavailable: 1, deadline: 60)
        cluster.run(cluster.plan(v1))
        cluster.markAllReady()
        let v2 = fleet(replicas: 4, version: "v2", nodes: ["a", "b", "c"], gpusPerNode: 2, maxSurge: 0, maxUnavailable: 1, deadline: 60)
        cluster.run(cluster.plan(v2, revision: 2))  // one replaced; the new one never answers
        #expect(cluster.readyCount == 3)
        cluster.now += 30
        let waiting = cluster.plan(v2, revision: 2)
        #expect(waiting.actions.filter(\.isRemove).isEmpty, "the budget is spent until the new one is ready")
        #expect(waiting.deployments[0].rollout == .progressing)
        cluster.now += 60
        let halted = cluster.plan(v2, revision: 2)
        #expect(halted.deployments[0].rollout == .halted)
        #expect(halted.deployments[0].halted?.contains("ready deadline is 60 s") == true)
        #expect(halted.actions.filter(\.isRemove).isEmpty)
        #expect(halted.deployments[0].replicas.filter { $0.phase == .failing }.count == 1)
        #expect(cluster.readyCount == 3, "three v1 replicas keep serving")
    }

    @Test func noRoomToSurge_withNoUnavailability_isBlockedWithAReason() {
        var cluster = Cluster()
        let v1 = fleet(replicas: 4, maxSurge: 1, maxUnavailable: 0)  // 2 nodes × 2 GPUs: full
        cluster.run(cluster.plan(v1))
        cluster.markAllReady()
        let plan = cluster.plan(fleet(replicas: 4, version: "v2", maxSurge: 1, maxUnavailable: 0), revision: 2)
        #expect(plan.isNoOp)
        #expect(plan.deployments[0].blocked?.contains("no room for a surge replica") == true, "\(plan.deployments[0])")
        #expect(plan.deployments[0].replicas.filter { $0.phase == .outdated }.count == 4)
    }

    @Test func surgeReplicas_areRemovedOnceTheRolloutCompletes() {
        var cluster = Cluster(nodes: ["a", "b", "c"])
        let v1 = fleet(replicas: 2, nodes: ["a", "b", "c"], maxSurge: 1)
        cluster.run(cluster.plan(v1))
        cluster.markAllReady()
        let v2 = fleet(replicas: 2, version: "v2", nodes: ["a", "b", "c"], maxSurge: 1)
        let first = cluster.plan(v2, revision: 2)
        #expect(first.actions.count == 1 && first.actions[0].isCreate && first.actions[0].containerName.contains("-chat-2-"), "\(first.actions)")
        #expect(first.deployments[0].replicas.count == 3)
        var seenSurge = false
        for _ in 0..<10 {
            let p = cluster.plan(v2, revision: 2)
            seenSurge = seenSurge || cluster.all.contains { $0.replica == 2 }
            cluster.run(p)
            cluster.markAllReady()
        }
        #expect(seenSurge)
        #expect(cluster.all.map(\.replica).sorted() == [0, 1])
    }

    @Test func orphansAreRemoved_andScaleDownDropsTheHighestReplicas() {
        var cluster = Cluster()
        cluster.run(cluster.plan(fleet(replicas: 3)))
        cluster.markAllReady()
        let plan = cluster.plan(fleet(replicas: 1), revision: 2)
        #expect(plan.actions.count == 2)
        #expect(plan.actions.allSatisfy { $0.isRemove && !$0.containerName.contains("-0-") })
        let gone = cluster.plan(fleet(replicas: 1).filter { $0.kind != .deployment }, revision: 3)
        #expect(gone.actions.count == 3)
        #expect(gone.actions.allSatisfy { $0.description.contains("deployment chat is gone") })
    }

    @Test func unreachableNode_itsReplicasArePlacedElsewhere() {
        var cluster = Cluster()
        cluster.run(cluster.plan(fleet()))
        cluster.markAllReady()
        var observed = cluster.observed
        observed["b"] = .unreachable("engine unreachable")
        let plan = Planner.plan(desired: fleet(), observed: observed, ready: cluster.ready, revision: 1, epoch: 1)
        #expect(plan.actions.count == 1)
        #expect(plan.actions.first?.node == "a")
    }

    @Test func unschedulableReplicas_carryTheSchedulersReason() {
        let plan = Cluster().plan(fleet(replicas: 5))
        let unplaced = plan.deployments[0].replicas.filter { $0.phase == .unschedulable }
        #expect(unplaced.count == 1)
        #expect(unplaced[0].message.contains("needs 1 GPU"), "\(unplaced[0].message)")
    }
}
