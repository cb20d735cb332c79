import BerthControl
import BerthModel
import BerthRuntime
import BerthStore
import Foundation

/// What the console's pages and event streams read, from the store at most once a second however
/// many tabs are open: a dozen streams asking every second would otherwise be a dozen blocking
/// store calls a second beside the controller's own (on PostgreSQL each waits its turn on the
/// process's one connection).
final class ConsoleFeed: Sendable {
    let store: StateStore
    let board: StatusBoard
    static let freshness: Duration = .seconds(1)

    private struct Cached {
        var events: [Event] = []
        var eventsAt: ContinuousClock.Instant?
        var stored: FleetStatus?
        var storedAt: ContinuousClock.Instant?
    }

    private let cache = Locked(Cached())

    init(store: StateStore, board: StatusBoard) {
        self.store = store
        self.board = board
    }

    /// The newest stored events (at most 100), newest first.
    func events() -> [Event] {
        let now = ContinuousClock.now
        if let at = cache.value.eventsAt, now - at < Self.freshness { return cache.value.events }
        let events = (try? store.events(limit: 100)) ?? cache.value.events
        cache.withLock {
            $0.events = events
            $0.eventsAt = now
        }
        return events
    }

    /// The leader's status from its memory; a standby's, the status its leader last stored.
    func status() async -> FleetStatus {
        if await board.leader { return await board.status }
        let now = ContinuousClock.now
        if let at = cache.value.storedAt, now - at < Self.freshness, let stored = cache.value.stored { return stored }
        let stored = (try? store.fleetStatus()) ?? cache.value.stored ?? FleetStatus(controller: nil, deployments: [], nodes: [])
        cache.withLock {
            $0.stored = stored
            $0.storedAt = now
        }
        return stored
    }
}
