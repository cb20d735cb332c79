import BerthDocker
import BerthGateway
import BerthModel
import BerthReconciler
import BerthScheduler
import BerthStore
import Foundation

/// Walks the troubleshooting flow over the stored fleet and the real engines, replicas, state
/// folder and gateways; reads only. Each step is one method of `Checkup`, in the order an
/// operator would look: nodes, their staged files, replicas, deployments' artifacts, then, for
/// the whole fleet only, N+1, the state folder and the gateways.
public enum Doctor {
    public static func run(store: StateStore, statePath: String, options: DoctorOptions) async -> [Finding] {
        var c = Checkup(store: store, statePath: statePath, options: options)
        await c.checkNodes()
        c.checkStagedFiles()
        await c.checkReplicas()
        c.checkArtifacts()
        guard options.focus == nil else { return c.findings }
        c.checkNPlusOne()
        c.checkStateFolder()
        c.checkGateways()
        return c.findings
    }
}

/// What `Doctor.run` reads once and each step looks at, and the findings so far.
struct Checkup {
    let store: StateStore
    let statePath: String
    let options: DoctorOptions
    let objects: [Resource]
    let status: FleetStatus
    let nodes: [(name: String, spec: NodeSpec)]
    let deployments: [(name: String, spec: DeploymentSpec)]
    let models: [String: ModelSpec]
    /// The deployment `--focus deployment/NAME` names.
    let focusDeployment: String?
    var findings: [Finding] = []
    /// The engines that answered, for the replica checks.
    var clients: [String: DockerClient] = [:]

    init(store: StateStore, statePath: String, options: DoctorOptions) {
        self.store = store
        self.statePath = statePath
        self.options = options
        objects = (try? store.objects().map(\.resource)) ?? []
        status = (try? store.fleetStatus()) ?? FleetStatus(controller: nil, deployments: [], nodes: [])
        nodes = objects.compactMap { r in r.node.map { (name: r.name, spec: $0) } }
        deployments = objects.compactMap { r in r.deployment.map { (name: r.name, spec: $0) } }
        models = Dictionary(uniqueKeysWithValues: objects.compactMap { r in r.model.map { (r.name, $0) } })
        focusDeployment = options.focus?.hasPrefix("deployment/") == true ? String(options.focus!.dropFirst("deployment/".count)) : nil
    }

    /// The state folder.
    var folder: String { ControllerOptions.folder(ofStatePath: statePath) }

    mutating func add(_ level: Finding.Level, _ target: String, _ check: String, _ detail: String, _ advice: String = "") {
        findings.append(Finding(level: level, target: target, check: check, detail: detail, advice: advice))
    }

    func wanted(_ target: String) -> Bool { options.focus == nil || options.focus == target }

