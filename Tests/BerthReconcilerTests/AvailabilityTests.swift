import BerthModel
@testable import BerthReconciler
import BerthRuntime
import BerthTesting
import Foundation
import Testing

/// Rules that keep replicas serving and GPUs unshared, each found broken by the simulator.
@Suite("Availability: serving replicas and GPUs")
struct AvailabilityTests {
    /// `c` as if it ran on `node` too, under another id (left there by a node that came back).
    func copy(_ c: ObservedContainer, to node: String, id: String) -> ObservedContainer {
        var d = c
        d.node = node
        d.id = id
        return d
    }

    @Test func aSlotWaitingInARollout_keepsOneOldContainer_andRemovesASecondOneLeftOnAReturnedNode() {
        var cluster = Cluster(nodes: ["a", "b", "c"])
        let v1 = fleet(replicas: 2, nodes: ["a", "b", "c"], maxSurge: 1)
        cluster.run(cluster.plan(v1))
        cluster.markAllReady()
        let slot0 = cluster.all.first { $0.replica == 0 }!
        let other = ["a", "b", "c"].first { $0 != slot0.node && !cluster.containers[$0]!.contains { $0.replica == 1 } }!
        cluster.containers[other]!.append(copy(slot0, to: other, id: "left-behind"))
        cluster.ready.insert("left-behind")
        let plan = cluster.plan(fleet(replicas: 2, version: "v2", nodes: ["a", "b", "c"], maxSurge: 1), revision: 2)
        let removals = plan.actions.compactMap { if case .remove(_, let id, _, let reason) = $0 { (id, reason) } else { nil } }
        #expect(removals.count == 1 && removals.first.map { [slot0.id, "left-behind"].contains($0.0) } == true, "\(plan.actions)")
        #expect(removals.first?.1.contains("a second container for replica 0") == true, "\(removals)")
    }

    /// Seed 1163: a rollout of one replica (maxSurge 1, maxUnavailable 0) began while a second
    /// ready container, left on a node that came back, was failing its checks within its grace.
    /// Counted as ready, it let the plan replace the only sound replica in place: none served.
    @Test func aRollout_countsNoReplicaFailingItsChecks_towardWhatItMayTakeDown() {
        var cluster = Cluster(nodes: ["a", "b"])
        cluster.run(cluster.plan(fleet(replicas: 1, nodes: ["a", "b"], maxSurge: 1)))
        cluster.markAllReady()
        let serving = cluster.all.first { $0.replica == 0 }!
        let other = serving.node == "a" ? "b" : "a"
        // The left-over holds the surge slot (replica 1), as in the seed.
        var left = copy(serving, to: other, id: "stalled")
        left.replica = 1
        left.name = serving.name.replacingOccurrences(of: "-0-", with: "-1-")
        cluster.containers[other]!.append(left)
        cluster.ready.insert("stalled")
        var health = FleetHealth()
        health.failingChecks = ["stalled"]
        let v2 = fleet(replicas: 1, version: "v2", nodes: ["a", "b"], maxSurge: 1)
        let plan = cluster.plan(v2, revision: 2, health: health)
        let removed = plan.actions.compactMap { if case .remove(_, let id, _, _) = $0 { id } else { nil } }
        #expect(!removed.contains(serving.id), "the only sound replica must serve until its successor is ready: \(plan.actions)")
        // Passing its checks, the second container counts: the slot may be replaced in place.
        let trusting = cluster.plan(v2, revision: 2)
        let removedTrusting = trusting.actions.compactMap { if case .remove(_, let id, _, _) = $0 { id } else { nil } }
        #expect(!removedTrusting.isEmpty, "with two sound replicas one may go: \(trusting.actions)")
    }

    @Test func aScaleDown_keepsAReadyReplicaPastTheCount_untilTheCountIsReady() {
        var cluster = Cluster(nodes: ["a", "b"])
        cluster.run(cluster.plan(fleet(replicas: 3, gpusPerNode: 2)))
        cluster.markAllReady()
        // Replica 0 stops answering; the operator scales to 1.
        let zero = cluster.all.first { $0.replica == 0 }!
        cluster.ready.remove(zero.id)
        var plan = cluster.plan(fleet(replicas: 1, gpusPerNode: 2), revision: 2)
        let removed = plan.actions.compactMap { if case .remove(_, _, let name, _) = $0 { name } else { nil } }
        #expect(removed.count == 1, "one of the two past the count goes, one serves: \(plan.actions)")
        #expect(plan.deployments[0].replicas.contains { $0.slot > 0 && $0.phase == .ready && $0.message.contains("serves until 1 replica(s) are ready") })
        cluster.run(plan)
        cluster.ready.insert(zero.id)
        plan = cluster.plan(fleet(replicas: 1, gpusPerNode: 2), revision: 2)
        #expect(plan.actions.count == 1 && plan.actions.allSatisfy(\.isRemove), "replica 0 answers again: the last one past the count goes: \(plan.actions)")
    }

