import BerthDocker
import BerthModel
import BerthReconciler
import BerthRuntime
import BerthStore
import Foundation
import Logging
import ServiceLifecycle

/// What the leading controller's last pass saw, for the services that work beside the passes;
/// empty while this controller does not lead.
final class LatestPass: Sendable {
    struct Seen: Sendable {
        var desired: [Resource]
        var revision: Int64
        var pass: Reconciler.Pass
        var fence: Fence
    }

    private let box = Locked<Seen?>(nil)

    var value: Seen? { box.value }

    func publish(_ seen: Seen?) { box.value = seen }
}

/// Follows each node's engine events while this controller leads: a replica that dies, is
/// destroyed or stopped wakes the loop at once. A stream that ends (engine down or restarted) is
/// started again at the next tick; nodes no longer desired lose theirs.
final class EngineEventService: Service, Sendable {
    let pool: ClientPool
    let wake: WakeUps
    let latest: LatestPass
    let clock: any Clock<Duration>
    /// Called with a replica that died: it is asked afresh, not taken as ready for the rest of its interval.
    let forget: @Sendable (String) -> Void

    init(pool: ClientPool, wake: WakeUps, latest: LatestPass, forget: @escaping @Sendable (String) -> Void = { _ in },
         clock: any Clock<Duration> = ContinuousClock()) {
        self.pool = pool
        self.wake = wake
        self.latest = latest
        self.forget = forget
        self.clock = clock
    }

    func run() async throws {
        let watchers = await everyTick(.milliseconds(250), on: clock, state: [String: Task<Void, Never>]()) { watchers in
            self.follow(self.latest.value?.desired ?? [], &watchers)
        }
        for w in watchers.values { w.cancel() }
    }

    func follow(_ desired: [Resource], _ watchers: inout [String: Task<Void, Never>]) {
        let nodes = desired.compactMap { r in r.node.map { (name: r.name, spec: $0) } }
        let names = Set(nodes.map(\.name))
        for name in wake.takeEnded() { watchers[name] = nil }
        for (name, task) in watchers where !names.contains(name) {
            task.cancel()
            watchers[name] = nil
        }
        for (name, spec) in nodes where watchers[name] == nil {
            let (pool, wake, forget) = (pool, wake, forget)
            watchers[name] = Task {
                // A stream that never connected ends quietly: the next tick tries again.
                guard let client = try? await pool.client(for: spec.engine) else { return wake.ended(name, wake: false) }
                defer { wake.ended(name, wake: true) }
                do {
                    for try await event in client.events() where ["die", "destroy", "oom", "stop"].contains(event.action) {
                        // The engine sends `die` before its container list shows the exit (10–200 ms
                        // later): a pass woken at once would list the container running. Its
                        // inspect answers only once the exit is recorded.
                        forget(event.actor.id)
                        if event.action == "die" { _ = try? await client.inspectContainer(event.actor.id) }
                        wake.post("\(event.action) \(event.actor.attributes["name"] ?? event.actor.id) on \(name)")
                    }
                } catch {}
            }
        }
    }
}

/// Asks the leading controller's replicas beside its passes (`HealthWatch`); a standby's watch
/// has nothing to ask (the loop empties it when leadership changes).
final class HealthWatchService: Service, Sendable {
    let watch: HealthWatch

    init(watch: HealthWatch) { self.watch = watch }

    func run() async throws {
        await cancelWhenGracefulShutdown { await self.watch.run() }
    }
}

/// Keeps model versions' images and artifacts ready beside the passes while this controller
/// leads: a round every `interval`, and at once after a pass at a new revision. Each round's
/// engine actions are fenced by the lease like a pass's.
final class ImageKeeperService: Service, Sendable {
    let keeper: ImageKeeper
    let latest: LatestPass
    let interval: TimeInterval
    let wake: WakeUps
    let clock: any Clock<Duration>

    init(keeper: ImageKeeper, latest: LatestPass, interval: TimeInterval, wake: WakeUps, clock: any Clock<Duration> = ContinuousClock()) {
        self.keeper = keeper
        self.latest = latest
        self.interval = interval
        self.wake = wake
        self.clock = clock
    }

    func run() async throws {
        let tick = Duration.milliseconds(250)
        // The revision of the last round, and the time since it.
        await everyTick(tick, on: clock, state: (revision: Int64(-1), since: Duration.zero)) { last in
            if let seen = self.latest.value, seen.revision != last.revision || last.since.seconds >= self.interval {
                last = (seen.revision, .zero)
                let round = ImageKeeper.round(desired: seen.desired, plan: seen.pass.plan, observed: seen.pass.observed, health: seen.pass.health)
                await self.keeper.run(round, fence: seen.fence)
                self.wake.post("image round done")
            }
            last.since += tick
        }
    }
}

/// Scrapes the ready replicas' `/metrics` every `interval` while this controller leads, into the
/// node and deployment figures on the controller's own `/metrics`.
final class TelemetryService: Service, Sendable {
    let telemetry: Telemetry
    let metrics: ControllerMetrics
    let latest: LatestPass
    let interval: TimeInterval
    let clock: any Clock<Duration>

    let statePath: String
    /// Where the console reads the last scrape.
    let board: StatusBoard?

    init(metrics: ControllerMetrics, latest: LatestPass, interval: TimeInterval, statePath: String, board: StatusBoard? = nil,
         fetch: Telemetry.Fetch? = nil, clock: any Clock<Duration> = ContinuousClock()) {
        telemetry = fetch.map { Telemetry(fetch: $0) } ?? Telemetry()
        self.board = board
        self.metrics = metrics
        self.latest = latest
        self.interval = interval
        self.statePath = statePath
        self.clock = clock
    }

    func run() async throws {
        let tick = Duration.milliseconds(250)
        // Time since the last scrape; nil before the first.
        await everyTick(tick, on: clock, state: Duration?.none) { sinceScrape in
            if let seen = self.latest.value, sinceScrape.map({ $0.seconds >= self.interval }) ?? true {
                sinceScrape = .zero
                let summary = await self.telemetry.scrape(desired: seen.desired, observed: seen.pass.observed, ready: seen.pass.ready)
                self.metrics.record(telemetry: summary)
                await self.board?.update(telemetry: summary)
                await self.holdFaultyGPUs(summary, seen: seen)
            }
            sinceScrape = sinceScrape.map { $0 + tick }
        }
    }

    /// GPUs a DCGM exporter reports faulty (a hardware XID, uncorrectable ECC errors, a failed row
    /// remapping) go out of service, as the image round's nvidia-smi check takes them out; a
    /// controller that lost the lease takes nothing out.
    func holdFaultyGPUs(_ summary: TelemetrySummary, seen: LatestPass.Seen) async {
        let specs = Dictionary(seen.desired.compactMap { r in r.node.map { (r.name, $0) } }, uniquingKeysWith: { a, _ in a })
        let now = Date()
        var holds: [GPUHold] = []
        for (node, n) in summary.nodes {
            guard let readings = n.dcgm, let spec = specs[node] else { continue }
            holds += GPUHealth.holds(GPUHealth.DCGM.judge(declared: spec.gpus, readings: readings), node: node,
                                     alreadyOut: seen.pass.health.outOfServiceGPUs[node] ?? [], since: now)
        }
        guard !holds.isEmpty, await seen.fence() == nil else { return }
        _ = try? StateStore.open(path: statePath, create: false).holdGPUs(holds)
    }
}
