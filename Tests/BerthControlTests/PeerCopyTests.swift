import BerthControl
import Testing

@Suite("Copies from a node: the ports their file servers listen on")
struct PeerCopyTests {
    @Test(arguments: [
        ("7380-7395", 7380...7395), ("9000", 9000...9000), (" 8000 - 8001 ", 8000...8001),
    ])
    func rangesRead(text: String, expected: ClosedRange<Int>) {
        #expect(PeerCopy.ports(text) == expected)
    }

    @Test(arguments: ["", "-", "7395-7380", "0-10", "70000", "a-b", "1-2-3", "7380-"])
    func badRangesRefused(text: String) {
        #expect(PeerCopy.ports(text) == nil, "\(text)")
    }
}

@Suite("Copies from a node: which node each copy reads from")
struct PeerCopySourceTests {
    @Test func theOriginServesUpToItsLimit_thenTheCopyWaits() {
        #expect(PeerCopy.source(origin: "a", holders: [], serving: [:], limit: 2) == "a")
        #expect(PeerCopy.source(origin: "a", holders: [], serving: ["a": 1], limit: 2) == "a")
        #expect(PeerCopy.source(origin: "a", holders: [], serving: ["a": 2], limit: 2) == nil)
    }

    @Test func aHolderServingFewerCopiesGoesFirst_onATieAHolderBeforeTheOrigin() {
        #expect(PeerCopy.source(origin: "a", holders: ["b", "c"], serving: [:], limit: 2) == "b")
        #expect(PeerCopy.source(origin: "a", holders: ["b", "c"], serving: ["b": 1], limit: 2) == "c")
        #expect(PeerCopy.source(origin: "a", holders: ["b", "c"], serving: ["b": 1, "c": 1], limit: 2) == "a")
        #expect(PeerCopy.source(origin: "a", holders: ["b", "c"], serving: ["a": 2, "b": 2, "c": 2], limit: 2) == nil)
        #expect(PeerCopy.source(origin: "a", holders: ["a"], serving: ["a": 2], limit: 2) == nil, "the origin counts once")
    }

    @Test func aNodeWithNoCopyPortFree_isPassedOver_forABusierOne() {
        #expect(PeerCopy.source(origin: "a", holders: ["b"], serving: ["b": 1], limit: 2, full: ["a"]) == "b")
        #expect(PeerCopy.source(origin: "a", holders: ["b"], serving: [:], limit: 2, full: ["a", "b"]) == nil)
    }

    /// Rounds in which every copy takes one round: with every holder serving `limit` copies, a
    /// version held by one node reaches `nodes` nodes in about log_(limit+1)(nodes) rounds; from
    /// the origin alone it would take nodes / limit.
    @Test(arguments: [(16, 2, 3), (64, 2, 4), (64, 1, 6), (1000, 2, 7)])
    func aVersionSpreadsLikeATree(nodes: Int, limit: Int, rounds expected: Int) {
        var holders: Set<String> = ["n0"]
        var rounds = 0
        while holders.count < nodes {
            rounds += 1
            var serving: [String: Int] = [:]
            var copied: [String] = []
            for n in 0..<nodes where !holders.contains("n\(n)") {
                guard let from = PeerCopy.source(origin: "n0", holders: holders.sorted(), serving: serving, limit: limit) else { break }
                serving[from, default: 0] += 1
                copied.append("n\(n)")
            }
            #expect(serving.values.allSatisfy { $0 <= limit })
            holders.formUnion(copied)
        }
        #expect(rounds == expected, "\(nodes) nodes at \(limit) copies per source: \(rounds) rounds")
    }
}
