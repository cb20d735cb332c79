import BerthModel
import BerthRuntime
import Foundation

/// Each node's container listing, kept across passes, so that one engine that accepts calls and
/// never answers delays no other node's repair. A pass waits for the listings it asks for at most
/// `lateAfter`; a node whose listing is still out then is planned as it was last seen, no action
/// is sent to it, and its call goes on — bounded by the observe timeout — for a later pass to
/// read. A node that was never seen is waited for: there is nothing to plan it by.
public actor Listings {
    /// Calls still out, by node.
    private var inFlight: [String: Task<NodeObservation, Never>] = [:]
    /// What each node's last finished call said.
    private var last: [String: NodeObservation] = [:]

    public init() {}

    /// The call for `node`: the one still out, or a new one made by `list`.
    func call(_ node: String, _ list: @escaping @Sendable () async -> NodeObservation) -> Task<NodeObservation, Never> {
        if let task = inFlight[node] { return task }
        let task = Task { await list() }
        inFlight[node] = task
        return task
    }

    /// Keeps a finished call's answer.
    func finished(_ node: String, _ observation: NodeObservation) {
        inFlight[node] = nil
        last[node] = observation
    }

    /// What `node` said last, if it ever answered or timed out.
    func lastSeen(_ node: String) -> NodeObservation? { last[node] }

    /// Forgets nodes no longer desired.
    func retain(_ nodes: Set<String>) {
        for name in last.keys where !nodes.contains(name) { last[name] = nil }
        for (name, task) in inFlight where !nodes.contains(name) {
            task.cancel()
            inFlight[name] = nil
        }
    }
}

/// Collects answers until all are in or the deadline passes, whichever comes first; resumes its
/// waiter exactly once.
final class Gathering: @unchecked Sendable {
    private let lock = NSLock()
    private var answers: [String: NodeObservation] = [:]
    private let expected: Int
    private var waiter: CheckedContinuation<[String: NodeObservation], Never>?
    private var done = false

    init(expected: Int) { self.expected = expected }

    func wait(_ continuation: CheckedContinuation<[String: NodeObservation], Never>) {
        lock.lock()
        if done || answers.count >= expected {
            done = true
            let all = answers
            lock.unlock()
            return continuation.resume(returning: all)
        }
        waiter = continuation
        lock.unlock()
    }

    func add(_ node: String, _ observation: NodeObservation) {
        lock.lock()
        answers[node] = observation
        guard answers.count >= expected else { return lock.unlock() }
        finishLocked()
    }

    /// The deadline: resume with what is in.
    func finish() {
        lock.lock()
        finishLocked()
    }

    private func finishLocked() {
        done = true
        let (w, all) = (waiter, answers)
        waiter = nil
        lock.unlock()
        w?.resume(returning: all)
    }
}
