import BerthModel
@testable import BerthReconciler
import BerthRuntime
import Foundation
import Testing

@Suite("Node health verdicts")
struct NodeHealthTrackerTests {
    let desired: [Resource] = ["a", "b", "c", "s"].map { n in
        Resource(metadata: ObjectMeta(name: n), spec: .node(NodeSpec(
            address: "127.0.0.1", engine: EngineEndpoint(endpoint: "unix:///run/\(n).sock"), role: n == "s" ? .standby : .active,
            network: .host, gpus: GPUInventory(count: 2, memoryGiB: 80))))
    }
    let t0 = Date(timeIntervalSince1970: 1_000)
    let m0 = MonotonicInstant.now

    func container(_ id: String, on node: String = "a", deployment: String = "chat") -> ObservedContainer {
        ObservedContainer(node: node, id: id, name: "berth-\(deployment)-\(id)", deployment: deployment, replica: 0, specHash: "", templateHash: "",
                          running: true, gpus: [0], hostPort: 21000, modelVersion: "v1", created: Date(timeIntervalSince1970: 0))
    }

    func options() -> FailoverOptions {
        var o = FailoverOptions()
        o.checkInterval = 1
        o.failureThreshold = 3
        return o
    }

    func tracker() -> NodeHealthTracker {
        NodeHealthTracker(options: options(), previous: FleetStatus(controller: nil, deployments: [], nodes: []))
    }

    /// Evaluates at `seconds` after the start, on both clocks.
    func check(_ t: NodeHealthTracker, _ observed: [String: NodeObservation], ready: Set<String>, at seconds: Double) async -> FleetHealth {
        await t.evaluate(observed: observed, ready: ready, desired: desired, now: t0.addingTimeInterval(seconds), at: m0 + .milliseconds(Int64(seconds * 1000)))
    }

    @Test func replicasFailingOnOneNode_whileTheDeploymentServesElsewhere_failTheNode_thenItReturnsToItsRole() async {
        let t = tracker()
        let observed: [String: NodeObservation] = ["a": .reachable([container("c1"), container("c2")]), "b": .reachable([container("b1", on: "b")]),
                                                   "c": .reachable([]), "s": .reachable([])]
        // A replica never ready (starting, or a bad new version) is no verdict on the node.
        var health = await check(t, observed, ready: ["b1"], at: 0)
        #expect(health.notReady.isEmpty && health.cordoned.isEmpty)
        health = await check(t, observed, ready: ["c1", "b1"], at: 1)
        #expect(health.cordoned.isEmpty, "one replica answering keeps the node fine")
        // c1 (ready before) and c2 (never ready) now fail while b1 serves: suspect, cordoned, then failed at the third check.
        health = await check(t, observed, ready: ["b1"], at: 2)
        #expect(health.cordoned == ["a"] && health.notReady.isEmpty)
        #expect(await t.details("a").failure == "ReplicasFailing")
        health = await check(t, observed, ready: ["b1"], at: 4.1)
        #expect(health.notReady == ["a"], "three checks one second apart")
        let events = await t.takeEvents()
        #expect(events.contains { $0.reason == .nodeFailed && $0.message.contains("ReplicasFailing") && $0.message.contains("berth-chat-c1") }, "\(events)")
        #expect(events.contains { $0.reason == .promotionStarted && $0.name == "s" }, "the standby takes its replicas: \(events)")
        // The failing containers gone (the plan removes them), the node returns to its role: not demoted.
        health = await check(t, ["a": .reachable([]), "b": .reachable([container("b1", on: "b")]), "c": .reachable([]), "s": .reachable([])], ready: ["b1"], at: 6)
        #expect(health.notReady.isEmpty && health.demoted.isEmpty)
        #expect(await t.takeEvents().contains { $0.reason == .nodeRecovered && $0.message.contains("returns to its role (active)") })
    }

    @Test func everyReplicaStalled_whileEveryEngineAnswers_failsNoNode() async {
        let t = tracker()
        let observed: [String: NodeObservation] = [
            "a": .reachable([container("a1"), container("a2")]), "b": .reachable([container("b1", on: "b"), container("b2", on: "b")]),
            "c": .reachable([]), "s": .reachable([]),
        ]
        _ = await check(t, observed, ready: ["a1", "a2", "b1", "b2"], at: 0)
        var health = FleetHealth()
        for second in 1...25 { health = await check(t, observed, ready: [], at: Double(second)) }
        #expect(health.notReady.isEmpty && health.demoted.isEmpty && health.promoted.isEmpty)
        let events = await t.takeEvents()
        #expect(!events.contains { $0.reason == .nodeFailed || $0.reason == .promotionStarted }, "\(events)")
        #expect(events.filter { $0.reason == .replicasFailingEverywhere }.map(\.name).sorted() == ["a", "b"], "one notice per node: \(events)")
        // Back to serving: nothing to undo.
        health = await check(t, observed, ready: ["a1", "a2", "b1", "b2"], at: 26)
        #expect(health.notReady.isEmpty && health.cordoned.isEmpty)
    }

    @Test func replicaHealth_failsAtMostOneNodePerWindow() async {
        let t = tracker()
        let observed: [String: NodeObservation] = [
            "a": .reachable([container("a1")]), "b": .reachable([container("b1", on: "b")]),
            "c": .reachable([container("c1", on: "c")]), "s": .reachable([]),
        ]
        _ = await check(t, observed, ready: ["a1", "b1", "c1"], at: 0)
        var health = FleetHealth()
        for second in 1...5 { health = await check(t, observed, ready: ["c1"], at: Double(second)) }
        #expect(health.notReady.count == 1, "a and b fail while c serves, but only one is failed: \(health.notReady)")
        #expect(health.cordoned.count == 1, "the other takes no new replicas")
        #expect(await t.takeEvents().contains { $0.reason == .nodeFailureLimited })
    }