    @Test func aReadyReplicaPastTheCount_holdsItsGPUs_againstNewPlacements() {
        var cluster = Cluster(nodes: ["a"])
        cluster.run(cluster.plan(fleet(replicas: 2, nodes: ["a"], gpusPerNode: 2)))
        cluster.markAllReady()
        // Replica 0 vanished; scaled to 1: replica 1 serves on its GPU, replica 0 needs the other.
        let one = cluster.all.first { $0.replica == 1 }!
        cluster.containers["a"]!.removeAll { $0.replica == 0 }
        let plan = cluster.plan(fleet(replicas: 1, nodes: ["a"], gpusPerNode: 2), revision: 2)
        for case .create(_, let c) in plan.actions { #expect(Set(c.placement.gpus).isDisjoint(with: one.gpus), "placed on \(c.placement.gpus), held by \(one.gpus)") }
        let removes = plan.actions.filter(\.isRemove)
        #expect(removes.isEmpty, "\(removes)")
    }

    @Test func aSlotWithContainersOnAStandbyAndAnActive_staysOnTheActive_andItsGPUsAreBooked() {
        var cluster = Cluster(nodes: ["a", "b"])
        cluster.run(cluster.plan(fleet(replicas: 1, nodes: ["a", "b"])))
        cluster.markAllReady()
        let zero = cluster.all[0]
        let elsewhere = zero.node == "a" ? "b" : "a"
        // The node it ran on failed and came back as a standby, after the replica was made anew elsewhere
        // on the same GPU index.
        cluster.containers[elsewhere]!.append(copy(zero, to: elsewhere, id: "anew"))
        cluster.ready.insert("anew")
        var health = FleetHealth()
        health.demoted = [zero.node]
        let plan = cluster.plan(fleet(replicas: 2, nodes: ["a", "b"]), revision: 2, health: health)
        for case .create(let node, let c) in plan.actions where node == elsewhere {
            #expect(!c.placement.gpus.contains(zero.gpus[0]), "GPU \(zero.gpus[0]) of \(elsewhere) serves replica 0: \(plan.actions)")
        }
        #expect(plan.actions.contains { if case .remove(let n, let id, _, _) = $0 { n == zero.node && id == zero.id } else { false } }, "\(plan.actions)")
    }
}

/// An engine for the executor's decisions: records what it is asked, fails removals of chosen ids.
actor RecordingRuntime: ContainerRuntime {
    nonisolated let location = "test://engine"
    let failRemovals: Set<String>
    var calls: [String] = []

    init(failRemovals: Set<String> = []) { self.failRemovals = failRemovals }

    nonisolated func listContainers(labels: [String], timeout: Duration) async throws -> [ContainerSummary] { [] }
    func ensureContainer(_ planned: PlannedContainer) async throws -> (id: String, outcome: EnsureOutcome) {
        calls.append("create \(planned.name)")
        return ("new-" + planned.name, .created)
    }
    func startContainer(_ id: String) async throws { calls.append("start \(id)") }
    func stopContainer(_ id: String, grace: Duration) async throws { calls.append("stop \(id)") }
    func removeContainer(_ id: String, force: Bool) async throws {
        calls.append("remove \(id)")
        if failRemovals.contains(id) { throw RuntimeError(.engine, endpoint: location, operation: "remove container \(id)", message: "driver busy") }
    }
    nonisolated func events(labels: [String], since: Date?) -> AsyncThrowingStream<DockerEvent, any Error> { AsyncThrowingStream { $0.finish() } }
    nonisolated func pullImage(_ reference: String, auth: RegistryAuth?, timeout: Duration,
                               progress: (@Sendable (_ done: Int64, _ total: Int64) -> Void)?) async throws {}
    nonisolated func hasImage(_ reference: String) async throws -> Bool { true }
    nonisolated func listImages() async throws -> [ImageSummary] { [] }
    nonisolated func removeImage(_ reference: String, force: Bool) async throws {}
}

struct OneRuntime: RuntimeProvider {
    let runtime: RecordingRuntime
    func runtime(for engine: EngineEndpoint) async throws -> any ContainerRuntime { runtime }
    func forget(_ engine: EngineEndpoint) async {}
}

struct NoProbe: ReplicaProber {
    func status(_ url: String, timeout: Duration) async -> Int? { nil }
}

@Suite("Executor: never two containers on one GPU")
struct ExecutorGuardTests {
    func replacement() -> (plan: Plan, old: ObservedContainer, nodes: [String: NodeSpec]) {
        var cluster = Cluster(nodes: ["a"])
        let v1 = fleet(replicas: 1, nodes: ["a"], gpusPerNode: 1)
        cluster.run(cluster.plan(v1))
        cluster.markAllReady()
        let old = cluster.all[0]
        // maxUnavailable 1 on one GPU: the new version replaces the old in place (remove, then create on its GPU).
        let v2 = fleet(replicas: 1, version: "v2", nodes: ["a"], gpusPerNode: 1, maxUnavailable: 1)
        let nodes = Dictionary(uniqueKeysWithValues: v2.compactMap { r in r.node.map { (r.name, $0) } })
        return (cluster.plan(v2, revision: 2), old, nodes)
    }

