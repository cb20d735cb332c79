import BerthDocker
import BerthModel
import BerthReconciler
import Testing

func fleet(replicas: Int = 2, version: String = "v1", nodes: [String] = ["a", "b"], maxUnavailable: Int = 0) -> [Resource] {
    var objects: [Resource] = nodes.map { n in
        Resource(metadata: ObjectMeta(name: n), spec: .node(NodeSpec(
            address: "127.0.0.1", engine: EngineEndpoint(endpoint: "unix:///run/\(n).sock"), network: .host,
            gpus: GPUInventory(count: 2, memoryGiB: 80), ports: PortRange(from: n == "a" ? 21000 : 21100, to: n == "a" ? 21099 : 21199))))
    }
    objects.append(Resource(metadata: ObjectMeta(name: "m"), spec: .model(ModelSpec(versions: [
        ModelVersion(version: "v1", image: "r:5000/m:v1", parameters: ParameterCount(1_500_000_000), precision: .bf16),
        ModelVersion(version: "v2", image: "r:5000/m:v2", parameters: ParameterCount(1_500_000_000), precision: .bf16),
    ]))))
    objects.append(Resource(metadata: ObjectMeta(name: "chat"), spec: .deployment(DeploymentSpec(
        model: "m", version: version, replicas: replicas, gpusPerReplica: 1,
        rollout: RolloutPolicy(maxSurge: .count(0), maxUnavailable: .count(maxUnavailable))))))
    return objects
}

/// The containers a plan creates, as observed after it ran (all running).
func observe(_ plan: Plan, running: Bool = true) -> [String: NodeObservation] {
    var byNode: [String: [ObservedContainer]] = [:]
    for case .create(let node, let c) in plan.actions {
        let l = c.spec.labels
        byNode[node, default: []].append(ObservedContainer(
            node: node, id: "id-\(c.name)", name: c.name, deployment: l[BerthLabel.deployment]!, replica: Int(l[BerthLabel.replica]!)!,
            specHash: c.specHash, running: running, gpus: l[BerthLabel.gpus]!.split(separator: ",").compactMap { Int($0) }, hostPort: Int(l[BerthLabel.hostPort]!)!))
    }
    return byNode.mapValues { .reachable($0) }
}

@Suite("Planner")
struct PlannerTests {
    let empty: [String: NodeObservation] = ["a": .reachable([]), "b": .reachable([])]

    @Test func fromEmpty_createsEveryReplica_thenIsANoOp() {
        let first = Planner.plan(desired: fleet(), observed: empty, revision: 1, epoch: 1)
        #expect(first.actions.count == 2)
        #expect(Set(first.actions.map(\.node)) == ["a", "b"], "spread over both nodes")
        let again = Planner.plan(desired: fleet(), observed: observe(first), revision: 1, epoch: 1)
        #expect(again.isNoOp)
        #expect(again.kept.count == 2)
    }

    @Test func stoppedContainer_isStartedAgain() {
        let first = Planner.plan(desired: fleet(), observed: empty, revision: 1, epoch: 1)
        let plan = Planner.plan(desired: fleet(), observed: observe(first, running: false), revision: 1, epoch: 1)
        #expect(plan.actions.allSatisfy { if case .start = $0 { true } else { false } })
        #expect(plan.actions.count == 2)
    }

    @Test func newVersion_replacesOneReplicaAtATime_whileTheRestRuns() {
        let v1 = observe(Planner.plan(desired: fleet(replicas: 3, nodes: ["a", "b"]), observed: empty, revision: 1, epoch: 1))
        let step1 = Planner.plan(desired: fleet(replicas: 3, version: "v2"), observed: v1, revision: 2, epoch: 1)
        let removes = step1.actions.filter { if case .remove = $0 { true } else { false } }
        let creates = step1.actions.filter { if case .create = $0 { true } else { false } }
        #expect(removes.count == 1 && creates.count == 1, "\(step1.actions)")
        #expect(step1.actions.first.map { if case .remove = $0 { true } else { false } } == true, "the old one goes first: same port and GPUs")
        // While the new replica is not running, nothing more moves.
        var mid = v1
        let removedName: String = { if case .remove(_, _, let n, _) = removes[0] { n } else { "" } }()
        for (node, o) in mid { mid[node] = .reachable(o.containers.filter { $0.name != removedName }) }
        for (node, o) in observe(step1, running: false) { mid[node] = .reachable(mid[node]!.containers + o.containers) }
        let waiting = Planner.plan(desired: fleet(replicas: 3, version: "v2"), observed: mid, revision: 2, epoch: 1)
        #expect(waiting.actions.allSatisfy { if case .start = $0 { true } else { false } }, "\(waiting.actions)")
    }

    @Test func largerBudget_replacesMoreAtOnce() {
        let v1 = observe(Planner.plan(desired: fleet(replicas: 4), observed: empty, revision: 1, epoch: 1))
        let plan = Planner.plan(desired: fleet(replicas: 4, version: "v2", maxUnavailable: 2), observed: v1, revision: 2, epoch: 1)
        #expect(plan.actions.filter { if case .create = $0 { true } else { false } }.count == 2)
    }

    @Test func orphansAreRemoved_andScaleDownDropsTheHighestReplicas() {
        let three = observe(Planner.plan(desired: fleet(replicas: 3), observed: empty, revision: 1, epoch: 1))
        let plan = Planner.plan(desired: fleet(replicas: 1), observed: three, revision: 2, epoch: 1)
        #expect(plan.actions.count == 2)
        #expect(plan.actions.allSatisfy { if case .remove(_, _, let name, _) = $0 { !name.contains("-0-") } else { false } })
        let gone = Planner.plan(desired: fleet(replicas: 1).filter { $0.kind != .deployment }, observed: three, revision: 3, epoch: 1)
        #expect(gone.actions.count == 3)
        #expect(gone.actions.allSatisfy { $0.description.contains("deployment chat is gone") })
    }

    @Test func unreachableNode_itsReplicasArePlacedElsewhere() {
        let both = observe(Planner.plan(desired: fleet(), observed: empty, revision: 1, epoch: 1))
        var observed = both
        observed["b"] = .unreachable("engine unreachable")
        let plan = Planner.plan(desired: fleet(), observed: observed, revision: 1, epoch: 1)
        #expect(plan.actions.count == 1)
        #expect(plan.actions.first?.node == "a")
    }
}
