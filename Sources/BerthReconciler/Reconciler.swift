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

/// Per-container retry spacing: a container that keeps failing to start, or keeps exiting, is
/// tried again after 1, 2, 4 … 60 s rather than on every pass. Only timing lives here: what to do
/// is always planned afresh.
public actor Backoff {
    struct Entry {
        var attempts: Int
        var next: ContinuousClock.Instant
    }
    var entries: [String: Entry] = [:]
    let base: Duration
    let cap: Duration

    public init(base: Duration = .seconds(1), cap: Duration = .seconds(60)) {
        self.base = base
        self.cap = cap
    }

    /// Whether `key` may be tried now.
    public func allows(_ key: String, now: ContinuousClock.Instant = .now) -> Bool {
        entries[key].map { now >= $0.next } ?? true
    }

    /// Notes an attempt; the next one waits twice as long as the last, up to the cap.
    public func attempted(_ key: String, now: ContinuousClock.Instant = .now) {
        var e = entries[key] ?? Entry(attempts: 0, next: now)
        e.attempts += 1
        let wait = min(cap, base * (1 << min(e.attempts - 1, 20)))
        e.next = now + wait
        entries[key] = e
    }

    /// Forgets keys that are fine now (their container is ready or gone).
    public func reset(keeping: (String) -> Bool) {
        entries = entries.filter { keeping($0.key) }
    }

    public func attempts(_ key: String) -> Int { entries[key]?.attempts ?? 0 }

    /// Nothing is backing off (the usual state of a settled fleet).
    public var isEmpty: Bool { entries.isEmpty }
}

/// Observe → probe → plan → execute, one pass at a time.
public struct Reconciler: Sendable {
    public let pool: ClientPool
    public let backoff: Backoff
    /// How long one node's list call may take.
    public let observeTimeout: Duration

    public init(pool: ClientPool = ClientPool(), backoff: Backoff = Backoff(), observeTimeout: Duration = .seconds(5)) {
        self.pool = pool
        self.backoff = backoff
        self.observeTimeout = observeTimeout
    }

    /// What one pass saw, planned and did.
    public struct Pass: Sendable {
        public var observed: [String: NodeObservation]
        /// Ids of the containers whose health check answered 200.
        public var ready: Set<String>
        public var plan: Plan
        /// Empty when the plan was not executed (a dry run, or nothing to do).
        public var results: [ActionResult]
        /// Actions of the plan held back by the per-container backoff.
        public var deferred: [Action]
        /// The verdicts and holds the plan was made with.
        public var health = FleetHealth()

        /// Nodes whose engines did not answer, with why, by name.
        public var unreachable: [(node: String, reason: String)] {
            observed.sorted { $0.key < $1.key }.compactMap { name, o in
                if case .unreachable(let why) = o { (name, why) } else { nil }
            }
        }
    }

    /// One level-triggered pass over `desired` (the state at `revision`): observe every node,
    /// probe the health endpoint of every running replica, plan, and unless `execute` is false,
    /// run the plan. `epoch` is stamped on the containers it creates.
    ///
    /// `gate`, when given, runs after planning and before anything executes (the gateways take
    /// leaving replicas out of service there) and returns the ids of containers that must not be
    /// removed yet; their removals, and the creates that would reuse their node and port, wait.
    /// `health`, when given, turns this pass's observation into the controller's verdicts about
    /// nodes (failures counted over time, promotions) before planning.
    public func pass(desired: [Resource], revision: Int64, epoch: Int64 = 0, execute: Bool = true,
                     health: (@Sendable ([String: NodeObservation], Set<String>) async -> FleetHealth)? = nil,
                     gate: (@Sendable (Plan, [String: NodeObservation], Set<String>) async -> Set<String>)? = nil) async -> Pass {
        let nodes = desired.compactMap { r in r.node.map { (name: r.name, spec: $0) } }
        let observed = await observe(nodes)
        let ready = await probe(observed, desired: desired)
        let verdicts = await health?(observed, ready) ?? FleetHealth()
        let plan = Planner.plan(desired: desired, observed: observed, ready: ready, revision: revision, epoch: epoch, health: verdicts)
        let held = await gate?(plan, observed, ready) ?? []
        // Containers that are ready, or neither there nor planned, start their backoff afresh — on
        // every pass, the quiet ones included: a replica started once and ready since must not
        // wait out a longer backoff the next time it dies. Nothing to forget costs nothing.
        let containers = observed.values.flatMap(\.containers)
        if execute, await !backoff.isEmpty {
            func keys(_ c: ObservedContainer) -> [String] { [Action.startKey(id: c.id), Action.createKey(node: c.node, name: c.name)] }
            let healthy = Set(containers.filter { ready.contains($0.id) }.flatMap(keys))
            let present = Set(containers.flatMap(keys)).union(plan.actions.map(\.backoffKey))
            await backoff.reset { !healthy.contains($0) && present.contains($0) }
        }
        guard execute, !plan.isNoOp else { return Pass(observed: observed, ready: ready, plan: plan, results: [], deferred: [], health: verdicts) }
        var now: [Action] = []
        var deferred: [Action] = []
        // Ports of containers whose removal waits: a create that wants the same port waits too.
        let heldPorts = Set(containers.filter { held.contains($0.id) }.map { "\($0.node):\($0.hostPort)" })
        for action in plan.actions {
            switch action {
            case .remove(_, let id, _, _) where held.contains(id):
                deferred.append(action)
                continue
            case .create(let node, let c) where heldPorts.contains("\(node):\(c.placement.hostPort)"):
                deferred.append(action)
                continue
            default: break
            }
            if case .remove = action { now.append(action); continue }
            if await backoff.allows(action.backoffKey) { now.append(action) } else { deferred.append(action) }
        }
        var runnable = plan
        runnable.actions = now
        let results = await self.execute(runnable, nodes: Dictionary(uniqueKeysWithValues: nodes.map { ($0.name, $0.spec) }))
        for r in results where r.action.kind != "remove" { await backoff.attempted(r.action.backoffKey) }
        return Pass(observed: observed, ready: ready, plan: plan, results: results, deferred: deferred, health: verdicts)
    }

