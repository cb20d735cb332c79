import BerthModel
import BerthReconciler
import BerthTesting
import Foundation
import Testing

@Suite("Staged model files: what each node needs, and the planner waits for them")
struct StagingPlanTests {
    static let sha = String(repeating: "cd", count: 32)

    /// Model `m` with versions v1…v5 staged from a source (v0 hand-placed), keeping 3.
    func desired(deployed: String = "v5", replicas: Int = 1, keep: Int = 3, pinned: String? = nil) -> [Resource] {
        var objects = fleet(replicas: replicas, version: deployed, nodes: ["a", "b", "s"]).filter { $0.kind != .model }
        objects = objects.map { r in
            guard r.name == "s", var n = r.node else { return r }
            n.role = .standby
            return Resource(metadata: r.metadata, spec: .node(n))
        }
        var versions = [ModelVersion(version: "v0", image: "r:5000/m:v0", parameters: ParameterCount(1_500_000_000), precision: .bf16,
                                     artifacts: [Artifact(path: "/models/m/v0/w.bin", sha256: Self.sha, sizeBytes: 10)])]
        for i in 1...5 {
            versions.append(ModelVersion(version: "v\(i)", image: "r:5000/m:v\(i)", parameters: ParameterCount(1_500_000_000), precision: .bf16,
                                         artifacts: [Artifact(path: "m/v\(i)/w.bin", sha256: Self.sha, sizeBytes: 1 << 30)],
                                         pinned: pinned == "v\(i)" ? true : nil, source: ArtifactSource(url: "http://files.internal/")))
        }
        objects.append(Resource(metadata: ObjectMeta(name: "m"), spec: .model(ModelSpec(keepVersions: keep, versions: versions))))
        return objects
    }

    @Test func servingNodesNeedTheirVersionFirst_thenTheKeptOnes_standbysWhatTheFleetServes() {
        let needs = StagingPlan.needs(desired: desired(), placed: ["a": ["m@v5"]], roles: ["a": .active, "b": .active, "s": .standby])
        #expect(needs["a"]?.map { "\($0.key):\($0.why.rawValue)" } == ["m@v5:serve", "m@v3:keep", "m@v4:keep"])
        #expect(needs["b"] == [], "a node serving nothing of m holds none of it")
        #expect(needs["s"]?.map { "\($0.key):\($0.why.rawValue)" } == ["m@v5:standby", "m@v3:keep", "m@v4:keep"],
                "a standby backs the served model: a promotion and a rollback after it never download")
    }

    @Test func handPlacedVersionsAreNeverStaged() {
        let needs = StagingPlan.needs(desired: desired(deployed: "v0"), placed: ["a": ["m@v0"]], roles: ["a": .active, "s": .standby])
        #expect(needs["a"]?.contains { $0.version.version == "v0" } == false)
        #expect(needs["s"]?.contains { $0.version.version == "v0" } == false)
    }

    @Test func purgeable_isWhatNothingKeeps() {
        let d = desired(deployed: "v1", pinned: "v2")
        #expect(!StagingPlan.purgeable(model: "m", version: "v1", desired: d), "deployed")
        #expect(!StagingPlan.purgeable(model: "m", version: "v2", desired: d), "pinned")
        #expect(!StagingPlan.purgeable(model: "m", version: "v5", desired: d), "among the 3 newest")
        #expect(StagingPlan.purgeable(model: "m", version: "v0", desired: desired(deployed: "v1", keep: 1)))
        #expect(StagingPlan.purgeable(model: "gone", version: "v1", desired: d), "a model no longer listed keeps nothing")
    }

    @Test func aReplicaWaitsInPhaseStaging_untilItsFilesAreOnItsNode() {
        let cluster = Cluster(nodes: ["a", "b", "s"])
        var health = FleetHealth()
        health.unstaged = ["a": ["m@v5": "staging 0.2 of 1.0 GiB on a (20 %)"], "b": ["m@v5": "waiting for its files to be staged on b"]]
        let plan = cluster.plan(desired(replicas: 2), health: health)
        #expect(plan.actions.isEmpty, "nothing starts before its files are there: \(plan.actions)")
        let phases = plan.deployments[0].replicas.map(\.phase)
        #expect(phases == [.staging, .staging], "\(plan.deployments[0].replicas)")
        #expect(plan.deployments[0].replicas.contains { $0.message.contains("20 %") })
        // Staged on a only: a starts, b still waits.
        health.unstaged = ["b": ["m@v5": "waiting for its files to be staged on b"]]
        let partly = cluster.plan(desired(replicas: 2), health: health)
        #expect(partly.actions.count == 1 && partly.actions.allSatisfy { $0.node == "a" }, "\(partly.actions)")
    }

    @Test func aRolloutKeepsTheOldReplicaServing_untilTheNewFilesAreThere() {
        var cluster = Cluster(nodes: ["a", "b", "s"])
        for _ in 0..<5 {
            let plan = cluster.plan(desired(deployed: "v4", replicas: 1))
            if plan.isNoOp { break }
            cluster.run(plan)
            cluster.markAllReady()
        }
        #expect(cluster.readyCount == 1)
        var health = FleetHealth()
        health.unstaged = ["a": ["m@v5": "staging 0.5 of 1.0 GiB on a (50 %)"], "b": ["m@v5": "staging 0.5 of 1.0 GiB on b (50 %)"]]
        let roll = cluster.plan(desired(deployed: "v5", replicas: 1), health: health)
        #expect(!roll.actions.contains { if case .remove = $0 { true } else { false } }, "the serving replica is never removed: \(roll.actions)")
        #expect(!roll.actions.contains { if case .create = $0 { true } else { false } }, "\(roll.actions)")
        #expect(roll.deployments[0].ready == 1)
        #expect(roll.deployments[0].replicas.contains { $0.message.contains("kept until its successor's files are on") }, "\(roll.deployments[0].replicas)")
    }
}