    /// Each node's engine, transport and runtime, and the images it should hold.
    mutating func checkNodes() async {
        // What each node should hold, as the controller keeps it (ImageRetention).
        let deploymentSpecs = Dictionary(uniqueKeysWithValues: deployments.map { ($0.name, $0.spec) })
        var serving: [String: Set<String>] = [:]
        var servedImages: [String: Set<String>] = [:]
        for d in status.deployments {
            guard let spec = deploymentSpecs[d.name], let image = models[spec.model]?.version(spec.version)?.image else { continue }
            for r in d.replicas {
                guard let node = r.node else { continue }
                serving[node, default: []].insert(spec.model)
                servedImages[node, default: []].insert(image)
            }
        }
        var roles: [String: NodeSpec.Role] = [:]
        for (name, spec) in nodes {
            let seen = status.nodes.first { $0.name == name }
            roles[name] = seen?.promoted == true ? .active : seen?.rejoinedAsStandby == true ? .standby : spec.role
        }
        let retention = ImageRetention.plan(desired: objects, serving: serving, roles: roles)

        // Nodes: engine, transport, runtime, images.
        for (name, spec) in nodes {
            let target = "node/\(name)"
            let servesFocus = focusDeployment.map { d in status.deployments.first { $0.name == d }?.replicas.contains { $0.node == name } ?? false } ?? false
            guard wanted(target) || servesFocus else { continue }
            let endpoint = spec.engine.endpoint
            if endpoint.hasPrefix("tcp://"), spec.engine.tls == nil {
                if !EndpointSyntax.isLoopback(endpoint) {
                    add(.warning, target, "transport", "\(endpoint) is plain TCP\(spec.engine.insecure ? " (allowed by insecure: true)" : ""): anyone on that network can run containers on the node",
                        "give the engine TLS with client certificates (engine.tls: ca, cert, key) and drop insecure: true")
                }
            }
            let client: DockerClient
            do {
                client = try await DockerClient.connect(DockerEndpoint(spec.engine), timeout: .seconds(5))
            } catch {
                add(.failure, target, "engine", "does not answer: \(error)", "check that dockerd runs on \(name), that \(endpoint) is right, and the TLS files")
                continue
            }
            clients[name] = client
            add(.ok, target, "engine", "Docker \(client.engineVersion), API \(client.apiVersion)")
            if spec.runtime == .nvidia {
                if let info = try? await client.info(), info.hasNvidiaRuntime {
                    add(.ok, target, "nvidia runtime", "installed" + (info.defaultRuntime.map { " (default runtime \($0))" } ?? ""))
                } else {
                    add(.failure, target, "nvidia runtime", "the node says runtime: nvidia but its engine has no nvidia runtime",
                        "install the NVIDIA Container Toolkit on \(name) and run `nvidia-ctk runtime configure --runtime=docker`, then restart dockerd")
                }
            }
            // The images the node should hold: the kept versions of the models it serves (the
            // retention promise), or on a standby the served versions.
            let images = retention[name]?.keep ?? []
            if !images.isEmpty, let present = try? await client.listImages() {
                for image in images {
                    let servedHere = servedImages[name]?.contains(image) ?? false
                    guard let found = present.first(where: { $0.repoTags.contains(image) }) else {
                        if servedHere && spec.role == .active {
                            add(.failure, target, "image", "\(image), which this node serves, is not on the node", "check the registry is reachable from \(name); the controller pulls it on create")
                        } else {
                            add(.warning, target, "image", "\(image) (\(spec.role == .standby ? "a served version, for a promotion" : "a kept version, for a rollback")) is not on the node",
                                "the controller pre-pulls it every --image-interval; until then a \(spec.role == .standby ? "promotion" : "rollback") would wait on the download")
                        }
                        continue
                    }
                    let gb = Double(found.size) / 1e9
                    if found.size > options.imageBudgetBytes {
                        add(.warning, target, "image size", String(format: "%@ is %.1f GB, over the %.0f GB budget", image, gb, Double(options.imageBudgetBytes) / 1e9),
                            "large images slow down cold-standby promotion: move the weights out of the image into a mounted model folder")
                    } else {
                        add(.ok, target, "image", String(format: "%@ present (%.1f GB, %@)", image, gb, servedHere ? "served" : spec.role == .standby ? "for a promotion" : "kept for rollback"))
                    }
                }
            }
        }
    }

    /// Staged model files: every node holds what it needs, a standby what a promotion needs.
    mutating func checkStagedFiles() {
        let staging = StagingReport.build(desired: objects, status: status, rows: (try? store.stagings()) ?? [])
        for (name, _) in nodes where wanted("node/\(name)") {
            let needed = staging.entries.filter { $0.node == name && $0.neededFor != nil }
            guard !needed.isEmpty else { continue }
            let target = "node/\(name)"
            for e in needed where e.state != .staged {
                let what = "\(e.model)@\(e.version) (\(ArtifactStaging.size(e.bytesTotal))) is \(e.state.rawValue) here\(e.detail.isEmpty ? "" : ": \(e.detail)")"
                switch e.neededFor {
                case StagingPlan.Why.standby.rawValue:
                    add(.failure, target, "staged files", "\(what); a promotion to this standby would download it first",
                        "run the controller (it stages what standbys need) or `berth model stage \(e.model)@\(e.version) --node \(name)`")
                case StagingPlan.Why.serve.rawValue:
                    add(.warning, target, "staged files", "\(what); its replicas wait in phase staging", "see `berth model status \(e.model)`")
                default:
                    add(.warning, target, "staged files", "\(what); a rollback to it would download it first", "see `berth model status \(e.model)`")
                }
            }
            let held = needed.filter { $0.state == .staged }
            if held.count == needed.count {
                add(.ok, target, "staged files", "holds all \(held.count) staged version(s) it needs: " + held.map { "\($0.model)@\($0.version)" }.joined(separator: ", "))
            }
        }
    }

