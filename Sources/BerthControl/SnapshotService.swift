import BerthModel
import BerthStore
import Foundation
import Logging
import ServiceLifecycle

/// Hourly (by default) snapshots of the state database while this controller leads, on their own
/// connection and task: a long copy never stalls a pass. Checks every `min(5 s, interval / 2)`
/// on its clock whether the newest snapshot is older than the interval.
public final class SnapshotService: Service, Sendable {
    let options: ControllerOptions
    let leadership: Leadership
    let metrics: ControllerMetrics
    let logger: Logger
    let clock: any Clock<Duration>

    public init(options: ControllerOptions, leadership: Leadership, metrics: ControllerMetrics, logger: Logger,
                clock: any Clock<Duration> = ContinuousClock()) {
        self.options = options
        self.leadership = leadership
        self.metrics = metrics
        self.logger = logger
        self.clock = clock
    }

    public func run() async throws {
        guard let interval = options.snapshotInterval else { return try await gracefulShutdown() }
        await everyTick(.milliseconds(Int64(min(5, interval / 2) * 1000)), on: clock, state: ()) { _ in
            if self.leadership.current.epoch != nil, self.due(interval) { Self.takeSnapshot(options: self.options, logger: self.logger, metrics: self.metrics) }
        }
    }

    func due(_ interval: TimeInterval) -> Bool {
        let last = (try? SnapshotStore(statePath: options.statePath).list().first?.createdAt) ?? .distantPast  // newest first
        return Date().timeIntervalSince(last) >= interval
    }

    /// One snapshot with SQLite's online copy, checked, recorded, then older ones pruned.
    static func takeSnapshot(options: ControllerOptions, logger: Logger, metrics: ControllerMetrics) {
        let started = ContinuousClock.now
        do {
            let store = try StateStore.open(path: options.statePath, create: false)
            let snapshots = SnapshotStore(statePath: options.statePath)
            let record = try snapshots.create(from: store)
            let pruned = try snapshots.prune(hourly: options.snapshotKeepHourly, daily: options.snapshotKeepDaily)
            let took = ContinuousClock.now - started
            metrics.snapshotTaken(at: record.createdAt, duration: took)
            try? store.record(events: [Event(time: Date(), revision: record.revision, kind: nil, name: nil, reason: Reason.snapshotTaken.rawValue,
                                             message: "snapshot \(record.id) of revision \(record.revision), \(record.sizeBytes) bytes, sha256 \(record.sha256.prefix(12))"
                                                 + (pruned.isEmpty ? "" : "; pruned \(pruned.count)"))])
            let prunedText = pruned.isEmpty ? "" : "; pruned \(pruned.joined(separator: ", "))"
            logger.info("snapshot \(record.id) taken (revision \(record.revision), \(record.sizeBytes) bytes) in \(took)\(prunedText)")
        } catch {
            metrics.snapshotFailed()
            logger.error("snapshot failed: \(error)")
        }
    }
}
