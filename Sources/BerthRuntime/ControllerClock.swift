import Foundation

/// A point on the controller's monotonic clock.
public typealias MonotonicInstant = ContinuousClock.Instant

/// Where the controller reads the time. Production reads the system's clocks; the simulator and
/// tests pass a `ManualClock` and move it themselves, so every age, backoff and deadline the
/// reconciler computes follows their schedule.
public protocol ControllerClock: Sendable {
    /// Now on the monotonic clock: what durations (ages, backoffs, deadlines) are measured on.
    var now: MonotonicInstant { get }
    /// Now on the wall clock: what status and events show.
    var date: Date { get }
}

/// The system's clocks.
public struct SystemClock: ControllerClock {
    public init() {}
    public var now: MonotonicInstant { .now }
    public var date: Date { Date() }
}

/// A clock that moves only when told to: `advance(by:)`. Both readings move together.
public final class ManualClock: ControllerClock, @unchecked Sendable {
    private let lock = NSLock()
    private let origin: MonotonicInstant
    private let wallOrigin: Date
    private var offset: Duration = .zero
    private var wallShift: TimeInterval = 0

    /// Starts at the system's monotonic now (instants are only ever compared) and at `date`.
    public init(date: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
        origin = .now
        wallOrigin = date
    }

    public var now: MonotonicInstant { lock.withLock { origin.advanced(by: offset) } }
    public var date: Date { lock.withLock { wallOrigin.addingTimeInterval(offset.seconds + wallShift) } }
    /// Time since the clock was made.
    public var elapsed: Duration { lock.withLock { offset } }

    public func advance(by duration: Duration) {
        lock.withLock { offset += duration }
    }

    /// Moves the wall clock alone (NTP stepping it, an operator setting it): the monotonic
    /// reading does not move.
    public func jumpWall(by seconds: TimeInterval) {
        lock.withLock { wallShift += seconds }
    }
}

extension Duration {
    /// As seconds, with the fraction.
    public var seconds: TimeInterval {
        TimeInterval(components.seconds) + TimeInterval(components.attoseconds) / 1e18
    }
}

extension ContinuousClock.Instant {
    /// Seconds from `earlier` to this instant.
    public func seconds(since earlier: ContinuousClock.Instant) -> TimeInterval {
        earlier.duration(to: self).seconds
    }
}
