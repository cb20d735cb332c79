import BerthDocker
import BerthModel
@testable import BerthReconciler
import BerthTesting
import Foundation
import Testing

@Suite("Fencing, ages and paused containers")
struct FencingTests {
    @Test func execute_whenTheFenceRefuses_sendsNothingToAnyEngine() async {
        let desired = fleet(replicas: 2)
        let plan = Cluster().plan(desired)
        #expect(plan.actions.count == 2)
        let nodes = Dictionary(uniqueKeysWithValues: desired.compactMap { r in r.node.map { (r.name, $0) } })
        let asked = Counter()
        let results = await Reconciler(runtimes: ClientPool(), prober: HTTPProber()).execute(plan, nodes: nodes, fence: {
            await asked.add()
            return "the controller lease is held by other now"
        })
        #expect(results.count == 2)
        // Had anything been sent, the (absent) engines would have answered "unreachable".
        #expect(results.allSatisfy { $0.error == ActionError(.fenced, "not sent: the controller lease is held by other now") }, "\(results.map(\.error))")
        #expect(await asked.value >= 1)
    }

    @Test func readyDeadline_countsFromWhenTheControllerFirstSawTheContainerRun_notTheEngineClock() {
        let desired = fleet(replicas: 1, deadline: 60)
        var cluster = Cluster()
        cluster.run(cluster.plan(desired))
        // The node's clock is two hours behind: by the controller's wall clock the container was
        // created two hours ago, but this controller saw it start 5 s ago.
        for n in cluster.containers.keys {
            for i in cluster.containers[n]!.indices {
                cluster.containers[n]![i].created = cluster.now.addingTimeInterval(-7_200)
                cluster.containers[n]![i].seenRunningFor = 5
            }
        }
        let plan = cluster.plan(desired)
        let replica = plan.deployments[0].replicas[0]
        #expect(replica.phase == .starting, "\(replica.phase): \(replica.message)")
        #expect(plan.deployments[0].halted == nil)
    }

    @Test func aPausedContainer_isRunningAndUnhealthy_neverStarted() {
        let json = #"{"Id": "p1", "Names": ["/berth-chat-0-x"], "Image": "i", "State": "paused", "Created": 1, "Labels": {"io.berth.managed-by": "berth", "io.berth.deployment": "chat", "io.berth.replica": "0", "io.berth.spec-hash": "h", "io.berth.host-port": "21000"}}"#
        let summary = try! JSONDecoder().decode(ContainerSummary.self, from: Data(json.utf8))
        let observed = ObservedContainer(summary, node: "a")
        #expect(observed?.running == true && observed?.state == "paused")
    }

    @Test func aConflict_isANameConflictOnlyWhenTheEngineSaysSo() {
        #expect(DockerClient.conflictCode(#"conflict: the container name "/berth-chat-0-x" is already in use by container "ab""#.lowercased()) == .nameConflict)
        #expect(DockerClient.conflictCode("cannot start a paused container, try unpause instead") == .stateConflict)
        #expect(DockerClient.conflictCode("removal of container ab is already in progress") == .stateConflict)
    }
}

actor Counter {
    var value = 0
    func add() { value += 1 }
}
