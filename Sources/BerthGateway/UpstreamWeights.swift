import BerthModel

/// A replica that could take a gateway's traffic.
public struct Candidate: Sendable, Hashable {
    public var deployment: String
    public var replica: Int
    public var endpoint: String
    /// The deployment's per-replica weight.
    public var weight: Int
    public var ready: Bool
    /// Set when the replica is about to be stopped: it leaves the upstream first.
    public var leaving: String?

    public init(deployment: String, replica: Int, endpoint: String, weight: Int = 1, ready: Bool, leaving: String? = nil) {
        self.deployment = deployment
        self.replica = replica
        self.endpoint = endpoint
        self.weight = weight
        self.ready = ready
        self.leaving = leaving
    }
}

extension Candidate: CustomStringConvertible {
    /// The form Swift's reflection prints a struct in, which weight tie-breaks have always sorted by.
    public var description: String {
        "Candidate(deployment: \(quoted(deployment)), replica: \(replica), endpoint: \(quoted(endpoint)), "
            + "weight: \(weight), ready: \(ready), leaving: \(leaving.map { "Optional(\(quoted($0)))" } ?? "nil"))"
    }

    /// `String(reflecting:)` of a string, without its cost for the plain ones names and endpoints are.
    private func quoted(_ s: String) -> String {
        s.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") } ? "\"" + s + "\"" : String(reflecting: s)
    }
}

/// Turns route weights and replica weights into nginx server weights. Pure.
///
/// A route's weight is its deployment's share of the traffic, however many replicas it has: a
/// 90/10 split between a deployment of 9 replicas and one of 1 is 90/10 in requests, not 9 to 1
/// per replica. Inside a deployment, traffic divides by the replicas' own weights. Deployments
/// with no replica in service drop out and the others share all traffic. Shares become integers
/// summing to at most `scale` (largest remainders, every member at least 1), divided by their
/// greatest common divisor.
public enum UpstreamWeights {
    public static let scale = 1000

    public static func members(routes: [Route], candidates: [Candidate]) -> [UpstreamMember] {
        let inService = candidates.filter { $0.ready && $0.leaving == nil }
        let byDeployment = Dictionary(grouping: inService, by: \.deployment)
        let routed = routes.filter { $0.weight > 0 && !(byDeployment[$0.deployment] ?? []).isEmpty }
        let routeTotal = Double(routed.reduce(0) { $0 + $1.weight })
        var shares: [Candidate: Double] = [:]
        for route in routed {
            let replicas = byDeployment[route.deployment]!
            let replicaTotal = Double(replicas.reduce(0) { $0 + max(1, $1.weight) })
            for r in replicas {
                shares[r] = Double(route.weight) / routeTotal * Double(max(1, r.weight)) / replicaTotal
            }
        }
        let weights = integerWeights(shares)
        let routedNames = Set(routes.map(\.deployment))
        return candidates.filter { routedNames.contains($0.deployment) }.map { c in
            let reason: String =
                if let leaving = c.leaving { "leaving: \(leaving)" }
                else if !c.ready { "not ready" }
                else if shares[c] == nil { "route weight 0" }
                else { "" }
            return UpstreamMember(deployment: c.deployment, replica: c.replica, endpoint: c.endpoint, weight: weights[c] ?? 0,
                                  share: shares[c] ?? 0, inService: shares[c] != nil, reason: reason)
        }.sorted { ($0.deployment, $0.replica, $0.endpoint) < ($1.deployment, $1.replica, $1.endpoint) }
    }

    /// Largest-remainder rounding of `shares` (summing to 1) to integers summing to `scale`, each ≥ 1,
    /// then reduced by their greatest common divisor.
    static func integerWeights<K: Hashable>(_ shares: [K: Double]) -> [K: Int] {
        guard !shares.isEmpty else { return [:] }
        let keys = Array(shares.keys)
        var ints = keys.map { max(1, Int((shares[$0]! * Double(scale)).rounded(.down))) }
        var left = scale - ints.reduce(0, +)
        // Ties go by the keys' descriptions, made once each (a Candidate writes its own, in the
        // form reflection gave: reflecting inside the comparator was a sixth of a simulated pass).
        let names = keys.map { "\($0)" }
        let remainders = keys.indices.map { shares[keys[$0]]! * Double(scale) - Double(ints[$0]) }
        let order = keys.indices.sorted { a, b in
            remainders[a] != remainders[b] ? remainders[a] > remainders[b] : names[a] < names[b]
        }
        var i = 0
        while left > 0 && !order.isEmpty {
            ints[order[i % order.count]] += 1
            left -= 1
            i += 1
        }
        let divisor = ints.reduce(0) { gcd($0, $1) }
        var result: [K: Int] = [:]
        for (k, w) in zip(keys, ints) { result[k] = w / max(1, divisor) }
        return result
    }

    static func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
}
