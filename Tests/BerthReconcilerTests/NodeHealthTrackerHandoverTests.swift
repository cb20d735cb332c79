import BerthModel
@testable import BerthReconciler
import BerthRuntime
import Foundation
import Testing

/// What the failover tracker keeps across passes and leaders: containers a pass created, nodes a
/// new leader never saw, the count of acting nodes, and the memory handed to the next leader.
/// Each case is one the deterministic simulator found broken.
@Suite("Node health: handover and what a pass created")
struct NodeHealthTrackerHandoverTests {
    let base = NodeHealthTrackerTests()

    func planned(_ replica: Int, on node: String) -> PlannedContainer {
        let objects = fleetObjects(replicas: 1)
        let spec = objects[1].deployment!
        let model = objects[0].model!.versions[0]
        let nodeSpec = base.desired.first { $0.name == node }!.node!
        return ContainerSpecBuilder.build(ReplicaPlacement(deployment: "chat", spec: spec, model: model, replica: replica, node: node, nodeSpec: nodeSpec,
                                                           gpus: [replica], hostPort: 20000 + replica, revision: 1), epoch: 1)
    }

    func emptyPlan() -> Plan {
        Planner.plan(desired: [], observed: [:], revision: 1, epoch: 1)
    }

    @Test func aNodeThatStopsAnsweringRightAfterACreate_keepsThatReplicaInPlace() async {
        let t = base.tracker()
        let all: [String: NodeObservation] = ["a": .reachable([]), "b": .reachable([]), "c": .reachable([]), "s": .reachable([])]
        _ = await base.check(t, all, ready: [], at: 0)
        let create = Action.create(node: "a", container: planned(0, on: "a"))
        await t.progress(plan: emptyPlan(), results: [ActionResult(action: create, error: nil, created: "id-0")], at: base.m0)
        var cut = all
        cut["a"] = .unreachable("connection refused")
        let health = await base.check(t, cut, ready: [], at: 1)
        #expect(health.suspect["a"]?.map(\.id) == ["id-0"], "the created replica stays where it is: \(health.suspect)")
        let plan = Planner.plan(desired: base.desired + fleetObjects(replicas: 1), observed: cut, revision: 1, epoch: 1, health: health)
        let creates = plan.actions.filter { if case .create = $0 { true } else { false } }
        #expect(creates.isEmpty, "no second copy elsewhere: \(creates) \(plan.deployments)")
    }

    @Test func aNodeANewLeaderNeverSaw_holdsCreatesForEmptySlots_untilItIsDeclaredFailed() async {
        let t = base.tracker()
        let observed: [String: NodeObservation] = ["a": .unreachable("timeout"), "b": .reachable([]), "c": .reachable([]), "s": .reachable([])]
        var health = await base.check(t, observed, ready: [], at: 0)
        #expect(health.unseen == ["a"])
        var plan = Planner.plan(desired: base.desired + fleetObjects(replicas: 2), observed: observed, revision: 1, epoch: 1, health: health)
        #expect(plan.actions.isEmpty, "its replicas may run there: \(plan.actions)")
        #expect(plan.deployments[0].replicas.allSatisfy { $0.message.contains("has not answered since this controller began leading") })
        health = await base.check(t, observed, ready: [], at: 2.5)
        #expect(health.notReady == ["a"] && health.unseen.isEmpty)
        plan = Planner.plan(desired: base.desired + fleetObjects(replicas: 2), observed: observed, revision: 1, epoch: 1, health: health)
        #expect(plan.actions.filter { if case .create = $0 { true } else { false } }.count == 2)
    }

    @Test func aStandbyDownWhenTheActiveFailed_isPromotedOnceItAnswers() async {
        let t = base.tracker()
        let c1 = base.container("c1")
        var observed: [String: NodeObservation] = ["a": .reachable([c1]), "b": .reachable([]), "c": .reachable([]), "s": .unreachable("down")]
        _ = await base.check(t, observed, ready: ["c1"], at: 0)
        observed["a"] = .unreachable("power lost")
        var health = FleetHealth()
        for second in [1.0, 2.0, 3.1] { health = await base.check(t, observed, ready: [], at: second) }
        #expect(health.notReady.contains("a") && health.promoted.isEmpty, "\(health.notReady)")
        #expect(await t.takeEvents().contains { $0.reason == .noStandby })
        observed["s"] = .reachable([])
        health = await base.check(t, observed, ready: [], at: 4)
        #expect(health.promoted == ["s"], "the standby answers: it takes the failed node's place")
        #expect(await t.promotions.first?.standby == "s")
    }

    @Test func failedAndPromotedNodes_reachTheNextLeader_throughTheStoredMemory() async {
        let t = base.tracker()
        let c1 = base.container("c1")
        var observed: [String: NodeObservation] = ["a": .reachable([c1]), "b": .reachable([]), "c": .reachable([]), "s": .reachable([])]
        _ = await base.check(t, observed, ready: ["c1"], at: 0)
        observed["a"] = .unreachable("power lost")
        for second in [1.0, 2.0, 3.1] { _ = await base.check(t, observed, ready: [], at: second) }
        let memory = await t.memory()
        #expect(memory.failed.map(\.name) == ["a"] && memory.failed[0].failure == .engineUnreachable && memory.promoted == ["s"])
        // The node statuses say nothing (a status written by a controller that lost the strings):
        // the memory alone carries the verdicts.
        let controller = ControllerStatus(holder: "x", epoch: 1, startedAt: base.t0, lastPassAt: base.t0, lastPassMilliseconds: 0, passes: 1,
                                          revision: 1, listen: nil, promotions: await t.promotions, failover: memory)
        let next = NodeHealthTracker(options: base.options(), previous: FleetStatus(controller: controller, deployments: [], nodes: []),
                                     now: base.t0, at: base.m0)
        let health = await next.evaluate(observed: observed, ready: [], desired: base.desired, now: base.t0.addingTimeInterval(5), at: base.m0 + .seconds(5))
        #expect(health.notReady == ["a"] && health.promoted == ["s"])
        // Decoding a status without the memory (an older controller's) still works.
        let old = try? JSONDecoder().decode(ControllerStatus.self, from: Data(#"{"holder":"x","epoch":1,"startedAt":0,"lastPassAt":0,"lastPassMilliseconds":0,"passes":1,"revision":1,"promotions":[]}"#.utf8))
        #expect(old != nil && old?.failover == nil)
    }

    /// One deployment `chat` of `m`, one GPU per replica.
    func fleetObjects(replicas: Int) -> [Resource] {
        [
            Resource(metadata: ObjectMeta(name: "m"), spec: .model(ModelSpec(versions: [
                ModelVersion(version: "v1", image: "r/m:v1", parameters: ParameterCount(1_000_000_000), precision: .bf16),
            ]))),
            Resource(metadata: ObjectMeta(name: "chat"), spec: .deployment(DeploymentSpec(model: "m", version: "v1", replicas: replicas, gpusPerReplica: 1))),
        ]
    }
}
