import BerthRuntime
import BerthModel
import Foundation

/// Image pulls run beside the passes, never inside one: a replica whose image is missing waits in
/// phase `pulling` (with progress) while node checks, failover, gateway updates and status go on.
/// One pull per node and image at a time; a failed pull is reported once and then retried by the
/// next create that needs it.
public actor ImagePulls {
    public struct Pull: Sendable {
        public var image: String
        public var node: String
        public var started: ContinuousClock.Instant
        public var done: Int64 = 0
        public var total: Int64 = 0
        /// Why it failed; nil while it runs.
        public var failure: String?

        /// "pulling IMAGE on NODE: 120 of 900 MB (13 %), 14 s", for a replica's status.
        /// When this summary was read.
        var asOf: ContinuousClock.Instant = .now
        public var summary: String {
            let seconds = Int(started.duration(to: asOf).components.seconds)
            let bytes = total > 0 ? ": \(done / 1_000_000) of \(total / 1_000_000) MB (\(done * 100 / total) %)" : ""
            return "pulling \(image) on \(node)\(bytes), \(seconds) s"
        }
    }

    var pulls: [String: Pull] = [:]
    let onFinish: @Sendable (String) -> Void

    /// `onFinish` hears about every finished pull (to wake the loop).
    let clock: any ControllerClock

    public init(clock: any ControllerClock = SystemClock(), onFinish: @escaping @Sendable (String) -> Void = { _ in }) {
        self.clock = clock
        self.onFinish = onFinish
    }

    static func key(_ node: String, _ image: String) -> String { "\(node)|\(image)" }

    /// The pull of `image` on `node` in flight, if any.
    public func running(node: String, image: String) -> Pull? {
        pulls[Self.key(node, image)].flatMap { p in
            guard p.failure == nil else { return nil }
            var p = p
            p.asOf = clock.now
            return p
        }
    }

    /// Takes the failure of the last pull of `image` on `node`, once.
    public func takeFailure(node: String, image: String) -> String? {
        let key = Self.key(node, image)
        guard let failure = pulls[key]?.failure else { return nil }
        pulls[key] = nil
        return failure
    }

    /// Pulls still running (failed ones waiting to be reported are not counted).
    public var inFlight: Int { pulls.values.filter { $0.failure == nil }.count }

    /// Starts pulling unless a pull of the same image on the node runs already.
    public func begin(node: String, image: String, client: any ContainerRuntime, auth: RegistryAuth?) {
        let key = Self.key(node, image)
        if let p = pulls[key], p.failure == nil { return }
        pulls[key] = Pull(image: image, node: node, started: clock.now)
        Task.detached { [onFinish] in
            do {
                try await client.pullImage(image, auth: auth, timeout: .seconds(1800)) { done, total in
                    Task { await self.progress(key, done: done, total: total) }
                }
                await self.finished(key, failure: nil)
            } catch {
                await self.finished(key, failure: "\(error)")
            }
            onFinish("pulled \(image) on \(node)")
        }
    }

    func progress(_ key: String, done: Int64, total: Int64) {
        pulls[key]?.done = done
        pulls[key]?.total = total
    }

    func finished(_ key: String, failure: String?) {
        if let failure { pulls[key]?.failure = failure } else { pulls[key] = nil }
    }
}
