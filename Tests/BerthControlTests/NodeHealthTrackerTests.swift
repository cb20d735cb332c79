@testable import BerthControl
import BerthModel
import BerthReconciler
import BerthStore
import Foundation
import Testing

@Suite("Node health verdicts")
struct NodeHealthTrackerTests {
    let desired: [Resource] = ["a", "s"].map { n in
        Resource(metadata: ObjectMeta(name: n), spec: .node(NodeSpec(
            address: "127.0.0.1", engine: EngineEndpoint(endpoint: "unix:///run/\(n).sock"), role: n == "s" ? .standby : .active,
            network: .host, gpus: GPUInventory(count: 2, memoryGiB: 80))))
    }

    func container(_ id: String) -> ObservedContainer {
        ObservedContainer(node: "a", id: id, name: "berth-chat-\(id)", deployment: "chat", replica: 0, specHash: "", templateHash: "",
                          running: true, gpus: [0], hostPort: 21000, modelVersion: "v1", created: Date(timeIntervalSince1970: 0))
    }

    func options() -> FailoverOptions {
        var o = FailoverOptions()
        o.checkInterval = 1
        o.failureThreshold = 3
        return o
    }

    @Test func replicasThatWereReadyAndAllFail_makeAReachableNodeFail_withItsOwnReason() async {
        let tracker = NodeHealthTracker(options: options(), previous: FleetStatus(controller: nil, deployments: [], nodes: []))
        let t0 = Date(timeIntervalSince1970: 1_000)
        let observed: [String: NodeObservation] = ["a": .reachable([container("c1"), container("c2")]), "s": .reachable([])]
        // A replica never ready (starting, or a bad new version) is no verdict on the node.
        var health = await tracker.evaluate(observed: observed, ready: [], desired: desired, now: t0)
        #expect(health.notReady.isEmpty && health.cordoned.isEmpty)
        health = await tracker.evaluate(observed: observed, ready: ["c1"], desired: desired, now: t0.addingTimeInterval(1))
        #expect(health.cordoned.isEmpty, "one replica answering keeps the node fine")
        // c1 (ready before) and c2 (never ready) now fail: suspect, cordoned, then failed at the third check.
        health = await tracker.evaluate(observed: observed, ready: [], desired: desired, now: t0.addingTimeInterval(2))
        #expect(health.cordoned == ["a"] && health.notReady.isEmpty)
        #expect(await tracker.details("a").failure == "ReplicasFailing")
        health = await tracker.evaluate(observed: observed, ready: [], desired: desired, now: t0.addingTimeInterval(4.1))
        #expect(health.notReady == ["a"], "three checks one second apart")
        let events = await tracker.takeEvents()
        #expect(events.contains { $0.reason == "NodeFailed" && $0.message.contains("ReplicasFailing") && $0.message.contains("berth-chat-c1") }, "\(events)")
        #expect(events.contains { $0.reason == "PromotionStarted" && $0.name == "s" }, "the standby takes its replicas: \(events)")
        // The failing containers gone (the plan removes them), the node rejoins as a standby.
        health = await tracker.evaluate(observed: ["a": .reachable([]), "s": .reachable([])], ready: [], desired: desired, now: t0.addingTimeInterval(6))
        #expect(health.notReady.isEmpty && health.demoted == ["a"])
    }

    @Test func anUnreachableEngine_isSuspectFirst_thenFailed() async {
        let tracker = NodeHealthTracker(options: options(), previous: FleetStatus(controller: nil, deployments: [], nodes: []))
        let t0 = Date(timeIntervalSince1970: 1_000)
        _ = await tracker.evaluate(observed: ["a": .reachable([container("c1")]), "s": .reachable([])], ready: ["c1"], desired: desired, now: t0)
        let down: [String: NodeObservation] = ["a": .unreachable("connection refused"), "s": .reachable([])]
        var health = await tracker.evaluate(observed: down, ready: [], desired: desired, now: t0.addingTimeInterval(1))
        #expect(health.suspect["a"]?.map(\.id) == ["c1"] && health.notReady.isEmpty)
        health = await tracker.evaluate(observed: down, ready: [], desired: desired, now: t0.addingTimeInterval(3.5))
        #expect(health.notReady == ["a"])
        #expect(await tracker.details("a").failure == "EngineUnreachable")
    }

    @Test func aPromotionRequest_makesAStandbyActive_once() async {
        let tracker = NodeHealthTracker(options: options(), previous: FleetStatus(controller: nil, deployments: [], nodes: []))
        let observed: [String: NodeObservation] = ["a": .reachable([]), "s": .reachable([])]
        let holds = ["s": NodeHold(node: "s", promote: true, author: "alice")]
        let health = await tracker.evaluate(observed: observed, ready: [], desired: desired, holds: holds)
        #expect(health.promoted == ["s"])
        #expect(await tracker.takePromotionsDone() == ["s"])
        #expect(await tracker.takeEvents().contains { $0.reason == "NodePromoted" && $0.message.contains("alice") })
        #expect(await tracker.evaluate(observed: observed, ready: [], desired: desired).promoted == ["s"], "it stays promoted")
    }
}
