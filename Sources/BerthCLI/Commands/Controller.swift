import ArgumentParser
import BerthDocker
import BerthModel
import BerthReconciler
import BerthStore
import Foundation

struct Controller: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Keep reconciling the nodes to the stored desired state until stopped.",
        discussion: """
            Runs a reconcile pass (as `berth reconcile`) every --interval, at once when a node's engine \
            reports that one of Berth's containers died or went away (a killed replica is replaced \
            within about a second), and at once when a new revision is stored. Reads the desired state \
            afresh every pass. SIGINT or SIGTERM stops it after the current pass; containers \
            keep running. Early version: no leader lease, health probes, HTTP API or metrics yet.
            """)

    @Option(help: "Seconds between passes when nothing happens.")
    var interval: Double = 5

    @OptionGroup var state: StateOptions

    func run() async throws {
        let signals = SignalWatcher()
        let reconciler = Reconciler()
        let wake = WakeUps()
        var watched: [String: Task<Void, Never>] = [:]
        Console.note("berth controller: state \(state.path), pass every \(interval) s and on container events")
        var pass = 0
        var seenRevision: Int64 = -1
        // Opened once and kept: the wait between passes asks it for the newest revision 4 times a second.
        var store: StateStore?
        while !signals.stopped {
            pass += 1
            let started = ContinuousClock.now
            do {
                if store == nil { store = try StateStore.open(path: state.path, create: false) }
                let desired = try store!.objects().map(\.resource)
                let revision = try store!.latestRevision() ?? 0
                seenRevision = revision
                let nodes = desired.compactMap { r in r.node.map { (name: r.name, spec: $0) } }
                // Follow each node's events; a watcher that ends is started again next pass.
                for (name, spec) in nodes where watched[name] == nil {
                    watched[name] = Task {
                        guard let client = try? await reconciler.pool.client(for: spec.engine) else { return }
                        do {
                            for try await event in client.events() where ["die", "destroy", "oom", "stop"].contains(event.action) {
                                wake.post("\(event.action) \(event.actor.attributes["name"] ?? event.actor.id) on \(name)")
                            }
                        } catch {}
                    }
                }
                for (name, task) in watched where task.isCancelled || !nodes.contains(where: { $0.name == name }) {
                    task.cancel()
                    watched[name] = nil
                }
                let result = await reconciler.pass(desired: desired, revision: revision)
                let plan = result.plan
                for r in result.results {
                    log(r.error.map { "\(r.action) FAILED: \($0)" } ?? "\(r.action)")
                }
                let unreachable = result.unreachable.map(\.node)
                if !plan.isNoOp || !unreachable.isEmpty || pass == 1 {
                    let elapsed = ContinuousClock.now - started
                    log("pass \(pass) at revision \(revision): \(plan.actions.count) action(s), \(plan.kept.count) kept"
                        + (unreachable.isEmpty ? "" : ", unreachable: \(unreachable.joined(separator: ", "))")
                        + (plan.schedule.unplaced.isEmpty ? "" : ", \(plan.schedule.unplaced.count) unschedulable")
                        + " (\(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000) ms)")
                }
                // Containers just created or removed send events of their own; let them pass.
                if !plan.isNoOp { try? await Task.sleep(for: .milliseconds(200)) }
            } catch {
                store = nil  // opened afresh next pass
                log("pass \(pass) failed: \(error)")
            }
            // Sleep until the interval ends, an event arrives, or a signal says stop.
            let deadline = ContinuousClock.now + .milliseconds(Int64(interval * 1000))
            var reason: String?
            var ticks = 0
            while ContinuousClock.now < deadline, !signals.stopped {
                reason = wake.take()
                if reason != nil { break }
                // A new revision is worth a pass at once; looking costs one small read.
                ticks += 1
                if ticks % 5 == 0, let latest = try? store?.latestRevision(), latest != seenRevision {
                    reason = "revision \(latest) stored"
                    break
                }
                try? await Task.sleep(for: .milliseconds(50))
            }
            if let reason { log("woken: \(reason)") }
        }
        for task in watched.values { task.cancel() }
        log("stopped after \(pass) pass(es); containers keep running")
    }

    func log(_ line: String) {
        Console.print("\(HistoryRendering.time(Date())) \(line)")
    }
}

/// Why the loop should run a pass early: the first event since the last look, others folded in.
final class WakeUps: @unchecked Sendable {
    private let lock = NSLock()
    private var pending: [String] = []

    func post(_ reason: String) {
        lock.lock()
        pending.append(reason)
        lock.unlock()
    }

    func take() -> String? {
        lock.lock()
        defer { lock.unlock() }
        guard let first = pending.first else { return nil }
        let more = pending.count - 1
        pending.removeAll()
        return first + (more > 0 ? " (+\(more) more)" : "")
    }
}

/// Notes SIGINT and SIGTERM so the loop can stop between passes.
final class SignalWatcher: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    private var sources: [DispatchSourceSignal] = []

    var stopped: Bool {
        lock.lock()
        defer { lock.unlock() }
        return flag
    }

    init() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [weak self] in
                guard let self else { return }
                self.lock.lock()
                self.flag = true
                self.lock.unlock()
            }
            source.resume()
            sources.append(source)
        }
    }
}
