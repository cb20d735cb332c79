import BerthRuntime
import Foundation

/// Why the loop should run a pass early: the first event since the last look, others folded in.
final class WakeUps: @unchecked Sendable {
    private let lock = NSLock()
    private var pending: [String] = []
    private var endedWatchers: [String] = []

    /// A node's event stream ended (its engine went away, or restarted): worth a look at once.
    func ended(_ node: String, wake: Bool) {
        lock.lock()
        endedWatchers.append(node)
        if wake { pending.append("the event stream of \(node) ended") }
        lock.unlock()
    }

    func takeEnded() -> [String] {
        lock.lock()
        defer { lock.unlock() }
        let ended = endedWatchers
        endedWatchers.removeAll()
        return ended
    }

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
