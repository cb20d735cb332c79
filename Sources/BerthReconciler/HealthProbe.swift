import BerthModel
import BerthRuntime
import Foundation

/// The one readiness check of a replica, used by the reconcile pass, the loop's readiness watch,
/// failover's verdicts (through the pass) and `berth doctor`: a GET of the deployment's health
/// path on the replica's node and port, ready when it answers 200 within the check's timeout.
/// Change probing here and every user follows.
public struct HealthProbe: Sendable {
    public let transport: any ReplicaProber

    public init(_ transport: any ReplicaProber) {
        self.transport = transport
    }

    /// A replica's health endpoint: the node's address, the replica's host port (or, with host
    /// networking, the check's own port when it names one) and the check's path.
    public static func url(node: NodeSpec, deployment: DeploymentSpec, hostPort: Int) -> String {
        base(node: node, deployment: deployment, hostPort: hostPort) + deployment.health.path
    }

    /// `http://ADDRESS:PORT` where the replica's health check listens; other paths of the same
    /// server (Triton's `/v2/health/live`) are asked there too.
    public static func base(node: NodeSpec, deployment: DeploymentSpec, hostPort: Int) -> String {
        let port = node.network == .host ? (deployment.health.port ?? hostPort) : hostPort
        return "http://\(node.address):\(port)"
    }

    /// The check's own timeout, at least a second.
    public static func timeout(_ deployment: DeploymentSpec) -> Duration {
        .seconds(max(1, deployment.health.timeoutSeconds))
    }

    /// The status one replica's endpoint answered (nil: nothing answered in time).
    public func status(node: NodeSpec, deployment: DeploymentSpec, hostPort: Int, timeout: Duration? = nil) async -> Int? {
        await transport.status(Self.url(node: node, deployment: deployment, hostPort: hostPort), timeout: timeout ?? Self.timeout(deployment))
    }

    /// Whether one replica answers 200.
    public func isReady(node: NodeSpec, deployment: DeploymentSpec, hostPort: Int, timeout: Duration? = nil) async -> Bool {
        await status(node: node, deployment: deployment, hostPort: hostPort, timeout: timeout) == 200
    }

    /// Asks every running replica of `observed` at once; returns the ids of those that answered 200.
    public func ready(_ observed: [String: NodeObservation], desired: [Resource]) async -> Set<String> {
        let nodes = Dictionary(uniqueKeysWithValues: desired.compactMap { r in r.node.map { (r.name, $0) } })
        let deployments = Dictionary(uniqueKeysWithValues: desired.compactMap { r in r.deployment.map { (r.name, $0) } })
        return await withTaskGroup(of: String?.self) { group in
            for c in observed.values.flatMap(\.containers) where c.running {
                guard let node = nodes[c.node], let d = deployments[c.deployment] else { continue }
                group.addTask { await isReady(node: node, deployment: d, hostPort: c.hostPort) ? c.id : nil }
            }
            var ready = Set<String>()
            for await id in group { if let id { ready.insert(id) } }
            return ready
        }
    }
}
