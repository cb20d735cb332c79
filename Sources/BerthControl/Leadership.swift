import BerthReconciler
import BerthStore
import BerthRuntime
import Foundation
import ServiceLifecycle

/// Who leads, as this process knows it.
public enum LeadershipState: Sendable, Equatable {
    /// Another controller holds the lease (named when known), or nobody does and this process has
    /// not taken it yet.
    case standby(holder: String?)
    /// This process holds the lease at `epoch`: only it acts on engines.
    case leading(epoch: Int64)

    public var epoch: Int64? { if case .leading(let e) = self { e } else { nil } }
}

/// The controller lease as a service: `step` takes the lease when it is free, released or
/// abandoned (unrenewed for its TTL on this process's monotonic clock) and renews it while held;
/// `run` renews it every third of its TTL beside the passes, so a pass slowed by a dead engine
/// never costs it; `fence` is asked before every batch of engine actions. Renewing never takes a
/// lease another controller holds: a deposed leader cannot renew its way back.
///
/// Used by `berth controller` (in its service group) and by the one-shot `berth reconcile`.
public final class Leadership: Service, Sendable {
    public let identity: String
    public let ttl: TimeInterval
    let statePath: String
    let clock: any Clock<Duration>
    /// Where the lease reads the time: its wall-clock stamps and its monotonic watch.
    let time: any ControllerClock
    private let state = Locked(LeadershipState.standby(holder: nil))
    private let watch = Locked(LeaseWatch())

    /// `clock` paces the heartbeat; `time` is read for the lease (the simulator passes its manual clock).
    public init(statePath: String, identity: String, ttl: TimeInterval, clock: any Clock<Duration> = ContinuousClock(),
                time: any ControllerClock = SystemClock()) {
        self.statePath = statePath
        self.identity = identity
        self.ttl = ttl
        self.clock = clock
        self.time = time
    }

    public var current: LeadershipState { state.value }

    /// One attempt at the lease; returns it as stored.
    @discardableResult
    public func step(_ store: StateStore) throws -> Lease {
        var w = watch.value
        let lease = try store.acquireLease(holder: identity, ttl: ttl, now: time.date, watch: &w, at: time.now)
        watch.value = w
        state.value = lease.holder == identity ? .leading(epoch: lease.epoch) : .standby(holder: lease.holder)
        return lease
    }

    /// Renews the lease held at the current epoch; a lease another controller took makes this
    /// process a standby.
    public func renew(_ store: StateStore) {
        guard let epoch = state.value.epoch else { return }
        do { try store.renewLease(holder: identity, epoch: epoch, ttl: ttl, now: time.date) } catch let lost as LeaseLost {
            state.value = .standby(holder: lost.holder)
        } catch {}
    }

    /// Gives the lease up (a successor takes over at once); this process stands by.
    public func release(_ store: StateStore) {
        guard state.value.epoch != nil else { return }
        try? store.releaseLease(holder: identity)
        state.value = .standby(holder: nil)
    }

    /// Marks the lease lost (a pass found another holder).
    public func lost(to holder: String?) { state.value = .standby(holder: holder) }

    /// Asked before every batch of engine actions: nil while this process holds the lease at its
    /// epoch (renewing it), else why not.
    public func fence(_ store: StateStore) -> Fence {
        { [self] in
            guard let epoch = state.value.epoch else { return "this controller does not hold the lease" }
            do {
                try store.renewLease(holder: identity, epoch: epoch, ttl: ttl, now: time.date)
                return nil
            } catch {
                state.value = .standby(holder: (error as? LeaseLost)?.holder)
                return "\(error)"
            }
        }
    }

    /// The heartbeat: renews every third of the TTL on its own connection until cancelled or the
    /// group shuts down.
    public func run() async throws {
        let store = try StateStore.open(path: statePath, create: false)
        await everyTick(.milliseconds(Int64(ttl * 1000 / 3)), on: clock, state: ()) { _ in self.renew(store) }
    }
}