    /// Each replica's GPU environment against its assignment, and its health endpoints.
    mutating func checkReplicas() async {
        let nodeSpecs = Dictionary(uniqueKeysWithValues: nodes.map { ($0.name, $0.spec) })
        for d in status.deployments where focusDeployment == nil || focusDeployment == d.name {
            guard let spec = deployments.first(where: { $0.name == d.name })?.spec else { continue }
            for r in d.replicas {
                guard let node = r.node, let nodeSpec = nodeSpecs[node], let port = r.hostPort, let container = r.container else { continue }
                let target = "replica/\(d.name)/\(r.slot)"
                guard options.focus == nil || focusDeployment != nil || options.focus == "node/\(node)" else { continue }
                if let client = clients[node] {
                    if let details = try? await client.inspectContainer(container) {
                        let env = Dictionary((details.config.env ?? []).compactMap { line -> (String, String)? in
                            guard let eq = line.firstIndex(of: "=") else { return nil }
                            return (String(line[..<eq]), String(line[line.index(after: eq)...]))
                        }, uniquingKeysWith: { a, _ in a })
                        let host = r.gpus.map(String.init).joined(separator: ",")
                        let cuda = nodeSpec.runtime == .nvidia ? (0..<r.gpus.count).map(String.init).joined(separator: ",") : host
                        if r.gpus.isEmpty {
                            add(.ok, target, "gpus", "no GPUs assigned")
                        } else if env["NVIDIA_VISIBLE_DEVICES"] == host && env["CUDA_VISIBLE_DEVICES"] == cuda {
                            add(.ok, target, "gpus", "NVIDIA_VISIBLE_DEVICES=\(host) CUDA_VISIBLE_DEVICES=\(cuda) match the assignment")
                        } else {
                            add(.failure, target, "gpus", "container \(container) has NVIDIA_VISIBLE_DEVICES=\(env["NVIDIA_VISIBLE_DEVICES"] ?? "unset") CUDA_VISIBLE_DEVICES=\(env["CUDA_VISIBLE_DEVICES"] ?? "unset"); assigned GPUs \(host) on \(node)",
                                "a container not created by this controller holds the replica's name, or its spec was edited: remove it and let the controller create it again")
                        }
                    } else {
                        add(.failure, target, "container", "\(container) is not on \(node)", "the controller recreates it at its next pass; `berth status` tells whether one runs")
                    }
                }
                // The controller's own probe: the same address, port (the check's own under host
                // networking) and path as the reconcile passes ask.
                let probe = HealthProbe(HTTPProber())
                let base = HealthProbe.base(node: nodeSpec, deployment: spec, hostPort: port)
                for path in ["/v2/health/live", spec.health.path] {
                    let url = base + path
                    let code = await probe.transport.status(url, timeout: .seconds(2))
                    if code == 200 {
                        add(.ok, target, "health \(path)", "200 from \(url)")
                    } else if path == "/v2/health/live" && code == 404 {
                        continue  // not a Triton server: the ready check stands alone
                    } else {
                        add(.failure, target, "health \(path)", code.map { "\(url) answered \($0)" } ?? "\(url) did not answer within 2 s",
                            "look at the replica's logs: docker -H <engine of \(node)> logs \(container)")
                    }
                }
            }
        }
    }

    /// Each deployment's artifacts: verified for its version.
    mutating func checkArtifacts() {
        for (name, d) in deployments where wanted("deployment/\(name)") && d.replicas > 0 {
            guard let v = models[d.model]?.version(d.version), !v.artifacts.isEmpty else { continue }
            let problems = (try? store.verificationProblems(model: d.model, version: v)) ?? ["verification results cannot be read"]
            if problems.isEmpty {
                add(.ok, "deployment/\(name)", "artifacts", "\(v.artifacts.count) artifact(s) of \(d.model)@\(v.version) verified")
            } else {
                for p in problems { add(.failure, "deployment/\(name)", "artifacts", p, "verify again with `berth model verify \(d.model)@\(v.version) --node NODE`, or fix the manifest's sha256") }
            }
        }
    }

