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

    private let recentEvents = Recent<[Event]>()
    private let recentStatus = Recent<FleetStatus>()

    init(store: StateStore, board: StatusBoard) {
        self.store = store
        self.board = board
    }

    /// The newest stored events (at most 100), newest first.
    func events() -> [Event] {
        recentEvents.value(or: []) { try store.events(limit: 100) }
    }

    /// The leader's status from its memory; a standby's, the status its leader last stored.
    func status() async -> FleetStatus {
        if await board.leader { return await board.status }
        return recentStatus.value(or: FleetStatus(controller: nil, deployments: [], nodes: [])) { try store.fleetStatus() }
    }

    /// A value read at most once per `freshness`; when a read fails, the last one read (else `empty`).
    private final class Recent<Value: Sendable>: Sendable {
        private let cache = Locked<(value: Value, at: ContinuousClock.Instant)?>(nil)

        func value(or empty: Value, _ read: () throws -> Value) -> Value {
            let now = ContinuousClock.now
            let last = cache.value
            if let last, now - last.at < ConsoleFeed.freshness { return last.value }
            let value = (try? read()) ?? last?.value ?? empty
            cache.withLock { $0 = (value, now) }
            return value
        }
    }
}
