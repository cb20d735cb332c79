import BerthRuntime
import BerthModel
import Foundation

/// Why an action did not go through: what kind of refusal or failure, and its own words.
/// Callers decide on `code` (and an engine's `runtime` code), never on the text.
public struct ActionError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// Not sent: this controller no longer holds the lease at its epoch.
        case fenced
        /// Not sent: another container still holds the GPUs or the port it needs.
        case resourcesHeld
        /// Sent, and the engine refused or failed it (`runtime` has the engine's code when known).
        case engine
    }

    public var code: Code
    /// The engine's error code, for `.engine`.
    public var runtime: RuntimeError.Code?
    public var description: String

    public init(_ code: Code, runtime: RuntimeError.Code? = nil, _ description: String) {
        self.code = code
        self.runtime = runtime
        self.description = description
    }

    /// Whether anything reached the engine.
    public var sent: Bool { code == .engine }
}

/// What happened to one action.
public struct ActionResult: Sendable {
    public var action: Action
    /// nil when it went through.
    public var error: ActionError?
    /// Not run yet, and why (its image is being pulled): neither done nor failed.
    public var waiting: String?
    /// The id of the container a create made (or adopted).
    public var created: String?

    public init(action: Action, error: ActionError?, waiting: String? = nil, created: String? = nil) {
        self.action = action
        self.error = error
        self.waiting = waiting
        self.created = created
    }
}

/// Decides, before each batch of engine actions, whether this process may still act: nil when
/// it may, else why not (the lease went to another controller). See `StateStore.renewLease`.
public typealias Fence = @Sendable () async -> String?

/// Per-container retry spacing: a container that keeps failing to start, or keeps exiting, is
/// tried again after 1, 2, 4 … 60 s rather than on every pass. Only timing lives here: what to do
/// is always planned afresh.
public actor Backoff {
    struct Entry {
        var attempts: Int
        var next: ContinuousClock.Instant
    }
    var entries: [String: Entry] = [:]
    let base: Duration
    let cap: Duration

    public init(base: Duration = .seconds(1), cap: Duration = .seconds(60)) {
        self.base = base
        self.cap = cap
    }

    /// Whether `key` may be tried now.
    public func allows(_ key: String, now: ContinuousClock.Instant = .now) -> Bool {
        entries[key].map { now >= $0.next } ?? true
    }

    /// Notes an attempt; the next one waits twice as long as the last, up to the cap.
    public func attempted(_ key: String, now: ContinuousClock.Instant = .now) {
        var e = entries[key] ?? Entry(attempts: 0, next: now)
        e.attempts += 1
        let wait = min(cap, base * (1 << min(e.attempts - 1, 20)))
        e.next = now + wait
        entries[key] = e
    }

    /// Forgets keys that are fine now (their container is ready or gone).
    public func reset(keeping: (String) -> Bool) {
        entries = entries.filter { keeping($0.key) }
    }

    public func attempts(_ key: String) -> Int { entries[key]?.attempts ?? 0 }

    /// Nothing is backing off (the usual state of a settled fleet).
    public var isEmpty: Bool { entries.isEmpty }
}
