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
    }

    let pool: ClientPool
    let statePath: String
    let settings: Settings
    let metrics: ControllerMetrics?
    let onChange: @Sendable (String) -> Void
    private var running: [String: Task<Void, Never>] = [:]
    private var retryAfter: [String: Date] = [:]
    private var purging: Set<String> = []
    /// Failed purges, by key: how many in a row, and not before when to try again (same backoff
    /// as stagings, so a node that refuses does not get a warning every round).
    private var purgeRetry: [String: (attempts: Int, after: Date)] = [:]
    private var events: [Notice] = []
    /// Copy ports in use, by the serving node's address.
    private var copyPortsInUse: [String: Set<Int>] = [:]
    /// Versions removed from the manifest, as the stored history last listed them (nil: unknown).
    private var removedVersions: [String: ModelVersion?] = [:]

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
                if let source = need.version.source?.node {
                    guard let sourceSpec = allNodes[source] else { continue }
                    guard let port = settings.copyPorts.first(where: { !(copyPortsInUse[sourceSpec.address] ?? []).contains($0) }) else { continue }
                    copyPortsInUse[sourceSpec.address, default: []].insert(port)
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
            defer { if let target { self.release(target) } }
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

    func release(_ target: PeerCopy.Target) { copyPortsInUse[target.spec.address]?.remove(target.port) }

    /// What one staging ended with, recorded already.
    public struct Finished: Sendable {
        public var row: Staging
        public var notice: Notice
        public var seconds: Double
        public var outcome: ArtifactStager.Outcome
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
            if let server, let peer { await ArtifactStager.stopServing(peer.client, server) }
            if error is CancellationError || Task.isCancelled { throw CancellationError() }
            report = ArtifactStager.Report()
            report.outcome = .unusable(error is PeerCopy.Unavailable ? "\(error)" : "the stager could not run on \(node): \(error)")
        }
        if let server, let peer { await ArtifactStager.stopServing(peer.client, server) }
        if let source = need.version.source?.node, case .fetchFailed(let path, let detail)? = report.outcome {
            report.outcome = .fetchFailed(path: path, detail: detail + " (copying from node \(source), which must hold it under its model root)")
        }
        return record(row: latest.value, need: need, report: report, seconds: begun.duration(to: clock.now).seconds, store: store)
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
    static func record(row: Staging, need: StagingPlan.Need, report: ArtifactStager.Report, seconds: Double, store: StateStore) -> Finished {
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
            verifications = need.version.artifacts.map {
                Verification(model: need.model, version: need.version.version, path: $0.path, node: row.node, expected: $0.sha256,
                             actual: $0.sha256, ok: true, detail: "", verifiedAt: now)
            }
            notice = Notice(kind: "node", name: row.node, warning: false, reason: .artifactsStaged,
                            message: "\(label): \(need.version.artifacts.count) file(s), \(Self.size(row.bytesTotal)) staged and sha256-checked in "
                                + String(format: "%.1f s (%@ fetched, for %@)", seconds, Self.size(report.fetched), need.why.rawValue))
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
        return Finished(row: row, notice: notice, seconds: seconds, outcome: outcome)
    }

    /// A staged version no longer in the manifest as the stored history last had it, when the
    /// files staged (`row.fingerprint`) are exactly that listing's; nil when no stored revision
    /// matches (then the files are left alone: which paths they are is not known for sure).
    /// Looked up once per row and fingerprint.
    func removedVersion(_ row: Staging, store: StateStore) -> ModelVersion? {
        let key = "\(row.model)@\(row.version)#\(row.fingerprint)"
        if let known = removedVersions[key] { return known }
        var found: ModelVersion?
        let object = ObjectKey(.model, row.model)
        for revision in (try? store.revisions(changing: object)) ?? [] {
            guard let version = (try? store.object(object, at: revision))??.model?.version(row.version) else { continue }
            if Staging.fingerprint(version) == row.fingerprint { found = version }
            break
        }
        removedVersions[key] = .some(found)
        return found
    }

    /// The image a purge runs in: `--stager-image`; a listed version's own; for a removed
    /// version (its image may have been collected since) the first of its own and its model's
    /// kept versions' images that the node has.
    func purgeImage(for version: ModelVersion, listed: Bool, model: ModelSpec?, client: DockerClient) async throws -> String {
        if let image = settings.image { return image }
        if listed { return version.image }
        let candidates = [version.image] + (model?.versions.reversed().map(\.image) ?? [])
        for image in candidates where (try? await client.hasImage(image)) == true { return image }
        return version.image
    }

    public static func size(_ bytes: Int64) -> String {
        bytes >= 1 << 30 ? String(format: "%.1f GiB", Double(bytes) / Double(1 << 30)) : String(format: "%.1f MiB", Double(bytes) / Double(1 << 20))
    }

    /// Purges, node by node, staged versions nothing keeps any more (`StagingPlan.purgeable`)
    /// that no container on the node runs.
    func purge(rows: [Staging], desired: [Resource], observed: [String: NodeObservation], specs: [String: NodeSpec], store: StateStore, fence: Fence?) async {
        let models = Dictionary(desired.compactMap { r in r.model.map { (r.name, $0) } }, uniquingKeysWith: { a, _ in a })
        for row in rows where row.state != .purged {
            let key = Self.key(row.node, row.key)
            guard let spec = specs[row.node], running[key] == nil, !purging.contains(key),
                  (purgeRetry[key]?.after ?? .distantPast) <= Date(),
                  StagingPlan.purgeable(model: row.model, version: row.version, desired: desired),
                  case .reachable(let containers)? = observed[row.node],
                  // A container whose deployment is gone (being removed) counts as this model's: wait for it.
                  !containers.contains(where: { $0.modelVersion == row.version && (desiredModel(of: $0, desired) ?? row.model) == row.model }) else { continue }
            // The paths: from the model's listing of the version or, for a version no longer
            // listed, from the stored revision that last listed it with the files staged here.
            let listed = models[row.model]?.version(row.version)
            guard let version = listed ?? removedVersion(row, store: store), version.isStaged else { continue }
            // The node a version is copied from holds the originals: they are the operator's, not Berth's copies.
            if version.source?.node == row.node { continue }
            // Paths another kept version lists stay (the same file may serve both).
            let keptPaths = Set(models.flatMap { name, m in
                m.versions.filter { v in v.isStaged && !StagingPlan.purgeable(model: name, version: v.version, desired: desired) }.flatMap(\.artifacts).map(\.path)
            })
            let paths = version.artifacts.map(\.path).filter { !keptPaths.contains($0) }
            if await fence?() != nil { return }
            // The row stops claiming the files before the first byte is overwritten: a controller
            // killed mid-purge leaves a row no replica starts on, and the next one purges again
            // (or, if the version is needed after all, stages it again, re-hashing what is there).
            var marked = row
            marked.state = .failed
            marked.updatedAt = Date()
            marked.detail = "purging: files being overwritten and removed (staged again before serving)"
            guard (try? store.record(stagings: [marked])) != nil else { continue }
            purging.insert(key)
            defer { purging.remove(key) }
            func failed(_ message: String) {
                let attempts = (purgeRetry[key]?.attempts ?? 0) + 1
                purgeRetry[key] = (attempts, Date().addingTimeInterval(Self.retryDelay(attempt: attempts)))
                events.append(Notice(kind: "node", name: row.node, warning: true, reason: .artifactsPurgedFromNode,
                                     message: message + String(format: " (attempt %d; next in %.0f s)", attempts, Self.retryDelay(attempt: attempts))))
            }
            do {
                let client = try await pool.client(for: spec.engine)
                let image = try await purgeImage(for: version, listed: listed != nil, model: models[row.model], client: client)
                let report = try await ArtifactStager.purgeOnNode(client, root: spec.modelStorage.modelRoot, paths: paths,
                                                                  image: image, passes: settings.purgePasses)
                let now = Date()
                if let failure = report.failure {
                    failed("\(row.key) on \(row.node): purge stopped: \(failure)")
                    continue
                }
                purgeRetry[key] = nil
                var purged = row
                purged.state = .purged
                purged.bytesDone = 0
                purged.updatedAt = now
                purged.detail = "purged: \(report.files) file(s), \(Self.size(report.bytes)) overwritten \(settings.purgePasses) times and removed"
                let marks = version.artifacts.map {
                    Verification(model: row.model, version: row.version, path: $0.path, node: row.node, expected: $0.sha256, actual: nil,
                                 ok: false, detail: "purged from \(row.node); staged again before serving it", verifiedAt: now)
                }
                try? store.record(stagings: [purged], verifications: marks)
                events.append(Notice(kind: "node", name: row.node, warning: false, reason: .artifactsPurgedFromNode,
                                     message: "\(row.key) on \(row.node): \(report.files) file(s), \(Self.size(report.bytes)) overwritten "
                                        + "\(settings.purgePasses) times and removed ("
                                        + (listed == nil ? "removed from the manifest; paths from its last stored revision)" : "no longer among the versions kept)")))
            } catch {
                failed("\(row.key) on \(row.node): purge could not run: \(error)")
            }
        }
    }

    func desiredModel(of container: ObservedContainer, _ desired: [Resource]) -> String? {
        desired.first { $0.kind == .deployment && $0.name == container.deployment }?.deployment?.model
    }
}

