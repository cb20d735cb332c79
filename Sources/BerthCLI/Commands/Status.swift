import ArgumentParser
import BerthControl
import BerthModel
import BerthReconciler
import BerthStore
import Foundation

/// The fleet as the controller last saw it, read from the state database.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the fleet as the controller last saw it: nodes, GPUs, replicas, rollouts, gateways.",
        discussion: "Reads the status the leading controller stores after every pass; says how old it is and whether a controller is running.")

    @Option(name: .shortAndLong, help: "Output format: table or json.")
    var output: OutputFormat = .table

    @OptionGroup var state: StateOptions

    func run() throws {
        try reportingErrors {
            guard let store = try state.openForReading() else { return }
            let status = try store.fleetStatus()
            let lease = try store.lease()
            if output == .json {
                Console.print(StatusRendering.json(status))
                return
            }
            let objects = try store.objects().map(\.resource)
            var out = StatusRendering.controllerLine(status: status, lease: lease) + "\n\n"
            out += "NODES\n" + StatusRendering.nodes(status.nodes, objects: objects) + "\n"
            out += "DEPLOYMENTS\n" + StatusRendering.deployments(status.deployments, objects: objects)
            let gateways = objects.filter { $0.kind == .gateway }
            if !gateways.isEmpty { out += "\nGATEWAYS\n" + GatewayRendering.table(gateways, status: status) }
            Console.print(out)
        }
    }
}

/// `berth describe deployment|node NAME`.
struct Describe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show one deployment, node, gateway or model in detail: spec, conditions, replicas or upstream or versions, recent events.")

    @Argument(help: ArgumentHelp("deployment, node, gateway or model.", valueName: "kind"))
    var kind: String

    @Argument(help: "Name of the object.")
    var name: String

    @OptionGroup var state: StateOptions

    func validate() throws {
        guard ResourceKind(userInput: kind) != nil else {
            throw ValidationError("describe takes deployment, node, gateway or model, not \"\(kind)\"")
        }
    }

    func run() throws {
        try reportingErrors {
            let kind = ResourceKind(userInput: self.kind)!
            guard let store = try state.openForReading(),
                  let object = try store.object(ObjectKey(kind, name)) else {
                throw NotFound(message: "\(kind.singular) \"\(name)\" not found in \(state.path)")
            }
            let status = try store.fleetStatus()
            let events = try store.events(kind: kind.singular, name: name, limit: 15)
            switch kind {
            case .deployment:
                Console.print(StatusRendering.describe(deployment: object, status: status.deployments.first { $0.name == name }, events: events))
            case .gateway:
                Console.print(GatewayRendering.describe(object, status: status.gateways.first { $0.name == name }, events: events))
            case .model:
                let deployed = try store.objects(kind: .deployment).compactMap(\.resource.deployment).filter { $0.model == name }
                var verified: [String: [Verification]] = [:]
                for v in object.resource.model!.versions { verified[v.version] = try store.latestVerifications(model: name, version: v.version) }
                let staging = try StagingReport.read(store, model: name)
                Console.print(StatusRendering.describe(model: object, deployed: deployed, verified: verified, staging: staging, events: events))
            default:
                Console.print(StatusRendering.describe(node: object, status: status, hold: try store.nodeHolds()[name],
                                                       gpusOut: try store.gpuHolds().filter { $0.node == name }, events: events))
            }
        }
    }
}

