import BerthDocker
import BerthModel
import Foundation

/// Engine clients, one per endpoint, made on first use and reused across passes.
public actor ClientPool {
    var clients: [String: DockerClient] = [:]

    public init() {}

    public func client(for engine: EngineEndpoint, timeout: Duration = .seconds(3)) async throws -> DockerClient {
        if let c = clients[engine.endpoint] { return c }
        let c = try await DockerClient.connect(DockerEndpoint(engine), timeout: timeout)
        clients[engine.endpoint] = c
        return c
    }

    public func forget(_ engine: EngineEndpoint) { clients[engine.endpoint] = nil }
}

/// What happened to one action.
public struct ActionResult: Sendable {
    public var action: Action
    /// nil when it went through.
    public var error: String?
}

/// Observe → plan → execute, one pass at a time.
public struct Reconciler: Sendable {
    public let pool: ClientPool

    public init(pool: ClientPool = ClientPool()) { self.pool = pool }

    /// One labelled list call per node, all nodes at once.
    public func observe(_ nodes: [(name: String, spec: NodeSpec)]) async -> [String: NodeObservation] {
        await withTaskGroup(of: (String, NodeObservation).self) { group in
            for (name, spec) in nodes {
                group.addTask {
                    do {
                        let client = try await pool.client(for: spec.engine)
                        let containers = try await client.listContainers()
                        return (name, .reachable(containers.compactMap { ObservedContainer($0, node: name) }))
                    } catch {
                        await pool.forget(spec.engine)
                        return (name, .unreachable("\(error)"))
                    }
                }
            }
            var result: [String: NodeObservation] = [:]
            for await (name, observation) in group { result[name] = observation }
            return result
        }
    }

    /// Runs the plan: each node's actions in order (removals first, as planned), nodes in parallel.
    public func execute(_ plan: Plan, nodes: [String: NodeSpec]) async -> [ActionResult] {
        let byNode = Dictionary(grouping: plan.actions, by: \.node)
        return await withTaskGroup(of: [ActionResult].self) { group in
            for (node, actions) in byNode {
                guard let spec = nodes[node] else { continue }
                group.addTask {
                    var results: [ActionResult] = []
                    for action in actions {
                        do {
                            let client = try await pool.client(for: spec.engine)
                            try await run(action, on: client)
                            results.append(ActionResult(action: action, error: nil))
                        } catch {
                            results.append(ActionResult(action: action, error: "\(error)"))
                        }
                    }
                    return results
                }
            }
            var all: [ActionResult] = []
            for await r in group { all += r }
            return all
        }
    }

    func run(_ action: Action, on client: DockerClient) async throws {
        switch action {
        case .create(_, let planned):
            let id: String
            do {
                id = try await client.ensureContainer(planned).id
            } catch let error as DockerError where error.code == .imageMissing {
                try await client.pullImage(planned.spec.image)
                id = try await client.ensureContainer(planned).id
            }
            try await client.startContainer(id)
        case .start(_, let id, _):
            try await client.startContainer(id)
        case .remove(_, let id, _, _):
            do {
                try await client.removeContainer(id, force: true)
            } catch let error as DockerError where error.code == .notFound {
                return  // already gone: the goal is reached
            }
        }
    }
}
