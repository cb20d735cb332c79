import BerthGateway
import BerthModel

/// Which replicas a gateway sends traffic to, and with what weight: the one rule the controller's
/// gateway step, `berth gateway` and the simulator all use. A multi-node replica is served by its
/// leader (rank 0) alone; a replica is in service when it is ready and not about to be removed.
public enum GatewayMembership {
    /// The removals `plan` makes, by container id, with why: those replicas leave the upstream first.
    public static func leaving(_ plan: Plan) -> [String: String] {
        var leaving: [String: String] = [:]
        for case .remove(_, let id, _, let reason) in plan.actions { leaving[id] = reason }
        return leaving
    }

    /// The upstream of `spec` from what a pass saw, with the observed container behind each endpoint.
    public static func upstream(spec: GatewaySpec, desired: [Resource], observed: [String: NodeObservation], ready: Set<String>,
                                leaving: [String: String]) -> (members: [UpstreamMember], byEndpoint: [String: ObservedContainer]) {
        let addresses = Dictionary(uniqueKeysWithValues: desired.compactMap { r in r.node.map { (r.name, $0.address) } })
        let deployments = Dictionary(uniqueKeysWithValues: desired.compactMap { r in r.deployment.map { (r.name, $0) } })
        let routed = Set(spec.routes.map(\.deployment))
        // One container per endpoint: a replacement made on its predecessor's port while the old
        // one, exited, waits for its removal is the one behind the endpoint (else the old one
        // would be held back forever as "still routed").
        func better(_ a: ObservedContainer, than b: ObservedContainer) -> Bool {
            (a.running ? 0 : 1, leaving[a.id] == nil ? 0 : 1, a.id) < (b.running ? 0 : 1, leaving[b.id] == nil ? 0 : 1, b.id)
        }
        var byEndpoint: [String: ObservedContainer] = [:]
        for c in observed.values.flatMap(\.containers) where routed.contains(c.deployment) && c.rank == 0 && deployments[c.deployment] != nil {
            let endpoint = endpoint(address: addresses[c.node] ?? "127.0.0.1", port: c.hostPort)
            if let seen = byEndpoint[endpoint], !better(c, than: seen) { continue }
            byEndpoint[endpoint] = c
        }
        let candidates = byEndpoint.map { endpoint, c in
            Candidate(deployment: c.deployment, replica: c.replica, endpoint: endpoint, weight: deployments[c.deployment]!.weight,
                      ready: c.running && ready.contains(c.id), leaving: leaving[c.id])
        }
        return (UpstreamWeights.members(routes: spec.routes, candidates: candidates), byEndpoint)
    }

    /// The upstream of `spec` with the replicas a stored status reports ready.
    public static func upstream(spec: GatewaySpec, desired: [Resource], status: FleetStatus) -> [UpstreamMember] {
        let addresses = Dictionary(uniqueKeysWithValues: desired.compactMap { r in r.node.map { (r.name, $0.address) } })
        let weights = Dictionary(uniqueKeysWithValues: desired.compactMap { r in r.deployment.map { (r.name, $0.weight) } })
        var candidates: [Candidate] = []
        for d in status.deployments {
            guard let weight = weights[d.name] else { continue }
            for r in d.replicas {
                guard let node = r.node, let port = r.hostPort else { continue }
                candidates.append(Candidate(deployment: d.name, replica: r.slot, endpoint: endpoint(address: addresses[node] ?? node, port: port),
                                            weight: weight, ready: r.phase == .ready))
            }
        }
        return UpstreamWeights.members(routes: spec.routes, candidates: candidates)
    }

    /// `ADDRESS:PORT`, as nginx's `server` lines name a replica.
    public static func endpoint(address: String, port: Int) -> String { "\(address):\(port)" }
}
