import BerthModel
import BerthStore
import Foundation
import Testing

@Suite("Node holds")
struct NodeHoldTests {
    @Test(arguments: Backing.available)
    func cordonDrainUncordon_andPromotionRequests_areKeptWithEvents(_ backing: Backing) throws {
        let store = try backing.store()
        try store.change(node: "gpu-1", .cordon, author: "alice", reason: "fan noise")
        #expect(try store.nodeHolds()["gpu-1"].map { ($0.cordoned, $0.draining, $0.author) } ?? (false, false, "") == (true, false, "alice"))
        try store.change(node: "gpu-1", .drain, author: "bob", reason: "")
        #expect(try store.nodeHolds()["gpu-1"]?.draining == true)
        try store.change(node: "gpu-1", .uncordon, author: "alice", reason: "fixed")
        #expect(try store.nodeHolds().isEmpty, "an empty hold leaves no row")

        try store.change(node: "standby-1", .promote, author: "carol", reason: "")
        #expect(try store.nodeHolds()["standby-1"]?.promote == true)
        try store.promotionDone(node: "standby-1")
        #expect(try store.nodeHolds().isEmpty)

        let events = try store.events(kind: "node", name: "gpu-1").map { "\($0.reason): \($0.message)" }
        #expect(events == ["NodeUncordoned: uncordon by alice: fixed", "NodeDraining: drain by bob", "NodeCordoned: cordon by alice: fan noise"])
    }

    @Test(arguments: Backing.available)
    func holdsAreNotPartOfTheDesiredState(_ backing: Backing) throws {
        let store = try backing.store()
        try store.change(node: "gpu-1", .cordon, author: "alice", reason: "")
        #expect(try store.latestRevision() == nil, "no revision for a hold")
    }
}
