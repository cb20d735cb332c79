import BerthModel
import BerthScheduler
import Testing

@Suite("What if nodes are lost")
struct WhatIfTests {
    func fleet(_ nodes: [NodeState], _ deployments: [DeploymentRequest]) -> FleetInput {
        var f = FleetInput([])
        f.nodes = nodes
        f.deployments = deployments
        return f
    }

    @Test func aLostActiveIsReplacedByTheStandby_andItsReplicaMovesThere() {
        let f = fleet([node("a"), node("b"), node("s", role: .standby)], [deployment("chat", replicas: 2, gpus: 8)])
        let o = WhatIf.losing(["b"], f)
        #expect(o.fits && o.promoted == ["s"])
        #expect(o.moves.count == 1 && o.moves[0].from == ["b"] && o.moves[0].to?.map(\.node) == ["s"], "\(o.moves)")
    }

    @Test func withoutAStandby_theSameLossDoesNotFit_andSaysWhy() {
        let f = fleet([node("a"), node("b")], [deployment("chat", replicas: 2, gpus: 8)])
        let o = WhatIf.losing(["b"], f)
        #expect(!o.fits && o.promoted.isEmpty)
        #expect(o.unplaced.count == 1 && o.unplaced[0].reason.contains("b not ready") && o.unplaced[0].reason.contains("a has 0 free"), "\(o.unplaced)")
        #expect(o.moves.count == 1 && o.moves[0].to == nil)
    }

    @Test func oneStandbyForTwoLostActives_oneReplicaIsLeftOver() {
        let f = fleet([node("a"), node("b"), node("c"), node("s", role: .standby)], [deployment("chat", replicas: 3, gpus: 8)])
        let o = WhatIf.losing(["a", "b"], f)
        #expect(o.promoted == ["s"] && o.moves.count == 2)
        #expect(o.unplaced.count == 1, "\(o.unplaced)")
    }

    @Test func freeGPUsOnTheOtherActives_absorbTheLossWithoutAStandby() {
        let f = fleet([node("a"), node("b")], [deployment("chat", replicas: 2, gpus: 2)])
        let o = WhatIf.losing(["a"], f)
        #expect(o.fits && o.promoted.isEmpty && o.moves.first?.to?.first?.node == "b")
    }

    @Test func theStandbyWithTheMostGPUsIsPromoted_asFailoverWould() {
        let f = fleet([node("a"), node("s1", gpus: 4, role: .standby), node("s2", gpus: 8, role: .standby)], [deployment("chat", gpus: 8)])
        #expect(WhatIf.losing(["a"], f).promoted == ["s2"])
    }

    @Test func losingAStandby_movesNothing() {
        let f = fleet([node("a"), node("s", role: .standby)], [deployment("chat", gpus: 8)])
        let o = WhatIf.losing(["s"], f)
        #expect(o.fits && o.moves.isEmpty && o.promoted.isEmpty)
    }

    @Test func whatNeverFit_isNotCountedAgainstTheLoss() {
        let f = fleet([node("a"), node("s", role: .standby)], [deployment("chat", gpus: 8), deployment("nowhere", selector: ["zone": "x"])])
        let o = WhatIf.losing(["a"], f)
        #expect(o.fits && o.alreadyUnplaced.count == 1 && o.alreadyUnplaced[0].deployment == "nowhere")
    }

    @Test func nPlusOne_asksForEachActiveNode() {
        let f = fleet([node("a"), node("b", gpus: 4), node("s", gpus: 4, role: .standby)], [deployment("big", gpus: 8), deployment("small", gpus: 4)])
        let all = WhatIf.losingAnyOne(f)
        #expect(all.map(\.lost) == [["a"], ["b"]])
        // Losing a (the only 8-GPU node) strands `big`; losing b, the standby takes `small`.
        #expect(!all[0].fits && all[0].unplaced.map(\.deployment) == ["big"], "\(all[0])")
        #expect(all[1].fits, "\(all[1])")
    }
}