enum StatusRendering {
    static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        encoder.dateEncodingStrategy = .iso8601
        return String(decoding: try! encoder.encode(value), as: UTF8.self)
    }

    static func age(_ date: Date?, now: Date = Date()) -> String {
        guard let date else { return "never" }
        let s = Int(now.timeIntervalSince(date))
        return s < 120 ? "\(max(0, s))s ago" : s < 7200 ? "\(s / 60)m ago" : "\(s / 3600)h ago"
    }

    static func controllerLine(status: FleetStatus, lease: Lease?, now: Date = Date()) -> String {
        guard let lease else { return "controller: none has run on this state yet (start `berth controller`)" }
        let c = status.controller
        let pass = c.map { "last pass \(age($0.lastPassAt, now: now)) at revision \($0.revision), \($0.lastPassMilliseconds) ms" } ?? "no pass yet"
        if lease.expiresAt > now {
            return "controller: \(lease.holder) leads (epoch \(lease.epoch)); \(pass)" + (c?.listen.map { "; API http://\($0)" } ?? "")
        }
        return "controller: NOT RUNNING — the lease of \(lease.holder) expired \(age(lease.expiresAt, now: now)); status below is as of then"
    }

    static func nodes(_ nodes: [NodeStatus], objects: [Resource]) -> String {
        var t = Table("NAME", "ROLE", "READY", "GPUS USED", "CONTAINERS", "HEARTBEAT", "MESSAGE")
        let byName = Dictionary(uniqueKeysWithValues: nodes.map { ($0.name, $0) })
        for r in objects where r.kind == .node {
            guard let n = byName[r.name] else {
                t.add([r.name, r.node!.role.rawValue, "unknown", "-/\(r.node!.gpus.count)", "-", "never", "not seen by a controller yet"])
                continue
            }
            t.add([n.name, n.role + (n.hold.map { ", \($0)" } ?? ""), n.ready ? "Ready" : "NotReady", "\(n.gpusAllocated)/\(n.gpusTotal)", "\(n.containers)", age(n.lastHeartbeat),
                   n.ready && n.reason != Reason.suspect.rawValue && n.reason != Reason.gpusOutOfService.rawValue ? "" : "\(n.reason): \(n.message.prefix(80))"])
        }
        // Nodes no longer desired whose Berth containers were left running, as the controller saw them.
        for n in nodes where n.reason == Reason.nodeDeleted.rawValue && !objects.contains(where: { $0.kind == .node && $0.name == n.name }) {
            t.add([n.name, n.role, "NotReady", "-", "\(n.containers)", age(n.lastHeartbeat), "\(n.reason): \(n.message.prefix(80))"])
        }
        return t.rendered
    }

    static func deployments(_ deployments: [DeploymentStatus], objects: [Resource]) -> String {
        var t = Table("NAME", "VERSION", "READY", "UP-TO-DATE", "ROLLOUT", "CONDITIONS")
        let byName = Dictionary(uniqueKeysWithValues: deployments.map { ($0.name, $0) })
        for r in objects where r.kind == .deployment {
            let spec = r.deployment!
            guard let d = byName[r.name] else {
                t.add([r.name, spec.version, "-/\(spec.replicas)", "-", "unknown", "not seen by a controller yet"])
                continue
            }
            let conditions = d.conditions.filter { $0.type == ConditionType.degraded.rawValue ? $0.status : true }
                .map { $0.type + ($0.status ? "" : "=False") + ($0.type == ConditionType.degraded.rawValue || !$0.status ? " (\($0.reason))" : "") }
            t.add([d.name, d.modelVersion, "\(d.ready)/\(d.desired)", "\(d.updatedReady)/\(d.desired)", d.rollout.rawValue, conditions.joined(separator: ", ")])
        }
        return t.rendered
    }

    static func replicas(_ deployments: [DeploymentStatus]) -> String {
        var t = Table("DEPLOYMENT", "REPLICA", "NODE", "GPUS", "PORT", "VERSION", "PHASE", "CONTAINER", "MESSAGE")
        for d in deployments {
            for r in d.replicas {
                t.add([d.name, "\(r.slot)" + (r.slot >= d.desired ? " (surge)" : ""), r.node ?? "-", r.gpus.isEmpty ? "-" : r.gpus.map(String.init).joined(separator: ","),
                       r.hostPort.map(String.init) ?? "-", r.modelVersion ?? "-", r.phase.rawValue, r.container ?? "-", r.message])
            }
        }
        return t.rendered
    }

    static func conditions(_ conditions: [Condition]) -> String {
        var t = Table("TYPE", "STATUS", "REASON", "SINCE", "MESSAGE")
        for c in conditions { t.add([c.type, c.status ? "True" : "False", c.reason, age(c.lastTransition), c.message]) }
        return t.rendered
    }

    static func events(_ events: [Event]) -> String {
        guard !events.isEmpty else { return "  (none)\n" }
        var t = Table("TIME", "TYPE", "REASON", "MESSAGE")
        for e in events.reversed() { t.add([HistoryRendering.time(e.time), e.type, e.reason, e.message]) }
        return t.rendered
    }

    static func describe(deployment object: StoredObject, status: DeploymentStatus?, events: [Event]) -> String {
        let spec = object.resource.deployment!
        var out = "Name:        \(object.resource.name)\n"
        out += "Model:       \(spec.model)@\(spec.version)\n"
        out += "Replicas:    \(spec.replicas) desired" + (status.map { ", \($0.ready) ready, \($0.updatedReady) ready on the desired spec" } ?? "") + "\n"
        out += "GPUs:        \(spec.gpusPerReplica.map { "\($0) per replica" } ?? "derived from the model size")" + (spec.gpuModel.map { ", model \($0)" } ?? "") + "\n"
        out += "Rollout:     maxSurge \(spec.rollout.maxSurge), maxUnavailable \(spec.rollout.maxUnavailable), ready deadline \(spec.rollout.readyDeadlineSeconds) s"
            + (spec.rollout.autoRollback ? ", automatic rollback" : "") + "\n"
        out += "Health:      GET \(spec.health.path) every \(spec.health.intervalSeconds) s\n"
        out += "Revision:    \(object.revision) (created in \(object.createdRevision))\n"
        guard let status else {
            return out + "\nNo controller has reported on this deployment yet (start `berth controller`).\n"
        }
        out += "Last good:   \(status.lastGoodRevision.map { "revision \($0)" } ?? "none yet")\n"
        out += "Observed at: revision \(status.observedRevision)\n"
        if status.objectRevision != object.revision {
            out += "             (the controller has not seen revision \(object.revision) of this deployment yet)\n"
        }
        out += "\nConditions:\n" + conditions(status.conditions)
        out += "\nReplicas:\n" + replicas([status])
        out += "\nEvents (newest last):\n" + StatusRendering.events(events)
        return out
    }

    /// A model's versions: which are deployed, kept ready, pinned or collectable, and how their
    /// artifacts last verified; then its events (purges among them).
    static func describe(model object: StoredObject, deployed: [DeploymentSpec], verified: [String: [Verification]], staging: StagingReport,
                         events: [Event]) -> String {
        let spec = object.resource.model!
        let inUse = Set(deployed.filter { $0.replicas > 0 }.map(\.version))
        let kept = Set(ImageRetention.keptVersions(of: spec, deployed: inUse).map(\.version))
        var out = "Name:        \(object.resource.name)\n"
        out += "Keep:        the \(spec.keepVersions) newest versions ready, plus deployed and pinned ones\n"
        out += "Revision:    \(object.revision) (created in \(object.createdRevision))\n"
        var t = Table("VERSION", "IMAGE", "SIZE", "STATE", "ARTIFACTS")
        for v in spec.versions {
            var state = [inUse.contains(v.version) ? "deployed" : nil, v.pinned == true ? "pinned" : nil].compactMap { $0 }
            if state.isEmpty { state = [kept.contains(v.version) ? "kept" : "collectable"] }
            let results = verified[v.version] ?? []
            let artifacts: String
            if v.artifacts.isEmpty {
                artifacts = "none listed"
            } else if results.contains(where: { !$0.ok }) {
                artifacts = "FAILED (\(results.filter { !$0.ok }.count))"
            } else {
                let checked = Set(results.filter(\.ok).map(\.path))
                artifacts = "\(v.artifacts.filter { checked.contains($0.path) }.count)/\(v.artifacts.count) verified"
            }
            t.add([v.version, v.image, "\(v.parameters) \(v.precision.rawValue)", state.joined(separator: ", "), artifacts])
        }
        out += "\nVersions (oldest first):\n" + t.rendered
        if !staging.entries.isEmpty {
            out += "\nStaged files (node by node; `berth model status \(object.resource.name)`):\n" + ModelCommand.StatusCommand.table(staging.entries)
        }
        out += "\nEvents (newest last):\n" + StatusRendering.events(events)
        return out
    }

    static func describe(node object: StoredObject, status: FleetStatus, hold: NodeHold?, gpusOut: [GPUHold] = [], events: [Event]) -> String {
        let spec = object.resource.node!
        let name = object.resource.name
        var out = "Name:        \(name)\n"
        out += "Role:        \(spec.role.rawValue)\n"
        out += "Engine:      \(spec.engine.endpoint)\(spec.engine.tls != nil ? " (TLS)" : "")\n"
        out += "Address:     \(spec.address), ports \(spec.ports.from)-\(spec.ports.to), network \(spec.network.rawValue), runtime \(spec.runtime.rawValue)\n"
        out += "GPUs:        \(spec.gpus.count) × \(spec.gpus.model ?? "GPU") \(spec.gpus.memoryGiB) GiB\n"
        if let n = status.nodes.first(where: { $0.name == name }) {
            out += "Ready:       \(n.ready ? "True" : "False") (\(n.reason))\(n.message.isEmpty ? "" : ": \(n.message)")\n"
            out += "Heartbeat:   \(age(n.lastHeartbeat))\n"
            out += "Allocated:   \(n.gpusAllocated) of \(n.gpusTotal) GPUs, \(n.containers) Berth container(s)\n"
            if n.role != spec.role.rawValue { out += "Acting as:   \(n.role)\n" }
        } else {
            out += "Ready:       unknown (no controller has reported on this node yet)\n"
        }
        var t = Table("DEPLOYMENT", "REPLICA", "GPUS", "PORT", "VERSION", "PHASE")
        for d in status.deployments {
            for r in d.replicas where r.node == name {
                t.add([d.name, "\(r.slot)", r.gpus.map(String.init).joined(separator: ","), r.hostPort.map(String.init) ?? "-", r.modelVersion ?? "-", r.phase.rawValue])
            }
        }
        if let hold, hold.cordoned || hold.draining {
            out += "Hold:        \(hold.draining ? "draining" : "cordoned") by \(hold.author) \(age(hold.since))\(hold.reason.isEmpty ? "" : ": \(hold.reason)")\n"
        }
        out += "\nReplicas:\n" + (t.rows.isEmpty ? "  (none)\n" : t.rendered)
        if !gpusOut.isEmpty {
            var g = Table("GPU", "UUID", "FAULT", "SINCE", "BY", "DETAIL")
            for h in gpusOut { g.add(["\(h.gpu)", h.uuid.isEmpty ? "-" : h.uuid, h.fault.rawValue, age(h.since), h.author, h.detail]) }
            out += "\nGPUs out of service (`berth node gpu \(name) INDEX --uncordon` returns one):\n" + g.rendered
        }
        if let images = status.nodes.first(where: { $0.name == name })?.images {
            var i = Table("IMAGE", "STATE", "DETAIL")
            for image in images { i.add([image.image, image.state, image.detail]) }
            out += "\nImages kept ready:\n" + (i.rows.isEmpty ? "  (none)\n" : i.rendered)
        }
        out += "\nEvents (newest last):\n" + StatusRendering.events(events)
        return out
    }
}