/// Runs staging rounds beside the passes while this controller leads: every `interval`, and at
/// once after a pass at a new revision. Losing the lead stops every staging (partial files stay).
final class StagingService: Service, Sendable {
    let staging: ArtifactStaging
    let latest: LatestPass
    let interval: TimeInterval
    let clock: any Clock<Duration>

    init(staging: ArtifactStaging, latest: LatestPass, interval: TimeInterval, clock: any Clock<Duration> = ContinuousClock()) {
        self.staging = staging
        self.latest = latest
        self.interval = interval
        self.clock = clock
    }

    func run() async throws {
        let tick = Duration.milliseconds(250)
        await everyTick(tick, on: clock, state: (revision: Int64(-1), since: Duration.zero)) { last in
            guard let seen = self.latest.value else {
                if last.revision != -1 { await self.staging.stopAll() }
                last = (-1, .zero)
                return
            }
            if seen.revision != last.revision || last.since.seconds >= self.interval {
                last = (seen.revision, .zero)
                await self.staging.round(desired: seen.desired, plan: seen.pass.plan, observed: seen.pass.observed, health: seen.pass.health, fence: seen.fence)
            }
            last.since += tick
        }
        await staging.stopAll()
    }
}

/// A copy from another node (`source: { node: NAME }`): that node serves its model root for the
/// length of the copy (`ArtifactStager.serveOnNode`) and the stager fetches from it as from any
/// file server, so every byte is hash-checked on arrival: a source holding a wrong file fails
/// the copy, never the target.
public struct PeerCopy: Sendable {
    /// The serving node and the port its file server listens on.
    public struct Target: Sendable {
        public var node: String
        public var spec: NodeSpec
        public var port: Int
        public init(node: String, spec: NodeSpec, port: Int) {
            self.node = node
            self.spec = spec
            self.port = port
        }
    }

    public var target: Target
    public var client: DockerClient

    public init(target: Target, client: DockerClient) {
        self.target = target
        self.client = client
    }

    /// Outside the replica port ranges of the examples and the local cluster.
    public static let defaultPorts = 7380...7395

    /// "7380-7395" (or one port) as a range; nil when it is not one.
    public static func ports(_ text: String) -> ClosedRange<Int>? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard (1...2).contains(parts.count), let from = parts.first ?? nil, let to = parts.last ?? nil, 1 <= from, from <= to, to <= 65_535 else { return nil }
        return from...to
    }

    struct Unavailable: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}
