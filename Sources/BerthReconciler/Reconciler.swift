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

    /// What one pass saw, planned and did.
    public struct Pass: Sendable {
        public var observed: [String: NodeObservation]
        public var plan: Plan
        /// Empty when the plan was not executed (a dry run, or nothing to do).
        public var results: [ActionResult]

        /// Nodes whose engines did not answer, with why, by name.
        public var unreachable: [(node: String, reason: String)] {
            observed.sorted { $0.key < $1.key }.compactMap { name, o in
                if case .unreachable(let why) = o { (name, why) } else { nil }
            }
        }
    }

    /// One level-triggered pass over `desired` (the state at `revision`): observe every node, plan,
    /// and unless `execute` is false, run the plan.
    public func pass(desired: [Resource], revision: Int64, execute: Bool = true) async -> Pass {
        let nodes = desired.compactMap { r in r.node.map { (name: r.name, spec: $0) } }
        let observed = await observe(nodes)
        let plan = Planner.plan(desired: desired, observed: observed, revision: revision, epoch: 0)
        guard execute, !plan.isNoOp else { return Pass(observed: observed, plan: plan, results: []) }
        let results = await self.execute(plan, nodes: Dictionary(uniqueKeysWithValues: nodes.map { ($0.name, $0.spec) }))
        return Pass(observed: observed, plan: plan, results: results)
    }

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
