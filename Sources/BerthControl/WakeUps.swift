import BerthRuntime
import Foundation

/// Why the loop should run a pass early: the first event since the last look, others folded in.
/// The loop waits on it (`wait(upTo:)`) and is resumed by the first post, rather than looking
/// every few milliseconds.
final class WakeUps: @unchecked Sendable {
    private let lock = NSLock()
    private var pending: [String] = []
    private var endedWatchers: [String] = []
    /// The loop, waiting for a post.
    private var waiter: CheckedContinuation<Void, Never>?

    /// A node's event stream ended (its engine went away, or restarted): worth a look at once.
    func ended(_ node: String, wake: Bool) {
        lock.lock()
        endedWatchers.append(node)
        if wake { pending.append("the event stream of \(node) ended") }
        let resumed = wake ? takeWaiter() : nil
        lock.unlock()
        resumed?.resume()
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
        let resumed = takeWaiter()
        lock.unlock()
        resumed?.resume()
    }

    /// Waits until something is posted, `timeout` passes or the task is cancelled; returns what
    /// was posted meanwhile (folded as `take` does), or nil.
    func wait(upTo timeout: Duration) async -> String? {
        if let reason = take() { return reason }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.posted() }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
        return take()
    }

    /// Returns once something is posted, or at once when something is pending or the task is cancelled.
    private func posted() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                lock.lock()
                guard pending.isEmpty, !Task.isCancelled else {
                    lock.unlock()
                    return c.resume()
                }
                let earlier = takeWaiter()  // one waiter at a time: the loop
                waiter = c
                lock.unlock()
                earlier?.resume()
            }
        } onCancel: {
            lock.lock()
            let resumed = takeWaiter()
            lock.unlock()
            resumed?.resume()
        }
    }

    /// The waiting continuation, no longer stored. Called holding the lock.
    private func takeWaiter() -> CheckedContinuation<Void, Never>? {
        defer { waiter = nil }
        return waiter
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
