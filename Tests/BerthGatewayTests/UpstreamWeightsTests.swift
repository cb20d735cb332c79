import BerthGateway
import BerthModel
import BerthTesting
import Testing

func replicas(_ deployment: String, _ count: Int, port: Int, ready: Bool = true, weight: Int = 1) -> [Candidate] {
    (0..<count).map { Candidate(deployment: deployment, replica: $0, endpoint: "10.0.0.1:\(port + $0)", weight: weight, ready: ready) }
}

/// Traffic share per deployment implied by integer nginx weights.
func trafficShares(_ members: [UpstreamMember]) -> [String: Double] {
    let serving = members.filter(\.inService)
    let total = Double(serving.reduce(0) { $0 + $1.weight })
    return Dictionary(grouping: serving, by: \.deployment).mapValues { Double($0.reduce(0) { $0 + $1.weight }) / total }
}

@Suite("Upstream weights")
struct UpstreamWeightsTests {
    @Test func canarySplit_isPerDeployment_notPerReplica() {
        let members = UpstreamWeights.members(
            routes: [Route(deployment: "chat", weight: 90), Route(deployment: "canary", weight: 10)],
            candidates: replicas("chat", 3, port: 1000) + replicas("canary", 1, port: 2000))
        #expect(members.filter { $0.deployment == "chat" }.map(\.weight) == [3, 3, 3])
        #expect(members.filter { $0.deployment == "canary" }.map(\.weight) == [1])
        let shares = trafficShares(members)
        #expect(abs(shares["chat"]! - 0.9) < 1e-9 && abs(shares["canary"]! - 0.1) < 1e-9)
    }

    @Test func replicasThatAreNotReadyOrLeaving_areOut_withTheReason() {
        var candidates = replicas("chat", 3, port: 1000)
        candidates[1].ready = false
        candidates[2].leaving = "replaced by berth-chat-2-abc"
        let members = UpstreamWeights.members(routes: [Route(deployment: "chat", weight: 1)], candidates: candidates)
        #expect(members.map(\.inService) == [true, false, false])
        #expect(members[1].reason == "not ready")
        #expect(members[2].reason == "leaving: replaced by berth-chat-2-abc")
        #expect(members[0].weight == 1 && members[1].weight == 0)
    }

    @Test func aDeploymentWithNothingReady_dropsOut_theOthersTakeAllTraffic() {
        let members = UpstreamWeights.members(
            routes: [Route(deployment: "chat", weight: 90), Route(deployment: "canary", weight: 10)],
            candidates: replicas("chat", 2, port: 1000) + replicas("canary", 1, port: 2000, ready: false))
        #expect(trafficShares(members) == ["chat": 1.0])
    }

    @Test func replicaWeights_divideTheDeploymentsShare() {
        let members = UpstreamWeights.members(
            routes: [Route(deployment: "big", weight: 50), Route(deployment: "small", weight: 50)],
            candidates: replicas("big", 2, port: 1000, weight: 3) + replicas("small", 1, port: 2000, weight: 1))
        #expect(members.map(\.weight) == [1, 1, 2], "big: 25 % each, small: 50 %")
    }

    @Test func extremeWeights_areReducedToNginxsRange_andNoServedReplicaGetsZero() {
        let members = UpstreamWeights.members(
            routes: [Route(deployment: "a", weight: 1), Route(deployment: "b", weight: 1_000_000)],
            candidates: replicas("a", 7, port: 1000) + replicas("b", 3, port: 2000))
        #expect(members.allSatisfy { $0.weight >= 1 && $0.weight <= UpstreamWeights.scale })
        #expect(members.reduce(0) { $0 + $1.weight } <= UpstreamWeights.scale + 10)
        #expect(trafficShares(members)["b"]! > 0.98)
    }

    /// Over random fleets: every ready, staying replica of a routed deployment is in with weight
    /// ≥ 1, nothing else is, and each deployment's traffic is its route's share within rounding.
    @Test func randomFleets_keepEachRoutesShare() {
        var rng = SeededGenerator(state: 42)
        for _ in 0..<300 {
            let names = ["a", "b", "c", "d"].prefix(Int(rng.next() % 4) + 1)
            let routes = names.map { Route(deployment: $0, weight: Int(rng.next() % 100)) }
            var candidates: [Candidate] = []
            for (i, n) in names.enumerated() {
                for var c in replicas(n, Int(rng.next() % 6), port: 1000 * (i + 1), weight: Int(rng.next() % 3) + 1) {
                    c.ready = rng.next() % 5 != 0
                    if rng.next() % 7 == 0 { c.leaving = "going" }
                    candidates.append(c)
                }
            }
            let members = UpstreamWeights.members(routes: routes, candidates: candidates)
            let weightOf = Dictionary(uniqueKeysWithValues: routes.map { ($0.deployment, $0.weight) })
            for m in members {
                let c = candidates.first { $0.endpoint == m.endpoint }!
                #expect(m.inService == (c.ready && c.leaving == nil && weightOf[c.deployment]! > 0))
                #expect(m.inService ? m.weight >= 1 : m.weight == 0)
            }
            let live = Set(members.filter(\.inService).map(\.deployment))
            let total = Double(routes.filter { live.contains($0.deployment) }.reduce(0) { $0 + $1.weight })
            let shares = trafficShares(members)
            for route in routes where live.contains(route.deployment) {
                let replicasIn = members.filter { $0.inService && $0.deployment == route.deployment }.count
                // Each member can be off by one unit of 1/scale, plus the minimum of 1.
                #expect(abs(shares[route.deployment]! - Double(route.weight) / total) <= Double(2 * replicasIn + 2) / Double(UpstreamWeights.scale),
                        "\(routes) \(members)")
            }
        }
    }
}

@Suite("Upstream weights: tie-break order")
struct CandidateDescriptionTests {
    /// Weight ties are broken by a candidate's description: it must read exactly as reflection
    /// printed the struct before it wrote its own, or rendered weights would change.
    @Test(arguments: [nil, "replaced by berth-chat-1-abc"])
    func aCandidatesDescription_isWhatReflectionPrinted(leaving: String?) {
        let c = Candidate(deployment: "chat", replica: 12, endpoint: "10.0.0.1:21012", weight: 3, ready: true, leaving: leaving)
        let fields = Mirror(reflecting: c).children.map { "\($0.label!): \(String(reflecting: $0.value))" }
        #expect(c.description == "Candidate(" + fields.joined(separator: ", ") + ")")
    }
}
