import BerthRuntime
import BerthModel
import Foundation

extension Reconciler {
    /// Runs the plan: nodes in parallel; on each node, first every removal, then every create and
    /// start (a replacement's new container wants the port and GPUs its old one frees), each
    /// phase with at most `perNode` actions at once.
    /// Each batch is sent only once `fence` allows it. A create that wants a GPU or port of a
    /// container whose removal failed is not sent (it would share the GPU): `occupying` gives
    /// the removed containers by id.
    public func execute(_ plan: Plan, nodes: [String: NodeSpec], perNode: Int = 8, fence: Fence? = nil,
                        occupying: [String: ObservedContainer] = [:]) async -> [ActionResult] {
        let byNode = Dictionary(grouping: plan.actions, by: \.node)
        return await withTaskGroup(of: [ActionResult].self) { group in
            for (node, actions) in byNode {
                guard let spec = nodes[node] else { continue }
                group.addTask {
                    func batch(_ actions: [Action]) async -> [ActionResult] {
                        guard !actions.isEmpty else { return [] }
                        if let refusal = await fence?() { return actions.map { ActionResult(action: $0, error: ActionError(.fenced, "not sent: \(refusal)")) } }
                        return await runBounded(actions, engine: spec.engine, node: node, limit: perNode)
                    }
                    let removals = await batch(actions.filter { $0.kind == .remove })
                    // The last guard before a GPU is shared: a create or start whose GPUs or port a
                    // running container still holds (its removal failed, or the plan kept it) is
                    // not sent; the next pass plans again.
                    let removed = Set(removals.compactMap { r -> String? in
                        if r.error == nil, case .remove(_, let id, _, _) = r.action { id } else { nil }
                    })
                    let holders = occupying.values.filter { $0.node == node && $0.running && !removed.contains($0.id) }
                    var blocked: [ActionResult] = []
                    let rest = actions.filter { $0.kind != .remove }.filter { action in
                        let wants: (gpus: [Int], port: Int, id: String?)
                        switch action {
                        case .create(_, let planned): wants = (planned.placement.gpus, planned.placement.hostPort, nil)
                        case .start(_, let id, _):
                            guard let c = occupying[id] else { return true }
                            wants = (c.gpus, c.hostPort, id)
                        case .remove: return true
                        }
                        guard let holder = holders.first(where: { $0.id != wants.id && (!Set($0.gpus).isDisjoint(with: wants.gpus) || $0.hostPort == wants.port) })
                        else { return true }
                        let why = removals.first { if case .remove(_, holder.id, _, _) = $0.action { true } else { false } }?.error.map { "its removal failed: \($0)" }
                            ?? "it runs and is not being removed"
                        blocked.append(ActionResult(action: action, error: ActionError(.resourcesHeld, "not sent: \(holder.name) still holds GPU(s) \(holder.gpus.map(String.init).joined(separator: ",")) or port \(holder.hostPort) (\(why))")))
                        return false
                    }
                    return removals + blocked + (await batch(rest))
                }
            }
            var all: [ActionResult] = []
            for await r in group { all += r }
            return all
        }
    }

    /// Runs `actions` against one engine, at most `limit` at a time.
    func runBounded(_ actions: [Action], engine: EngineEndpoint, node: String, limit: Int) async -> [ActionResult] {
        await actions.concurrentMap(limit: limit) { action in
            do {
                let runtime = try await runtimes.runtime(for: engine)
                let outcome = try await run(action, on: runtime, node: node)
                return ActionResult(action: action, error: nil, waiting: outcome.waiting, created: outcome.created)
            } catch {
                return ActionResult(action: action, error: ActionError(.engine, runtime: (error as? RuntimeError)?.code, "\(error)"))
            }
        }
    }

    /// Runs one action; returns why it waits instead (its image is being pulled), or the container a create made.
    func run(_ action: Action, on client: any ContainerRuntime, node: String) async throws -> (waiting: String?, created: String?) {
        switch action {
        case .create(_, let planned):
            let id: String
            let image = planned.spec.image
            do {
                id = try await client.ensureContainer(planned).id
            } catch let error as RuntimeError where error.code == .imageMissing {
                // The pull runs beside the passes; the replica waits in phase `pulling`.
                if let failure = await pulls.takeFailure(node: node, image: image) {
                    throw RuntimeError(.imageMissing, endpoint: client.location, operation: "pull image \(image)", message: failure)
                }
                let auth = try planned.placement.model.registryAuth.map { try RegistryAuth(image: image, credentials: $0) }
                await pulls.begin(node: node, image: image, client: client, auth: auth)
                return ("pulling \(image) on \(node): started", nil)
            }
            try await client.startContainer(id)
            return (nil, id)
        case .start(_, let id, _):
            try await client.startContainer(id)
        case .remove(_, let id, _, _):
            do {
                try await client.removeContainer(id, force: true)
            } catch let error as RuntimeError where error.code == .notFound {
                return (nil, nil)  // already gone: the goal is reached
            }
        }
        return (nil, nil)
    }
}
