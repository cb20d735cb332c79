import BerthDocker
import BerthModel
import BerthReconciler
import BerthTesting
import Foundation
import Testing

@Suite("Planner: replicas spread over several nodes")
struct GangTests {
    /// `chat` needs 4 GPUs; the nodes have 2 each: every replica is a gang of two.
    func gangFleet(version: String = "v1", replicas: Int = 1) -> [Resource] {
        fleet(replicas: replicas, version: version, nodes: ["a", "b", "c", "d"], gpusPerNode: 2, maxSurge: 0, maxUnavailable: 1).map { r in
            guard var d = r.deployment else { return r }
            d.gpusPerReplica = 4
            var r = r
            r.spec = .deployment(d)
            return r
        }
    }

    @Test func aGang_isCreatedOnEveryNode_withRanks_andIsReadyWhenItsLeaderIs() throws {
        var cluster = Cluster(nodes: ["a", "b", "c", "d"])
        let first = cluster.plan(gangFleet())
        let creates = first.actions.compactMap { a -> PlannedContainer? in if case .create(_, let c) = a { c } else { nil } }
        #expect(creates.count == 2 && Set(creates.map(\.placement.node)).count == 2, "\(first.actions)")
        let env = creates.map { Set($0.spec.env) }
        let leader = try #require(creates.first { $0.placement.gang?.rank == 0 })
        let leaderAddress = "127.0.0.1:\(leader.placement.hostPort)"
        #expect(env.allSatisfy { $0.contains("BERTH_GANG_SIZE=2") && $0.contains("BERTH_GANG_LEADER=\(leaderAddress)") })
        #expect(Set(creates.map { $0.spec.labels[BerthLabel.gangRank] }) == ["0", "1"])
        #expect(first.deployments[0].replicas[0].message.contains("gang of 2 over"))

        cluster.run(first)
        let starting = cluster.plan(gangFleet())
        #expect(starting.isNoOp && starting.deployments[0].replicas[0].phase == .starting)
        // Only the leader's health counts.
        cluster.ready = Set(cluster.all.filter { $0.rank == 0 }.map(\.id))
        let ready = cluster.plan(gangFleet())
        #expect(ready.isNoOp && ready.deployments[0].replicas[0].phase == .ready && ready.deployments[0].rollout == .complete, "\(ready.deployments)")
    }

    @Test func aGangThatLosesAMember_isCreatedAnewAsAWhole() {
        var cluster = Cluster(nodes: ["a", "b", "c", "d"])
        cluster.run(cluster.plan(gangFleet()))
        cluster.markAllReady()
        #expect(cluster.plan(gangFleet()).isNoOp)
        let member = cluster.all.first { $0.rank == 1 }!
        cluster.containers[member.node]!.removeAll { $0.id == member.id }
        let plan = cluster.plan(gangFleet())
        let removed = plan.actions.filter(\.isRemove)
        let created = plan.actions.filter(\.isCreate)
        #expect(removed.count == 1 && created.count == 2, "the leader goes too, and both come back: \(plan.actions)")
        cluster.run(plan)
        cluster.markAllReady()
        #expect(cluster.plan(gangFleet()).isNoOp && cluster.all.count == 2)
    }

    @Test func aGangRollsToANewVersion_andStaysOneGang() {
        var cluster = Cluster(nodes: ["a", "b", "c", "d"])
        cluster.run(cluster.plan(gangFleet(replicas: 2)))
        cluster.markAllReady()
        for _ in 0..<10 {
            let plan = cluster.plan(gangFleet(version: "v2", replicas: 2))
            if plan.isNoOp { break }
            cluster.run(plan)
            #expect(cluster.readyCount >= 2, "at least one gang (leader and member) ready throughout")
            cluster.markAllReady()
        }
        #expect(cluster.all.count == 4 && cluster.all.allSatisfy { $0.modelVersion == "v2" }, "\(cluster.all.map(\.name))")
        #expect(cluster.plan(gangFleet(version: "v2", replicas: 2)).deployments[0].rollout == .complete)
    }
}
