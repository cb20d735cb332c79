import BerthRuntime
import Foundation

/// Why the loop should run a pass early: the first event since the last look, others folded in.
/// The loop waits on it (`wait(upTo:)`) and is resumed by the first post, rather than looking
/// every few milliseconds.
final class WakeUps: Sendable {
    struct State {
        var pending: [String] = []
        var endedWatchers: [String] = []
        /// The loop, waiting for a post.
        var waiter: CheckedContinuation<Void, Never>?

        /// The waiting continuation, no longer stored.
        mutating func takeWaiter() -> CheckedContinuation<Void, Never>? {
            defer { waiter = nil }
            return waiter
        }
    }

    private let state = Locked(State())

    /// A node's event stream ended (its engine went away, or restarted): worth a look at once.
    func ended(_ node: String, wake: Bool) {
        let resumed = state.withLock { s in
            s.endedWatchers.append(node)
            guard wake else { return nil as CheckedContinuation<Void, Never>? }
            s.pending.append("the event stream of \(node) ended")
            return s.takeWaiter()
        }
        resumed?.resume()
    }

    func takeEnded() -> [String] {
        state.withLock { s in
            defer { s.endedWatchers.removeAll() }
            return s.endedWatchers
        }
    }

    func post(_ reason: String) {
        let resumed = state.withLock { s in
            s.pending.append(reason)
            return s.takeWaiter()
        }
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
                let (now, earlier) = state.withLock { s -> (CheckedContinuation<Void, Never>?, CheckedContinuation<Void, Never>?) in
                    guard s.pending.isEmpty, !Task.isCancelled else { return (c, nil) }
                    let earlier = s.takeWaiter()  // one waiter at a time: the loop
                    s.waiter = c
                    return (nil, earlier)
                }
                now?.resume()
                earlier?.resume()
            }
        } onCancel: {
            state.withLock { $0.takeWaiter() }?.resume()
        }
    }

    func take() -> String? {
        state.withLock { s in
            guard let first = s.pending.first else { return nil }
            let more = s.pending.count - 1
            s.pending.removeAll()
            return first + (more > 0 ? " (+\(more) more)" : "")
        }
    }
}
