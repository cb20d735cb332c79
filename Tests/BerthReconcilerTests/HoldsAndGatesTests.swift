import BerthDocker
import BerthModel
import BerthReconciler
import BerthTesting
import Foundation
import Testing

@Suite("Planner: operators' holds and refused versions")
struct HoldsAndGatesTests {
    /// Plans and runs passes until nothing is left to do; new containers turn ready one pass after
    /// they start. Returns the fewest ready `chat` replicas seen after any pass's removals.
    func converge(_ cluster: inout Cluster, _ desired: [Resource], health: FleetHealth = FleetHealth(), passes: Int = 30) -> Int {
        var fewest = Int.max
        for _ in 0..<passes {
            let plan = cluster.plan(desired, health: health)
            if plan.isNoOp { break }
            cluster.run(plan)
            fewest = min(fewest, cluster.readyCount)
            cluster.markAllReady()
        }
        return fewest
    }

    @Test func drain_movesEveryReplicaOff_eachSuccessorReadyFirst() {
        var cluster = Cluster(nodes: ["a", "b", "c"])
        let desired = fleet(replicas: 2, nodes: ["a", "b", "c"], gpusPerNode: 2, maxSurge: 1, maxUnavailable: 0)
        _ = converge(&cluster, desired)
        #expect(cluster.readyCount == 2 && cluster.containers["a"]!.count == 1, "spread puts one replica on a: \(cluster.containers)")

        var drain = FleetHealth()
        drain.draining = ["a"]
        drain.cordoned = ["a"]
        let fewest = converge(&cluster, desired, health: drain)
        #expect(fewest >= 2, "never fewer than 2 ready while draining (saw \(fewest))")
        #expect(cluster.containers["a"]!.isEmpty, "nothing left on the draining node: \(cluster.containers)")
        #expect(cluster.all.count == 2 && cluster.readyCount == 2, "\(cluster.all.map(\.name))")
        let settled = cluster.plan(desired, health: drain)
        #expect(settled.isNoOp && settled.deployments[0].rollout == .complete)
    }

    /// A GPU out of service: its replica moves as from a draining node (successor ready first),
    /// to another GPU of the same node if one is free, and nothing is placed on it again.
    @Test func gpuOutOfService_movesItsReplicaSuccessorFirst_andStaysEmpty() {
        var cluster = Cluster(nodes: ["a", "b"])
        let desired = fleet(replicas: 2, nodes: ["a", "b"], gpusPerNode: 2, maxSurge: 1, maxUnavailable: 0)
        _ = converge(&cluster, desired)
        let onA = cluster.containers["a"]!
        #expect(onA.count == 1 && onA[0].gpus == [0], "\(cluster.containers)")

        var bad = FleetHealth()
        bad.outOfServiceGPUs = ["a": [0]]
        let fewest = converge(&cluster, desired, health: bad)
        #expect(fewest >= 2, "never fewer than 2 ready while the replica moves (saw \(fewest))")
        #expect(cluster.all.count == 2 && cluster.readyCount == 2, "\(cluster.all.map(\.name))")
        #expect(!cluster.all.contains { $0.node == "a" && $0.gpus.contains(0) }, "nothing on a's GPU 0: \(cluster.all.map { ($0.node, $0.gpus) })")
        #expect(cluster.plan(desired, health: bad).isNoOp)

        // Every GPU of a node out: its replica moves to another node; what does not fit says why.
        var three = Cluster(nodes: ["a", "b", "c"])
        let spread = fleet(replicas: 2, nodes: ["a", "b", "c"], gpusPerNode: 2, maxSurge: 1, maxUnavailable: 0)
        _ = converge(&three, spread)
        #expect(three.containers["a"]!.count == 1)
        bad.outOfServiceGPUs = ["a": [0, 1]]
        #expect(converge(&three, spread, health: bad) >= 2)
        #expect(three.containers["a"]!.isEmpty && three.readyCount == 2, "\(three.all.map { ($0.node, $0.gpus, $0.replica, $0.running) })")
        let short = three.plan(fleet(replicas: 6, nodes: ["a", "b", "c"], gpusPerNode: 2, maxSurge: 1, maxUnavailable: 0), health: bad)
        let why = short.schedule.unplaced.flatMap(\.rejections).map { "\($0.node): \($0.reason)" }
        #expect(why.contains("a: has 0 free (2 out of service)"), "\(why)")
    }

    /// No room for a successor: a replica on a GPU out of service, or on a draining node, keeps
    /// serving where it is (unschedulable, saying why), and nothing else takes its port or GPUs.
    @Test func noRoomToMove_theReplicaKeepsServingWhereItIs() {
        var cluster = Cluster(nodes: ["a", "b"])
        let desired = fleet(replicas: 2, nodes: ["a", "b"], gpusPerNode: 1, maxSurge: 1, maxUnavailable: 0)
        _ = converge(&cluster, desired)
        #expect(cluster.readyCount == 2)
        var gpuOut = FleetHealth()
        gpuOut.outOfServiceGPUs = ["a": [0]]
        var drain = FleetHealth()
        drain.draining = ["a"]
        drain.cordoned = ["a"]
        for holds in [gpuOut, drain] {
            var c = cluster
            let fewest = converge(&c, desired, health: holds)
            #expect(fewest >= 2 && c.readyCount == 2 && c.containers["a"]!.count == 1, "\(c.all.map { ($0.node, $0.gpus, $0.replica) })")
            let plan = c.plan(desired, health: holds)
            #expect(plan.isNoOp, "\(plan.actions)")
            let onA = plan.deployments[0].replicas.first { $0.node == "a" }
            #expect(onA?.phase == .unschedulable && onA?.message.contains("serves it meanwhile") == true, "\(plan.deployments[0].replicas)")
        }
        // With room for more replicas, nothing new lands on a's port or GPU while it serves there.
        var bigger = cluster
        var bad = FleetHealth()
        bad.outOfServiceGPUs = ["a": [0]]
        let more = fleet(replicas: 3, nodes: ["a", "b"], gpusPerNode: 1, maxSurge: 1, maxUnavailable: 0)
        _ = converge(&bigger, more, health: bad)
        #expect(bigger.containers["a"]!.count == 1 && bigger.readyCount == 2, "\(bigger.all.map { ($0.node, $0.gpus, $0.hostPort) })")
    }

