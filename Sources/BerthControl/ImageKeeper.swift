import BerthDocker
import BerthModel
import BerthReconciler
import BerthStore
import Foundation
import Logging

/// Keeps each node's images as `ImageRetention` says — pulls what is missing, removes older
/// versions' images nothing uses — verifies the artifacts of served versions on the nodes that
/// will run them (and on standbys) before the planner lets those versions start, and checks each
/// node's GPUs with nvidia-smi, taking a faulty one out of service. Runs beside the passes: a
/// 40 GB pull never stalls reconciliation.
actor ImageKeeper {
    /// One round's work, taken from a pass.
    struct Round: Sendable {
        var desired: [Resource]
        /// Reachable, ready nodes with their engines.
        var nodes: [(name: String, engine: EngineEndpoint)]
        var images: [String: ImageRetention.NodeImages]
        /// `model@version` with artifacts → nodes that will run it (standbys included).
        var verify: [(model: String, version: ModelVersion, nodes: Set<String>)]
        /// Images whose registry demands credentials, with them (passwords by reference).
        var credentials: [String: RegistryCredentials] = [:]
        /// Reachable nodes that declare GPUs, for the GPU health check.
        var gpuNodes: [String: NodeSpec] = [:]
        /// GPUs already out of service, by node: a check only adds to them.
        var outOfService: [String: Set<Int>] = [:]
    }

    /// The image GPU checks run nvidia-smi in on every node that declares GPUs; nil: on nodes with
    /// the NVIDIA runtime only, in an image the node keeps anyway; `off`: no checks.
    let gpuCheckImage: String?

    let pool: ClientPool
    let statePath: String
    let logger: Logger
    private(set) var reports: [String: [NodeImage]] = [:]
    private var events: [Notice] = []
    /// Verifications that failed to run (engine error), not retried before this time.
    private var retryAfter: [String: Date] = [:]

    init(pool: ClientPool, statePath: String, logger: Logger, gpuCheckImage: String? = nil) {
        self.pool = pool
        self.statePath = statePath
        self.logger = logger
        self.gpuCheckImage = gpuCheckImage
    }

    /// Where and in which image this round checks GPUs: node → image.
    func gpuChecks(_ round: Round) -> [String: String] {
        guard gpuCheckImage != "off" else { return [:] }
        var checks: [String: String] = [:]
        for (node, spec) in round.gpuNodes {
            if (retryAfter["\(node)/gpu-check"].map { $0 > Date() } ?? false) { continue }
            if let gpuCheckImage {
                checks[node] = gpuCheckImage
            } else if spec.runtime == .nvidia, let image = round.images[node]?.keep.first {
                checks[node] = image
            }
        }
        return checks
    }

    func takeEvents() -> [Notice] {
        defer { events = [] }
        return events
    }

    func report(_ node: String) -> [NodeImage]? { reports[node] }

    /// The work a pass implies: images per reachable node (by its role as the controller sees it
    /// now) and verifications of served versions on the nodes their replicas are placed on.
    static func round(desired: [Resource], plan: Plan, observed: [String: NodeObservation], health: FleetHealth) -> Round {
        let deployments = Dictionary(uniqueKeysWithValues: desired.compactMap { r in r.deployment.map { (r.name, $0) } })
        let models = Dictionary(uniqueKeysWithValues: desired.compactMap { r in r.model.map { (r.name, $0) } })
        let reachable = reachableNodes(desired: desired, observed: observed, health: health)
        let roles = Dictionary(reachable.map { ($0.name, $0.role) }, uniquingKeysWith: { a, _ in a })
        let nodes = reachable.map { (name: $0.name, engine: $0.spec.engine) }
        var serving: [String: Set<String>] = [:]
        var placed: [String: Set<String>] = [:]
        for d in plan.deployments {
            guard let spec = deployments[d.name] else { continue }
            for r in d.replicas {
                guard let node = r.node else { continue }
                serving[node, default: []].insert(spec.model)
                placed["\(spec.model)@\(spec.version)", default: []].insert(node)
            }
        }
        let standbys = Set(roles.filter { $0.value == .standby }.map(\.key))
        var verify: [(model: String, version: ModelVersion, nodes: Set<String>)] = []
        var seen = Set<String>()
        for (_, d) in deployments.sorted(by: { $0.key < $1.key }) where d.replicas > 0 {
            guard let version = models[d.model]?.version(d.version), !version.artifacts.isEmpty,
                  seen.insert("\(d.model)@\(d.version)").inserted else { continue }
            let targets = (placed["\(d.model)@\(d.version)"] ?? []).union(standbys).intersection(roles.keys)
            verify.append((d.model, version, targets))
        }
        var credentials: [String: RegistryCredentials] = [:]
        for m in models.values { for v in m.versions { if let auth = v.registryAuth { credentials[v.image] = auth } } }
        let gpuNodes = Dictionary(reachable.filter { $0.spec.gpus.count > 0 }.map { ($0.name, $0.spec) }, uniquingKeysWith: { a, _ in a })
        return Round(desired: desired, nodes: nodes, images: ImageRetention.plan(desired: desired, serving: serving, roles: roles), verify: verify,
                     credentials: credentials, gpuNodes: gpuNodes, outOfService: health.outOfServiceGPUs)
    }

    /// The nodes that answered the pass and are not declared dead, with their roles as the
    /// controller sees them now (a promoted standby is active, a demoted active a standby).
    static func reachableNodes(desired: [Resource], observed: [String: NodeObservation], health: FleetHealth) -> [(name: String, spec: NodeSpec, role: NodeSpec.Role)] {
        desired.compactMap { r in
            guard let spec = r.node, !health.notReady.contains(r.name), case .reachable? = observed[r.name] else { return nil }
            return (r.name, spec, health.promoted.contains(r.name) ? .active : health.demoted.contains(r.name) ? .standby : spec.role)
        }
    }

    /// Carries out one round, nodes in parallel, each node's steps in turn: pull, verify, collect.
    /// `fence` is asked before each node's pulls, verifications and removals: a controller that
    /// lost the lease stops its round there.
    func run(_ round: Round, fence: Fence? = nil) async {
        let store = try? StateStore.open(path: statePath, create: false)
        // Where each version has verified already, read once for all nodes.
        let verifiedAt = round.verify.map { v in (try? store?.verifiedPlaces(model: v.model, version: v.version)) ?? nil }
        let gpuChecks = gpuChecks(round)
        await withTaskGroup(of: NodeRound.self) { group in
            for node in round.nodes {
                let images = round.images[node.name] ?? ImageRetention.NodeImages(keep: [], collectable: [])
                var verifications: [(String, ModelVersion)] = []
                for (v, places) in zip(round.verify, verifiedAt) where v.nodes.contains(node.name) {
                    let key = "\(node.name)/\(v.model)@\(v.version.version)"
                    if places?.contains(node.name) == true || (retryAfter[key].map { $0 > Date() } ?? false) { continue }
                    verifications.append((v.model, v.version))
                }
                let pool = self.pool
                let gpuCheck = gpuChecks[node.name].map { GPUCheck(spec: round.gpuNodes[node.name]!, image: $0, outOfService: round.outOfService[node.name] ?? []) }
                group.addTask {
                    await Self.keep(node: node.name, engine: node.engine, images: images, verify: verifications, gpuCheck: gpuCheck,
                                    credentials: round.credentials, pool: pool, store: store, fence: fence)
                }
            }
            for await done in group {
                reports[done.node] = done.images
                events += done.notices
                for version in done.unverifiable { retryAfter["\(done.node)/\(version)"] = Date().addingTimeInterval(60) }
                // A check that could not run (no nvidia-smi, a driver error) is not retried every round.
                if done.gpuCheckFailed { retryAfter["\(done.node)/gpu-check"] = Date().addingTimeInterval(600) }
            }
        }
        for n in reports.keys where !round.nodes.contains(where: { $0.name == n }) { reports[n] = nil }
    }

    /// What one node's round did.
    struct NodeRound: Sendable {
        var node: String
        var images: [NodeImage] = []
        var notices: [Notice] = []
        /// `model@version`s whose verification could not run (engine error): retried later.
        var unverifiable: [String] = []
        var gpuCheckFailed = false
    }

    /// A node's GPU health check: its declared GPUs, the image nvidia-smi runs in, and the GPUs
    /// already out of service.
    struct GPUCheck: Sendable {
        var spec: NodeSpec
        var image: String
        var outOfService: Set<Int>
    }

    static func keep(node: String, engine: EngineEndpoint, images: ImageRetention.NodeImages, verify: [(String, ModelVersion)], gpuCheck: GPUCheck? = nil,
                     credentials: [String: RegistryCredentials], pool: ClientPool, store: StateStore?, fence: Fence? = nil) async -> NodeRound {
        var round = NodeRound(node: node)
        var notices: [Notice] = []
        func note(_ warning: Bool, _ reason: Reason, _ message: String) {
            notices.append(Notice(kind: "node", name: node, warning: warning, reason: reason, message: message))
        }
        guard let client = try? await pool.client(for: engine), let present = try? await client.listImages() else { return round }
        let tags = Set(present.flatMap(\.repoTags))
        var report: [NodeImage] = []
        func mayAct() async -> Bool {
            guard let refusal = await fence?() else { return true }
            note(true, .imageRoundStopped, "image round stopped on \(node): \(refusal)")
            round.notices = notices
            return false
        }
        guard await mayAct() else { return round }
        for image in images.keep {
            if tags.contains(image) {
                report.append(NodeImage(image: image, state: "present"))
                continue
            }
            let started = ContinuousClock.now
            do {
                try await client.pullImage(image, auth: try credentials[image].map { try RegistryAuth(image: image, credentials: $0) })
                let seconds = ContinuousClock.now.seconds(since: started)
                report.append(NodeImage(image: image, state: "pulled"))
                note(false, .imagePulled, "\(image) pulled ahead of need in \(String(format: "%.1f", seconds)) s")
            } catch {
                report.append(NodeImage(image: image, state: "failed", detail: "\(error)"))
                note(true, .imagePullFailed, "\(image): \(error)")
            }
        }
        if !verify.isEmpty { guard await mayAct() else { return round } }
        for (model, version) in verify {
            do {
                let results = try await ArtifactVerifier.verifyOnNode(client, version)
                let now = Date()
                try store?.record(results.map {
                    Verification(model: model, version: version.version, path: $0.path, node: node, expected: $0.expected,
                                 actual: $0.actual, ok: $0.ok, detail: $0.problem, verifiedAt: now)
                })
                let bad = results.filter { !$0.ok }
                if bad.isEmpty {
                    note(false, .artifactsVerified, "\(model)@\(version.version): \(results.count) artifact(s) match their sha256")
                } else {
                    for r in bad {
                        note(true, .artifactVerificationFailed, "\(model)@\(version.version): \(r.path): \(r.problem)"
                             + (r.actual.map { " (manifest \(r.expected), file \($0))" } ?? ""))
                    }
                }
            } catch {
                note(true, .artifactVerificationError, "\(model)@\(version.version) could not be verified: \(error)")
                round.unverifiable.append("\(model)@\(version.version)")
            }
        }
        if let gpuCheck {
            guard await mayAct() else { return round }
            do {
                let readings = try await GPUHealth.read(client, node: gpuCheck.spec, image: gpuCheck.image)
                let now = Date()
                let holds = GPUHealth.holds(GPUHealth.judge(declared: gpuCheck.spec.gpus, readings: readings), node: node,
                                            alreadyOut: gpuCheck.outOfService, since: now)
                // Fenced like the round's other steps: a deposed controller takes nothing out.
                if !holds.isEmpty, await mayAct() { try store?.holdGPUs(holds) }
            } catch {
                note(true, .gpuCheckFailed, "GPU health of \(node) could not be read in \(gpuCheck.image): \(error) (next try in 10 min)")
                round.gpuCheckFailed = true
            }
        }
        // Which images containers use: when the engine cannot say, nothing is removed.
        guard !images.collectable.isEmpty, let containers = try? await client.listContainers(labels: []), await mayAct() else {
            round.images = report
            round.notices = notices
            return round
        }
        let used = Set(containers.map(\.image))
        for image in images.collectable where tags.contains(image) && !used.contains(image) {
            do {
                try await client.removeImage(image)
                note(false, .imageRemoved, "\(image): no kept version of any model uses it")
            } catch {
                note(false, .imageKept, "\(image) not removed: \(error)")
            }
        }
        round.images = report
        round.notices = notices
        return round
    }
}
