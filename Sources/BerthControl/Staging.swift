import BerthDocker
import BerthModel
import BerthReconciler
import BerthRuntime
import BerthStore
import Foundation
import Logging
import ServiceLifecycle

/// Puts staged model versions' files on the nodes that need them (`StagingPlan`) before they are
/// needed, and purges versions nothing keeps any more. Each staging runs in a short-lived
/// container on its node (`ArtifactStager`); its progress and outcome are written to the state's
/// `staging` table, which the passes read to let replicas start (`StoredGates`). At most
/// `perNode` stagings per node and `fleet` in all run at once; a failed one is retried with
/// backoff (15 s, doubling, at most 10 minutes). Runs only while this controller leads.
public actor ArtifactStaging {
    struct Settings: Sendable {
        var perNode = 1
        var fleet = 16
        /// The stager's image; nil: each version's own image.
        var image: String?
        var purgePasses = 3
        /// Ports a node serving its files for a copy (`source: { node: }`) listens on, one per
        /// copy running from that address; outside every node's replica port range.
        var copyPorts = PeerCopy.defaultPorts
        /// Copies one node serves at once for versions with `source: { node: }`; nodes still
        /// waiting copy from those that hold the version already, so it spreads like a tree.
        var copiesPerSource = PeerCopy.defaultCopiesPerSource
    }

    let pool: ClientPool
    let statePath: String
    let settings: Settings
    let metrics: ControllerMetrics?
    let onChange: @Sendable (String) -> Void
    var running: [String: Task<Void, Never>] = [:]
    private var retryAfter: [String: Date] = [:]
    var purging: Set<String> = []
    /// Failed purges, by key: how many in a row, and not before when to try again (same backoff
    /// as stagings, so a node that refuses does not get a warning every round).
    var purgeRetry: [String: (attempts: Int, after: Date)] = [:]
    var events: [Notice] = []
    /// Copy ports in use, by the serving node's address.
    private var copyPortsInUse: [String: Set<Int>] = [:]
    /// Copies each node serves now, by node name.
    private var copiesServing: [String: Int] = [:]
    /// The holder (not the origin) a failed copy read from, by staging key: the next attempt
    /// reads elsewhere, so a holder whose file went bad cannot fail the same copy forever.
    private var failedCopySource: [String: String] = [:]
    /// Versions removed from the manifest, as the stored history last listed them (nil: unknown).
    var removedVersions: [String: ModelVersion?] = [:]

    init(pool: ClientPool, statePath: String, settings: Settings = Settings(), metrics: ControllerMetrics? = nil,
         onChange: @escaping @Sendable (String) -> Void = { _ in }) {
        self.pool = pool
        self.statePath = statePath
        self.settings = settings
        self.metrics = metrics
        self.onChange = onChange
    }

    func takeEvents() -> [Notice] {
        defer { events = [] }
        return events
    }

    /// Stagings running now, as `node|model@version`.
    var inFlight: Set<String> { Set(running.keys) }

    static func key(_ node: String, _ version: String) -> String { "\(node)|\(version)" }

    /// Stops every staging (the lease was lost, or the controller stops); partial files stay for a resume.
    func stopAll() {
        for task in running.values { task.cancel() }
        running = [:]
    }

    /// One round: starts what the plan needs and nothing runs for, stops stagings no longer
    /// needed, purges what may go.
    func round(desired: [Resource], plan: Plan, observed: [String: NodeObservation], health: FleetHealth, fence: Fence?) async {
        guard let store = try? StateStore.open(path: statePath, create: false), let rows = try? store.stagings() else { return }
        let byKey = Dictionary(rows.map { (Self.key($0.node, $0.key), $0) }, uniquingKeysWith: { a, _ in a })
        let nodes = ImageKeeper.reachableNodes(desired: desired, observed: observed, health: health)
        let deployments = Dictionary(desired.compactMap { r in r.deployment.map { (r.name, $0) } }, uniquingKeysWith: { a, _ in a })
        var placed: [String: Set<String>] = [:]
        for a in plan.schedule.assignments {
            guard let d = deployments[a.deployment] else { continue }
            for s in a.slices { placed[s.node, default: []].insert("\(d.model)@\(d.version)") }
        }
        let needs = StagingPlan.needs(desired: desired, placed: placed, roles: Dictionary(nodes.map { ($0.name, $0.role) }, uniquingKeysWith: { a, _ in a }))
        let specs = Dictionary(nodes.map { ($0.name, $0.spec) }, uniquingKeysWith: { a, _ in a })
        let allNodes = Dictionary(desired.compactMap { r in r.node.map { (r.name, $0) } }, uniquingKeysWith: { a, _ in a })
        let now = Date()
        // Stagings no longer needed (the version left the node's needs) stop; partial files stay.
        let needed = Set(needs.flatMap { node, list in list.map { Self.key(node, $0.key) } })
        for (key, task) in running where !needed.contains(key) {
            task.cancel()
            running[key] = nil
        }
        for (node, list) in needs.sorted(by: { $0.key < $1.key }) {
            guard let spec = specs[node] else { continue }
            for need in list {
                let key = Self.key(node, need.key)
                if running[key] != nil || purging.contains(key) || byKey[key]?.holds(need.version) == true { continue }
                if let after = retryAfter[key], after > now { continue }
                guard running.keys.filter({ $0.hasPrefix(node + "|") }).count < settings.perNode, running.count < settings.fleet else { break }
                if let refusal = await fence?() {
                    events.append(Notice(kind: "node", name: node, warning: true, reason: .imageRoundStopped, message: "staging not started on \(node): \(refusal)"))
                    return
                }
                var peer: PeerCopy.Target?
                if let origin = need.version.source?.node {
                    // The origin, or a node that holds the version staged and keeps it.
                    let holders = needs.compactMap { other, list -> String? in
                        guard other != node, other != origin, other != failedCopySource[key], specs[other] != nil,
                              !purging.contains(Self.key(other, need.key)),
                              list.contains(where: { $0.key == need.key }), byKey[Self.key(other, need.key)]?.holds(need.version) == true else { return nil }
                        return other
                    }
                    let full = Set(([origin] + holders).filter { name in allNodes[name].map { freeCopyPort(at: $0.address) == nil } ?? true })
                    // The origin itself only checks its files in place: no copy slot taken.
                    guard let source = origin == node ? origin : PeerCopy.source(origin: origin, holders: holders, serving: copiesServing,
                                                                                 limit: settings.copiesPerSource, full: full),
                          let sourceSpec = allNodes[source], let port = freeCopyPort(at: sourceSpec.address) else { continue }
                    copyPortsInUse[sourceSpec.address, default: []].insert(port)
                    if source != node { copiesServing[source, default: 0] += 1 }
                    peer = PeerCopy.Target(node: source, spec: sourceSpec, port: port)
                }
                start(node: node, spec: spec, need: need, peer: peer, previous: byKey[key], store: store)
            }
        }
        await purge(rows: rows, desired: desired, observed: observed, specs: specs, store: store, fence: fence)
    }

    func start(node: String, spec: NodeSpec, need: StagingPlan.Need, peer target: PeerCopy.Target?, previous: Staging?, store: StateStore) {
        let key = Self.key(node, need.key)
        let (pool, image) = (pool, settings.image)
        running[key] = Task {
            defer { if let target { self.release(target, to: node) } }
            do {
                let client = try await pool.client(for: spec.engine)
                var peer: PeerCopy?
                if let target { peer = PeerCopy(target: target, client: try await pool.client(for: target.spec.engine)) }
                let outcome = try await Self.stageNow(client: client, node: node, spec: spec, need: need, previous: previous, store: store,
                                                      image: image, peer: peer)
                self.finished(key: key, outcome)
            } catch {
                self.stopped(key: key)
            }
        }
    }

    /// A copy port no copy from `address` uses now.
    func freeCopyPort(at address: String) -> Int? {
        settings.copyPorts.first { !(copyPortsInUse[address] ?? []).contains($0) }
    }

    func release(_ target: PeerCopy.Target, to node: String) {
        copyPortsInUse[target.spec.address]?.remove(target.port)
        if target.node != node { copiesServing[target.node] = max(0, (copiesServing[target.node] ?? 1) - 1) }
    }

    /// What one staging ended with, recorded already.
    public struct Finished: Sendable {
        public var row: Staging
        public var notice: Notice
        public var seconds: Double
        public var outcome: ArtifactStager.Outcome
        /// The node the files were copied from (`source: { node: }`), not counting the origin's own check.
        public var copiedFrom: String?
        public var ok: Bool { row.state == .staged }
    }

    /// Stages `need` on `node` now through `client`, writing its progress (about every second)
    /// and its outcome to the staging records, with a verification row per file once staged (a
    /// failing one for a sha256 mismatch). Throws only when cancelled; a stager that cannot run
    /// is a failed outcome. Used by the staging service and by `berth model stage`.
    public static func stageNow(client: DockerClient, node: String, spec: NodeSpec, need: StagingPlan.Need, previous: Staging?, store: StateStore,
                                image: String?, peer: PeerCopy? = nil, progress: @escaping @Sendable (Staging) -> Void = { _ in }) async throws -> Finished {
        let fingerprint = Staging.fingerprint(need.version)
        let attempts = previous.map { $0.fingerprint == fingerprint && $0.state != .staged && $0.state != .purged ? $0.attempts + 1 : 1 } ?? 1
        let started = Date()
        let row = Staging(node: node, model: need.model, version: need.version.version, state: .staging, fingerprint: fingerprint,
                          bytesDone: 0, bytesTotal: need.version.artifactBytes, attempts: attempts, startedAt: started, updatedAt: started,
                          detail: "staging its files on \(node): starting (\(need.why.rawValue))")
        try? store.record(stagings: [row])
        let latest = Locked(row)
        let clock = ContinuousClock()
        let begun = clock.now
        var report: ArtifactStager.Report
        var server: ArtifactStager.PeerServer?
        do {
            let auth = try need.version.source?.authorization()
            if need.version.source?.node != nil {
                guard let peer else { throw PeerCopy.Unavailable(message: "node \(need.version.source?.node ?? "?") is not in the fleet") }
                do {
                    server = try await ArtifactStager.serveOnNode(peer.client, address: peer.target.spec.address, root: peer.target.spec.modelStorage.modelRoot,
                                                                  port: peer.target.port, image: image ?? need.version.image)
                } catch {
                    throw PeerCopy.Unavailable(message: "node \(peer.target.node) cannot serve its files for the copy: \(error)")
                }
            }
            report = try await ArtifactStager.stageOnNode(
                client, node: node, model: need.model, version: need.version, storage: spec.modelStorage, authorization: auth,
                base: server?.base, image: image
            ) { report in
                var row = latest.value
                row.bytesDone = report.done
                row.bytesTotal = max(report.total, row.bytesTotal)
                row.bytesFetched = report.fetched
                row.updatedAt = Date()
                row.detail = Self.progressLine(node: node, report: report, seconds: begun.duration(to: clock.now).seconds)
                latest.value = row
                try? store.record(stagings: [row])
                progress(row)
            }
        } catch {
            // Stopped here too: a cancelled staging throws before the stop below.
            if let running = server, let peer {
                await ArtifactStager.stopServing(peer.client, running)
                server = nil
            }
            if error is CancellationError || Task.isCancelled { throw CancellationError() }
            report = ArtifactStager.Report()
            report.outcome = .unusable(error is PeerCopy.Unavailable ? "\(error)" : "the stager could not run on \(node): \(error)")
        }
        if let server, let peer { await ArtifactStager.stopServing(peer.client, server) }
        let source = need.version.source?.node.map { peer?.target.node ?? $0 }
        if let source, case .fetchFailed(let path, let detail)? = report.outcome {
            report.outcome = .fetchFailed(path: path, detail: detail + " (copying from node \(source), which must hold it under its model root)")
        }
        return record(row: latest.value, need: need, report: report, seconds: begun.duration(to: clock.now).seconds, copiedFrom: source == node ? nil : source,
                      store: store)
    }

    /// "staging 1.2 of 8.0 GiB on gpu-b1 (15 %), 110 MB/s, about 1 min left".
    static func progressLine(node: String, report: ArtifactStager.Report, seconds: Double) -> String {
        let gib = { (b: Int64) in String(format: "%.1f", Double(b) / Double(1 << 30)) }
        var line = "staging \(gib(report.done)) of \(gib(report.total)) GiB on \(node)"
        if report.total > 0 { line += " (\(report.done * 100 / report.total) %)" }
        if seconds >= 1, report.fetched > 0 {
            let rate = Double(report.fetched) / seconds
            line += String(format: ", %.0f MB/s", rate / 1e6)
            let left = Double(report.total - report.done) / rate
            line += left < 90 ? ", about \(Int(left.rounded())) s left" : ", about \(Int((left / 60).rounded())) min left"
        }
        return line
    }

    func stopped(key: String) { running[key] = nil }

    func finished(key: String, _ f: Finished) {
        running[key] = nil
        events.append(f.notice)
        metrics?.recordStaging(bytes: f.row.bytesFetched, seconds: f.seconds, ok: f.ok)
        failedCopySource[key] = f.ok ? nil : f.copiedFrom
        if f.ok {
            retryAfter[key] = nil
        } else {
            retryAfter[key] = Date().addingTimeInterval(Self.retryDelay(attempt: f.row.attempts))
        }
        onChange("staging of \(f.row.key) on \(f.row.node) ended: \(f.row.state.rawValue)")
    }

    /// 15 s after the first failure, doubling, at most 10 minutes.
    static func retryDelay(attempt: Int) -> TimeInterval { min(600, 15 * pow(2, Double(max(0, attempt - 1)))) }

    /// Writes a finished stager's outcome: the row, a verification per file (staged) or for the
    /// file that differed, and the event to record.
    static func record(row: Staging, need: StagingPlan.Need, report: ArtifactStager.Report, seconds: Double, copiedFrom: String? = nil,
                       store: StateStore) -> Finished {
        var row = row
        let now = Date()
        row.updatedAt = now
        row.bytesFetched = report.fetched
        var verifications: [Verification] = []
        let label = "\(need.key) on \(row.node)"
        let notice: Notice
        let outcome = report.outcome ?? .unusable("the stager ended without a result")
        switch outcome {
        case .staged:
            row.state = .staged
            row.bytesDone = row.bytesTotal
            row.detail = String(format: "staged in %.1f s, %@ fetched", seconds, Self.size(report.fetched))
                + (copiedFrom.map { " from node \($0)" } ?? "")
            verifications = need.version.artifacts.map {
                Verification(model: need.model, version: need.version.version, path: $0.path, node: row.node, expected: $0.sha256,
                             actual: $0.sha256, ok: true, detail: "", verifiedAt: now)
            }
            notice = Notice(kind: "node", name: row.node, warning: false, reason: .artifactsStaged,
                            message: "\(label): \(need.version.artifacts.count) file(s), \(Self.size(row.bytesTotal)) staged and sha256-checked in "
                                + String(format: "%.1f s (%@ fetched%@, for %@)", seconds, Self.size(report.fetched),
                                         copiedFrom.map { " from node \($0)" } ?? "", need.why.rawValue))
        default:
            row.state = .failed
            row.detail = outcome.summary
            if case .mismatch(let path, let expected, let actual, _) = outcome {
                verifications = [Verification(model: need.model, version: need.version.version, path: path, node: row.node, expected: expected,
                                              actual: actual, ok: false, detail: "sha256 mismatch", verifiedAt: now)]
            }
            notice = Notice(kind: "node", name: row.node, warning: true, reason: .artifactStagingFailed,
                            message: "\(label): \(outcome.summary); attempt \(row.attempts), retried in \(Int(retryDelay(attempt: row.attempts))) s")
        }
        try? store.record(stagings: [row], verifications: verifications)
        return Finished(row: row, notice: notice, seconds: seconds, outcome: outcome, copiedFrom: copiedFrom)
    }

    public static func size(_ bytes: Int64) -> String {
        bytes >= 1 << 30 ? String(format: "%.1f GiB", Double(bytes) / Double(1 << 30)) : String(format: "%.1f MiB", Double(bytes) / Double(1 << 20))
    }
}