    /// A replica's health endpoint: the node's address, the replica's host port (or, with host
    /// networking, the check's own port when it names one) and the check's path.
    public static func healthURL(node: NodeSpec, deployment: DeploymentSpec, hostPort: Int) -> String {
        let port = node.network == .host ? (deployment.health.port ?? hostPort) : hostPort
        return "http://\(node.address):\(port)\(deployment.health.path)"
    }

    /// GETs each running replica's health endpoint (`http://ADDRESS:HOSTPORT/PATH` of its node and
    /// deployment), all at once, each bounded by its check's timeout. Returns the ids of those
    /// that answered 200.
    public func probe(_ observed: [String: NodeObservation], desired: [Resource]) async -> Set<String> {
        let nodes = Dictionary(uniqueKeysWithValues: desired.compactMap { r in r.node.map { (r.name, $0) } })
        let deployments = Dictionary(uniqueKeysWithValues: desired.compactMap { r in r.deployment.map { (r.name, $0) } })
        return await withTaskGroup(of: String?.self) { group in
            for c in observed.values.flatMap(\.containers) where c.running {
                guard let node = nodes[c.node], let d = deployments[c.deployment] else { continue }
                let url = Self.healthURL(node: node, deployment: d, hostPort: c.hostPort)
                let timeout = Duration.seconds(max(1, d.health.timeoutSeconds))
                group.addTask { await ReplicaHTTP.status(url, timeout: timeout) == 200 ? c.id : nil }
            }
            var ready = Set<String>()
            for await id in group { if let id { ready.insert(id) } }
            return ready
        }
    }

    /// One labelled list call per node, all nodes at once.
    public func observe(_ nodes: [(name: String, spec: NodeSpec)]) async -> [String: NodeObservation] {
        await withTaskGroup(of: (String, NodeObservation).self) { group in
            for (name, spec) in nodes {
                group.addTask {
                    do {
                        let client = try await pool.client(for: spec.engine)
                        // A node whose engine does not answer within seconds is a failed check, not a stalled pass.
                        let containers = try await client.listContainers(timeout: observeTimeout)
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

    /// Runs the plan: nodes in parallel; on each node, first every removal, then every create and
    /// start (a replacement's new container wants the port and GPUs its old one frees), each
    /// phase with at most `perNode` actions at once.
    public func execute(_ plan: Plan, nodes: [String: NodeSpec], perNode: Int = 8) async -> [ActionResult] {
        let byNode = Dictionary(grouping: plan.actions, by: \.node)
        return await withTaskGroup(of: [ActionResult].self) { group in
            for (node, actions) in byNode {
                guard let spec = nodes[node] else { continue }
                group.addTask {
                    let removals = actions.filter { $0.kind == "remove" }
                    let rest = actions.filter { $0.kind != "remove" }
                    var results = await runBounded(removals, engine: spec.engine, limit: perNode)
                    results += await runBounded(rest, engine: spec.engine, limit: perNode)
                    return results
                }
            }
            var all: [ActionResult] = []
            for await r in group { all += r }
            return all
        }
    }

    /// Runs `actions` against one engine, at most `limit` at a time.
    func runBounded(_ actions: [Action], engine: EngineEndpoint, limit: Int) async -> [ActionResult] {
        await withTaskGroup(of: ActionResult.self) { group in
            var results: [ActionResult] = []
            var next = actions.makeIterator()
            func launch(_ action: Action) {
                group.addTask {
                    do {
                        let client = try await pool.client(for: engine)
                        try await run(action, on: client)
                        return ActionResult(action: action, error: nil)
                    } catch {
                        return ActionResult(action: action, error: "\(error)")
                    }
                }
            }
            for _ in 0..<max(1, limit) { if let a = next.next() { launch(a) } }
            for await r in group {
                results.append(r)
                if let a = next.next() { launch(a) }
            }
            return results
        }
    }

    func run(_ action: Action, on client: DockerClient) async throws {
        switch action {
        case .create(_, let planned):
            let id: String
            do {
                id = try await client.ensureContainer(planned).id
            } catch let error as DockerError where error.code == .imageMissing {
                try await client.pullImage(planned.spec.image, auth: try planned.placement.model.registryAuth.map { try RegistryAuth(image: planned.spec.image, credentials: $0) })
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
