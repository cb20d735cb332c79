import BerthModel
import BerthReconciler
import BerthRuntime
import Foundation

/// One engine as one controller reaches it: every call is recorded with the caller's name.
struct SimRuntime: ContainerRuntime {
    let engine: SimEngine
    let caller: String

    var location: String { engine.endpoint }

    func listContainers(labels: [String], timeout: Duration) async throws -> [ContainerSummary] {
        try engine.list(caller: caller)
    }

    func ensureContainer(_ planned: PlannedContainer) async throws -> (id: String, outcome: EnsureOutcome) {
        try engine.ensure(planned, caller: caller)
    }

    func startContainer(_ id: String) async throws { try engine.start(id, caller: caller) }
    func stopContainer(_ id: String, grace: Duration) async throws { try engine.stop(id, caller: caller) }
    func removeContainer(_ id: String, force: Bool) async throws { try engine.remove(id, caller: caller) }

    func events(labels: [String], since: Date?) -> AsyncThrowingStream<DockerEvent, any Error> {
        // The simulator drives passes itself; nothing wakes a loop early.
        AsyncThrowingStream { $0.finish() }
    }

    func pullImage(_ reference: String, auth: RegistryAuth?, timeout: Duration,
                   progress: (@Sendable (_ done: Int64, _ total: Int64) -> Void)?) async throws {
        try await engine.pull(reference, caller: caller)
    }

    func hasImage(_ reference: String) async throws -> Bool { engine.hasImage(reference) }
    func listImages() async throws -> [ImageSummary] { engine.imageList().map { ImageSummary(id: $0, repoTags: [$0]) } }
    func removeImage(_ reference: String, force: Bool) async throws { engine.removeImage(reference) }
}

/// The engines as one controller reaches them.
struct SimProvider: RuntimeProvider {
    let engines: [String: SimEngine]
    let caller: String

    func runtime(for engine: EngineEndpoint) async throws -> any ContainerRuntime {
        guard let e = engines[engine.endpoint] else {
            throw RuntimeError(.unreachable, endpoint: engine.endpoint, operation: "connect", message: "no such simulated engine")
        }
        return SimRuntime(engine: e, caller: caller)
    }

    func forget(_ engine: EngineEndpoint) async {}
}

/// The simulated network between the controller and the replicas' health endpoints.
struct SimProber: ReplicaProber {
    /// By address.
    let engines: [String: SimEngine]
    /// Sabotage: every running replica answers 200.
    var lies = false

    func status(_ url: String, timeout: Duration) async -> Int? {
        // http://ADDRESS:PORT/PATH
        guard let rest = url.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: true).dropFirst().first else { return nil }
        let parts = rest.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]), let engine = engines[String(parts[0])] else { return nil }
        let answer = engine.probe(port: port)
        return lies && answer != nil ? 200 : answer
    }
}

/// The gateway's nginx, as far as the simulation needs it: which endpoints it sends traffic to.
/// A member leaving the upstream keeps traffic until the reload that drops it has drained, which
/// takes one pass here (as the controller's gateway step waits for the old workers).
final class SimGateway: @unchecked Sendable {
    private let lock = NSLock()
    private var inEffect: Set<String> = []
    private var draining: Set<String> = []

    /// Endpoints the configuration nginx runs routes to (what a removal must wait for). Those the
    /// last reload dropped drain before the next pass.
    var routed: Set<String> { lock.withLock { inEffect } }

    /// The controller's gateway step: installs `members`, returns the ids of leaving containers
    /// nginx still sends traffic to (their removal waits).
    func sync(members: [(endpoint: String, inService: Bool)], byEndpoint: [String: ObservedContainer], leaving: [String: String]) -> Set<String> {
        lock.withLock {
            let before = inEffect
            let now = Set(members.filter(\.inService).map(\.endpoint))
            // What the last reload dropped has drained by now; what this one drops drains next.
            draining = inEffect.subtracting(now)
            inEffect = now
            var held = Set<String>()
            for (endpoint, c) in byEndpoint where leaving[c.id] != nil && before.contains(endpoint) { held.insert(c.id) }
            return held
        }
    }
}