    @Test func aWallClockJump_neitherFailsANodeNorEndsAPromotion() async {
        let t = tracker()
        let down: [String: NodeObservation] = ["a": .unreachable("connection refused"), "b": .reachable([]), "c": .reachable([]), "s": .reachable([])]
        _ = await check(t, ["a": .reachable([container("a1")]), "b": .reachable([]), "c": .reachable([]), "s": .reachable([])], ready: ["a1"], at: 0)
        _ = await t.evaluate(observed: down, ready: [], desired: desired, now: t0.addingTimeInterval(1), at: m0 + .seconds(1))
        // The wall clock jumps two hours; one second passes.
        let health = await t.evaluate(observed: down, ready: [], desired: desired, now: t0.addingTimeInterval(7_202), at: m0 + .seconds(2))
        #expect(health.notReady.isEmpty, "two checks one second apart are not three")
        #expect(await t.details("a").failedChecks == 2)
    }

    @Test func anUnreachableEngine_isSuspectFirst_thenFailed() async {
        let t = tracker()
        _ = await check(t, ["a": .reachable([container("c1")]), "s": .reachable([])], ready: ["c1"], at: 0)
        let down: [String: NodeObservation] = ["a": .unreachable("connection refused"), "s": .reachable([])]
        var health = await check(t, down, ready: [], at: 1)
        #expect(health.suspect["a"]?.map(\.id) == ["c1"] && health.notReady.isEmpty)
        health = await check(t, down, ready: [], at: 3.5)
        #expect(health.notReady == ["a"])
        #expect(await t.details("a").failure == "EngineUnreachable")
        // Back: an engine that was gone rejoins as a standby.
        health = await check(t, ["a": .reachable([]), "s": .reachable([])], ready: [], at: 5)
        #expect(health.demoted == ["a"])
    }

    @Test func aPromotionRequest_makesAStandbyActive_once() async {
        let t = tracker()
        let observed: [String: NodeObservation] = ["a": .reachable([]), "s": .reachable([])]
        let holds = ["s": NodeHold(node: "s", promote: true, author: "alice")]
        let health = await t.evaluate(observed: observed, ready: [], desired: desired, holds: holds)
        #expect(health.promoted == ["s"])
        #expect(await t.takePromotionsDone() == ["s"])
        #expect(await t.takeEvents().contains { $0.reason == .nodePromoted && $0.message.contains("alice") })
        #expect(await t.evaluate(observed: observed, ready: [], desired: desired).promoted == ["s"], "it stays promoted")
    }
}

extension NodeHealthTrackerTests {
    @Test func anActiveNodeThatRejoinedAsAStandby_isPromotedWhenAnotherFails() async {
        let t = tracker()
        let up: [String: NodeObservation] = ["a": .reachable([container("a1")]), "b": .reachable([container("b1", on: "b")]), "c": .reachable([]), "s": .reachable([])]
        _ = await check(t, up, ready: ["a1", "b1"], at: 0)
        // b fails and its replica goes to the standby s; b comes back and rejoins as a standby.
        var down = up
        down["b"] = .unreachable("connection refused")
        for second in 1...4 { _ = await check(t, down, ready: ["a1"], at: Double(second)) }
        var health = await check(t, ["a": .reachable([container("a1")]), "b": .reachable([]), "c": .reachable([]), "s": .reachable([])], ready: ["a1"], at: 5)
        #expect(health.promoted == ["s"] && health.demoted == ["b"])
        // Now a fails: b, standing by, takes its place (the declared standby is busy as an active node).
        let aDown: [String: NodeObservation] = ["a": .unreachable("gone"), "b": .reachable([]), "c": .reachable([]), "s": .reachable([])]
        for second in 6...9 { health = await check(t, aDown, ready: [], at: Double(second)) }
        #expect(health.notReady.contains("a") && health.demoted.isEmpty, "\(health)")
        #expect(await t.takeEvents().contains { $0.reason == .promotionStarted && $0.name == "b" })
    }
}

extension NodeHealthTrackerTests {
    @Test func anEngineBackWithItsOldReplicasUnready_stillRejoinsAsAStandby() async {
        let t = tracker()
        let up: [String: NodeObservation] = ["a": .reachable([container("a1")]), "b": .reachable([container("b1", on: "b")]), "c": .reachable([]), "s": .reachable([])]
        _ = await check(t, up, ready: ["a1", "b1"], at: 0)
        var down = up
        down["a"] = .unreachable("connection refused")
        for second in 1...4 { _ = await check(t, down, ready: ["b1"], at: Double(second)) }
        #expect(await t.details("a").failure == "EngineUnreachable")
        // The engine is back with a1, which was ready before and is not (yet) now, while chat serves on b.
        var health = await check(t, up, ready: ["b1"], at: 5)
        let kind = await t.details("a").failure
        #expect(health.notReady == ["a"] && kind == "EngineUnreachable", "the failure keeps its kind")
        // a1 removed (the plan fences it): the node rejoins as a standby, not as an active node.
        health = await check(t, ["a": .reachable([]), "b": .reachable([container("b1", on: "b")]), "c": .reachable([]), "s": .reachable([])], ready: ["b1"], at: 6)
        #expect(health.notReady.isEmpty && health.demoted == ["a"])
    }
}