    @Test func aCreate_whoseGPUAContainerStillHolds_becauseItsRemovalFailed_isNotSent() async {
        let (plan, old, nodes) = replacement()
        #expect(plan.actions.contains(where: \.isRemove) && plan.actions.contains(where: \.isCreate), "\(plan.actions)")
        let engine = RecordingRuntime(failRemovals: [old.id])
        let results = await Reconciler(runtimes: OneRuntime(runtime: engine), prober: NoProbe()).execute(plan, nodes: nodes, occupying: [old.id: old])
        #expect(await engine.calls == ["remove \(old.id)"], "nothing created on its GPU")
        let remove = results.first { $0.action.isRemove }
        #expect(remove?.error?.code == .engine && remove?.error?.runtime == .engine && remove?.error?.sent == true, "the engine refused it: \(String(describing: remove?.error))")
        let create = results.first { $0.action.isCreate }
        #expect(create?.error?.code == .resourcesHeld && create?.error?.sent == false)
        #expect(create?.error?.description.contains("still holds GPU(s) \(old.gpus[0])") == true && create?.error?.description.contains("driver busy") == true, "\(results.map(\.error))")
    }

    @Test func aCreate_afterTheRemovalWentThrough_isSent() async {
        let (plan, old, nodes) = replacement()
        let engine = RecordingRuntime()
        let results = await Reconciler(runtimes: OneRuntime(runtime: engine), prober: NoProbe()).execute(plan, nodes: nodes, occupying: [old.id: old])
        #expect(results.allSatisfy { $0.error == nil }, "\(results.map(\.error))")
        let calls = await engine.calls
        #expect(calls.count == 3, "remove, create, start: \(calls)")
    }

    @Test func aCreate_onAGPUARunningContainerHolds_thatThePlanKeeps_isNotSent() async {
        let (plan, old, nodes) = replacement()
        var creates = plan
        creates.actions = plan.actions.filter(\.isCreate)
        let engine = RecordingRuntime()
        let results = await Reconciler(runtimes: OneRuntime(runtime: engine), prober: NoProbe()).execute(creates, nodes: nodes, occupying: [old.id: old])
        #expect(await engine.calls.isEmpty)
        #expect(results.first?.error?.code == .resourcesHeld && results.first?.error?.description.contains("it runs and is not being removed") == true, "\(results.map(\.error))")
    }
}

@Suite("Availability: slots without a place, one container per endpoint")
struct UnplacedAndEndpointTests {
    @Test func aSlotThatCannotBePlacedAgain_keepsItsServingContainerOnAStandby() {
        var cluster = Cluster(nodes: ["a", "b"])
        let desired = fleet(replicas: 2, nodes: ["a", "b"], gpusPerNode: 1)
        cluster.run(cluster.plan(desired))
        cluster.markAllReady()
        let onB = cluster.containers["b"]![0]
        // b failed and came back as a standby: a has no GPU left for its replica.
        var health = FleetHealth()
        health.demoted = ["b"]
        let plan = cluster.plan(desired, health: health)
        let removes = plan.actions.filter(\.isRemove)
        #expect(removes.isEmpty, "the only serving copy of replica \(onB.replica) stays: \(removes)")
        let slot = plan.deployments[0].replicas.first { $0.slot == onB.replica }
        #expect(slot?.phase == .unschedulable && slot?.message.contains("\(onB.name) on b serves it meanwhile") == true, "\(String(describing: slot))")
        #expect(plan.deployments[0].ready == 2)
    }

    @Test func twoContainersOnOneEndpoint_theRunningOneIsRouted_andTheExitedOneIsNotHeld() {
        var cluster = Cluster(nodes: ["a"])
        let desired = fleet(replicas: 1, nodes: ["a"], gpusPerNode: 2)
        cluster.run(cluster.plan(desired))
        cluster.markAllReady()
        var old = cluster.all[0]
        old.id = "old"
        old.running = false
        old.state = "exited"
        cluster.containers["a"]!.append(old)
        let spec = GatewaySpec(listen: 8080, routes: [Route(deployment: "chat", weight: 1)])
        let (members, byEndpoint) = GatewayMembership.upstream(spec: spec, desired: desired, observed: cluster.observed, ready: cluster.ready,
                                                               leaving: ["old": "replaced"])
        #expect(members.count == 1 && members[0].inService, "\(members)")
        #expect(byEndpoint.values.map(\.id) == [cluster.all[0].id], "the running container stands behind the endpoint")
    }
}