    /// N+1: could the fleet absorb losing any one active node now (standbys plus free GPUs)?
    mutating func checkNPlusOne() {
        let losses = WhatIf.losingAnyOne(NPlusOne.fleet(desired: objects, nodes: status.nodes, holds: (try? store.nodeHolds()) ?? [:]))
        let stranded = losses.filter { !$0.fits }
        if losses.isEmpty {
            // No active node: nothing to lose.
        } else if stranded.isEmpty {
            add(.ok, "fleet", "n+1", "losing any one of \(losses.count) active node(s), every replica placed now still fits")
        } else {
            for o in stranded {
                let what = o.unplaced.map { "\($0.deployment)/\($0.replica) (\($0.reason))" }.joined(separator: "; ")
                add(.warning, "fleet", "n+1", "losing \(o.lost.joined(separator: ", ")) would leave \(o.unplaced.count) replica(s) unplaced: \(what)",
                    "add a standby with room, or free GPUs on the other actives; `berth plan --fail \(o.lost.joined(separator: ","))` shows where the rest would go")
            }
        }
    }

    /// The state folder's disk, the snapshots, the controller's lease, nodes deleted under running replicas.
    mutating func checkStateFolder() {
        var fs = statvfs()
        if statvfs(folder, &fs) == 0 {
            let free = Int64(fs.f_bavail) * Int64(fs.f_frsize)
            let total = Int64(fs.f_blocks) * Int64(fs.f_frsize)
            let text = String(format: "%.1f GB free of %.1f GB on %@", Double(free) / 1e9, Double(total) / 1e9, folder)
            if free < options.minimumFreeDiskBytes || (total > 0 && free * 20 < total) {
                add(.warning, "state", "disk", text, "free space: snapshots and the database grow with history")
            } else {
                add(.ok, "state", "disk", text)
            }
        }
        let newest = (try? SnapshotStore(statePath: statePath).list().first) ?? nil  // newest first
        if let newest {
            let age = Date().timeIntervalSince(newest.createdAt)
            if age > options.snapshotMaxAge {
                add(.warning, "state", "snapshot", "the newest snapshot (\(newest.id)) is \(Int(age / 60)) minutes old", "is the controller running? `berth snapshot create` takes one now")
            } else {
                add(.ok, "state", "snapshot", "newest \(newest.id), \(Int(age / 60)) minutes old")
            }
        } else {
            add(.warning, "state", "snapshot", "no snapshot yet", "`berth snapshot create`, or run the controller (it takes one every hour)")
        }
        if let lease = (try? store.liveLeaseHolder()) ?? nil {
            add(.ok, "state", "controller", "\(lease.holder) leads (epoch \(lease.epoch))")
        } else {
            add(.warning, "state", "controller", "no controller holds the lease: nothing reconciles the fleet", "start `berth controller`")
        }
        // Nodes deleted from the desired state while Berth's containers ran there: nobody manages them.
        for n in ((try? store.fleetStatus().nodes) ?? []) where n.reason == Reason.nodeDeleted.rawValue {
            add(.warning, "node/\(n.name)", "deleted node", n.message, "remove its Berth containers on the node (`docker ps --filter label=io.berth.managed-by=berth`), or apply the Node again to manage them")
        }
    }

    /// Each gateway's nginx: configuration installed, valid and loaded.
    mutating func checkGateways() {
        for r in objects {
            guard let g = r.gateway else { continue }
            let paths = g.managed ? NginxPaths.managed(stateFolder: folder, gateway: r.name) : NginxPaths.system(gateway: r.name, spec: g)
            let nginx = Nginx(paths: paths, managed: g.managed)
            guard nginx.installed() != nil else {
                add(.failure, "gateway/\(r.name)", "nginx", "no configuration installed at \(paths.config)", "start the controller: it writes and loads it")
                continue
            }
            if let problem = nginx.checkInstalled() {
                add(.failure, "gateway/\(r.name)", "nginx config", problem, "`berth describe gateway \(r.name)` shows the last reload; `berth gateway render \(r.name)` what it should be")
            } else if let pid = nginx.masterPID() {
                add(.ok, "gateway/\(r.name)", "nginx", "configuration valid and loaded by master \(pid)")
            } else {
                add(.failure, "gateway/\(r.name)", "nginx", "configuration valid but no nginx master runs", g.managed ? "the controller starts it at its next pass" : "start the system nginx")
            }
        }
    }
}