    @Test func cordon_keepsRunningReplicas_butPlacesNoNewOnes() {
        var cluster = Cluster(nodes: ["a", "b"])
        var cordon = FleetHealth()
        cordon.cordoned = ["a"]
        _ = converge(&cluster, fleet(replicas: 2, gpusPerNode: 2), health: cordon)
        #expect(cluster.containers["a"]!.isEmpty && cluster.containers["b"]!.count == 2)
        // A replica already on a cordoned node stays.
        var moved = Cluster(nodes: ["a", "b"])
        _ = converge(&moved, fleet(replicas: 2, gpusPerNode: 2))
        #expect(moved.plan(fleet(replicas: 2, gpusPerNode: 2), health: cordon).isNoOp)
    }

    @Test func refusedVersion_startsNothing_andKeepsTheOldVersionServing() {
        var cluster = Cluster()
        var refuse = FleetHealth()
        refuse.refusedVersions = ["m@v2": "m@v2: /models/m/v2/w.bin failed verification on a: sha256 mismatch (manifest aaa, file bbb)"]
        let fresh = cluster.plan(fleet(version: "v2", maxSurge: 1), health: refuse)
        #expect(fresh.isNoOp, "\(fresh.actions)")
        #expect(fresh.deployments[0].blocked?.contains("file bbb") == true && fresh.deployments[0].blockedReason == .artifactsNotVerified)
        #expect(fresh.deployments[0].replicas.allSatisfy { $0.phase == .pending && $0.message.hasPrefix("not started: ") })

        _ = converge(&cluster, fleet(version: "v1", maxSurge: 1))
        let roll = cluster.plan(fleet(version: "v2", maxSurge: 1), health: refuse)
        #expect(roll.isNoOp, "no surge replica of the refused version either: \(roll.actions)")
        #expect(roll.kept.count == 2 && roll.deployments[0].ready == 2 && roll.deployments[0].blocked != nil)
        // Once it verifies, the rollout goes ahead.
        #expect(!cluster.plan(fleet(version: "v2", maxSurge: 1)).isNoOp)
    }
}

@Suite("Image retention")
struct ImageRetentionTests {
    func model(keep: Int = 3, pinned: String? = nil, shared: (String, String)? = nil) -> Resource {
        let versions = (1...5).map { i in
            var image = "r/m:v\(i)"
            if let shared, shared.0 == "v\(i)" { image = "r/m:\(shared.1)" }
            return ModelVersion(version: "v\(i)", image: image, parameters: ParameterCount(1_000_000_000), precision: .bf16,
                                pinned: pinned == "v\(i)" ? true : nil)
        }
        return Resource(metadata: ObjectMeta(name: "m"), spec: .model(ModelSpec(keepVersions: keep, versions: versions)))
    }

    func deployment(_ version: String) -> Resource {
        Resource(metadata: ObjectMeta(name: "d"), spec: .deployment(DeploymentSpec(model: "m", version: version, replicas: 1, gpusPerReplica: 1)))
    }

    @Test func keepsTheNewestThree_theDeployedAndPinned_collectsTheRest() {
        let plan = ImageRetention.plan(desired: [model(pinned: "v2"), deployment("v1")], serving: ["a": ["m"]], roles: ["a": .active, "s": .standby, "idle": .active])
        #expect(plan["a"]?.keep == ["r/m:v1", "r/m:v2", "r/m:v3", "r/m:v4", "r/m:v5"])
        #expect(plan["a"]?.collectable == [], "v1 deployed, v2 pinned, v3–v5 newest: nothing to collect")
        #expect(plan["s"]?.keep == ["r/m:v1"], "a standby holds the served version only")
        #expect(plan["idle"]?.keep == [], "a node serving nothing pre-pulls nothing")

        let plain = ImageRetention.plan(desired: [model(), deployment("v5")], serving: ["a": ["m"]], roles: ["a": .active])
        #expect(plain["a"]?.keep == ["r/m:v3", "r/m:v4", "r/m:v5"])
        #expect(plain["a"]?.collectable == ["r/m:v1", "r/m:v2"])
    }

    @Test func anImageSharedWithAKeptVersion_isNeverCollected() {
        let plan = ImageRetention.plan(desired: [model(shared: ("v1", "v4")), deployment("v5")], serving: ["a": ["m"]], roles: ["a": .active])
        #expect(plan["a"]?.collectable == ["r/m:v2"], "v1 runs v4's image, which is kept")
        let one = ImageRetention.plan(desired: [model(keep: 1), deployment("v3")], serving: ["a": ["m"]], roles: ["a": .active])
        #expect(one["a"]?.keep == ["r/m:v3", "r/m:v5"] && one["a"]?.collectable == ["r/m:v1", "r/m:v2", "r/m:v4"])
    }
}
