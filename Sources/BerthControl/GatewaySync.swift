import BerthGateway
import BerthModel
import BerthReconciler
import Foundation
import Logging

/// Keeps every gateway's nginx sending traffic to the replicas that are ready and staying, and
/// tells the pass which replicas are still in service and must not be stopped yet.
///
/// Each pass: the upstream is computed from the replicas that answer their health check, minus
/// those the plan is about to remove; a changed configuration is tested with `nginx -t`,
/// installed with one rename and loaded with a reload that counts only once new workers run. The
/// old workers finish their requests; a replica is stopped only once no configuration in effect,
/// and no old worker, can still send it a request. When nginx refuses a configuration, the last
/// good one stays installed and serving, the gateway is Degraded with nginx's message, and
/// replicas it still routes to are kept.
public actor GatewaySync {
    let stateFolder: String
    let logger: Logger
    /// Old workers still finishing requests after a reload, and the endpoints they may still send
    /// to. Kept in a file beside the configuration too, so a restarted controller knows them.
    struct Draining: Codable {
        var master: Int32
        var workers: Set<Int32>
        var endpoints: Set<String>
    }
    var draining: [String: Draining] = [:]
    /// Gateways whose nginx this controller has reloaded (or started) since it started: until then
    /// what nginx runs is unknown (a stop between installing a file and reloading leaves the old
    /// configuration running), so the first pass reloads once.
    var current: Set<String> = []
    /// Gateways whose drain file was read.
    var loaded: Set<String> = []
    var lastReload: [String: (at: Date, ms: Int)] = [:]
    /// A configuration nginx refused, by gateway: not tried again for 30 s unless it changes. A
    /// managed nginx that would not start (its port taken) is not tried again for 30 s whatever
    /// the text: each try costs nginx's own bind retries (2.5 s) inside the pass.
    var refused: [String: (text: String, at: ContinuousClock.Instant, why: String, start: Bool)] = [:]
    var previous: [String: GatewayStatus] = [:]
    public private(set) var statuses: [GatewayStatus] = []
    /// Events of this pass's gateway changes, taken by the loop.
    var pendingEvents: [Notice] = []

    public init(stateFolder: String, logger: Logger) {
        self.stateFolder = stateFolder
        self.logger = logger
    }

    func takeEvents() -> [Notice] {
        defer { pendingEvents = [] }
        return pendingEvents
    }

    /// Syncs every gateway of `desired`; returns the ids of containers that must not be removed yet.
    public func sync(desired: [Resource], plan: Plan, observed: [String: NodeObservation], ready: Set<String>, now: Date = Date()) -> Set<String> {
        let leaving = GatewayMembership.leaving(plan)
        var held = Set<String>()
        var statuses: [GatewayStatus] = []
        for r in desired {
            guard let spec = r.gateway else { continue }
            let name = r.name
            var (members, byEndpoint) = GatewayMembership.upstream(spec: spec, desired: desired, observed: observed, ready: ready, leaving: leaving)
            let paths = spec.managed ? NginxPaths.managed(stateFolder: stateFolder, gateway: name) : NginxPaths.system(gateway: name, spec: spec)
            let nginx = Nginx(paths: paths, managed: spec.managed)
            if loaded.insert(name).inserted { draining[name] = Self.readDraining(nginx) }
            let text = NginxConfig.render(gateway: name, spec: spec, members: members, paths: paths)
            let error = apply(text, nginx: nginx, gateway: name)

            // What nginx can send traffic to now: the installed configuration, and old workers still draining.
            let master = nginx.masterPID()
            let installed = nginx.installed() ?? ""
            var inEffect = master == nil ? Set<String>() : Nginx.endpoints(in: installed)
            if var d = draining[name] {
                if d.master != master || Nginx.waitDrained(d.workers, master: d.master, timeout: min(0.5, Double(spec.drain))) {
                    draining[name] = nil
                } else {
                    d.endpoints.subtract(inEffect)
                    draining[name] = d
                    inEffect.formUnion(d.endpoints)
                }
                Self.writeDraining(draining[name], nginx)
            }
            for (endpoint, c) in byEndpoint where leaving[c.id] != nil && inEffect.contains(endpoint) { held.insert(c.id) }
            for i in members.indices {
                let wanted = members[i].inService
                members[i].inService = inEffect.contains(members[i].endpoint) && wanted
                if wanted && !members[i].inService { members[i].reason = "not in effect: \(error ?? "nginx is not running")" }
                if !wanted && inEffect.contains(members[i].endpoint) { members[i].reason += " (draining)" }
            }
            var conditions = [
                Condition(type: .ready, status: master != nil, reason: master != nil ? .nginxRunning : .nginxNotRunning,
                          message: master.map { "nginx master \($0) serves \(paths.config)" } ?? (error ?? "no nginx master"), lastTransition: now),
                Condition(type: .degraded, status: error != nil, reason: error != nil ? .configurationRefused : .asExpected,
                          message: error ?? "", lastTransition: now),
            ]
            conditions = .carrying(conditions, from: previous[name]?.conditions)
            for c in conditions.transitions(from: previous[name]?.conditions) {
                pendingEvents.append(Notice(kind: "gateway", name: name, warning: c.isWarning, reason: c.code, message: c.summary))
            }
            let status = GatewayStatus(
                name: name, listen: spec.listen, managed: spec.managed, members: members,
                configHash: installed.isEmpty ? nil : ConfigHash.of(installed), configPath: paths.config, nginxPID: master.map(Int.init),
                lastReload: lastReload[name]?.at, lastReloadMilliseconds: lastReload[name]?.ms, conditions: conditions)
            previous[name] = status
            statuses.append(status)
        }
        stopRemovedGateways(keeping: Set(desired.filter { $0.gateway?.managed == true }.map(\.name)))
        self.statuses = statuses
        return held
    }

    /// Tests, installs and loads `text` when it differs from what runs; nil, or why not.
    func apply(_ text: String, nginx: Nginx, gateway name: String) -> String? {
        let master = nginx.masterPID()
        let installed = nginx.installed()
        let unknown = master != nil && !current.contains(name)
        if text == installed && (master != nil || !nginx.managed) && !unknown { return nil }
        if let r = refused[name], r.text == text || r.start, ContinuousClock.now - r.at < .seconds(30) { return r.why }
        let why = tryApply(text, nginx: nginx, gateway: name, master: master, installed: installed)
        refused[name] = why.map { (text, ContinuousClock.now, $0, master == nil && nginx.managed) }
        return why
    }

    func tryApply(_ text: String, nginx: Nginx, gateway name: String, master: Int32?, installed: String?) -> String? {
        do {
            if text != installed {
                if let refusal = try nginx.test(text) {
                    logger.error("nginx -t refused the new configuration; the last good one keeps serving: \(refusal)", metadata: ["gateway": "\(name)"])
                    return "nginx -t: \(refusal)"
                }
                try nginx.install()
            }
            if let master {
                // What the old workers may route to: the installed file, and after a restart the
                // last good one too (the file may have been installed without a reload).
                var before = Nginx.endpoints(in: installed ?? "")
                if !current.contains(name) { before.formUnion(Nginx.endpoints(in: nginx.lastGood() ?? "")) }
                do {
                    let (old, seconds) = try nginx.reload(master: master)
                    let removed = before.subtracting(Nginx.endpoints(in: text))
                    if !removed.isEmpty || draining[name] != nil {
                        var d = draining[name] ?? Draining(master: master, workers: [], endpoints: [])
                        d.workers.formUnion(old)
                        d.endpoints.formUnion(removed)
                        draining[name] = d
                        Self.writeDraining(d, nginx)
                    }
                    current.insert(name)
                    lastReload[name] = (Date(), Int(seconds * 1000))
                    logger.info("nginx reloaded in \(Int(seconds * 1000)) ms: \(Nginx.endpoints(in: text).count) replica(s) in the upstream",
                                metadata: ["gateway": "\(name)"])
                } catch {
                    nginx.restoreLastGood()
                    logger.error("nginx kept its previous configuration: \(error)", metadata: ["gateway": "\(name)"])
                    return "reload refused: \(error)"
                }
            } else if nginx.managed {
                let pid = try nginx.start()
                current.insert(name)
                lastReload[name] = (Date(), 0)
                logger.notice("started nginx (master \(pid)) with \(Nginx.endpoints(in: text).count) replica(s) in the upstream", metadata: ["gateway": "\(name)"])
            } else {
                return "the system nginx is not running (no live master in \(nginx.paths.pidFile)); the configuration is written to \(nginx.paths.config)"
            }
            return nil
        } catch {
            logger.error("\(error)", metadata: ["gateway": "\(name)"])
            return "\(error)"
        }
    }

    static func drainingPath(_ nginx: Nginx) -> String { nginx.paths.config + ".draining" }

    static func readDraining(_ nginx: Nginx) -> Draining? {
        guard let data = FileManager.default.contents(atPath: drainingPath(nginx)) else { return nil }
        return try? JSONDecoder().decode(Draining.self, from: data)
    }

    /// Written before the removals it protects can happen; removed once the drain is over.
    static func writeDraining(_ d: Draining?, _ nginx: Nginx) {
        let path = drainingPath(nginx)
        guard let d, let data = try? JSONEncoder().encode(d) else {
            unlink(path)
            return
        }
        try? data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// Managed gateways that are no longer desired: their nginx stops; files stay for the record.
    func stopRemovedGateways(keeping: Set<String>) {
        let folder = "\(stateFolder)/gateways"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for name in names where !keeping.contains(name) {
            let nginx = Nginx(paths: .managed(stateFolder: stateFolder, gateway: name), managed: true)
            if let pid = nginx.masterPID() {
                nginx.stop()
                logger.notice("stopped nginx \(pid): gateway \(name) is no longer desired", metadata: ["gateway": "\(name)"])
            }
        }
    }
}

enum ConfigHash {
    static func of(_ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in text.utf8 { hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3 }
        return String(hash, radix: 16)
    }
}
