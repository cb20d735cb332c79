import BerthModel
import Foundation

/// What one node's container runtime does for the reconciler, the image keeper and the event
/// watch. A Docker engine is one implementation (`DockerClient`); the simulator's engines are
/// another. The contract, which every implementation keeps:
///
/// - Calls are idempotent where the reconciler relies on it: starting a running container,
///   removing a container that is gone (`.notFound`), creating a container that exists with the
///   same name and spec hash (adopted, not duplicated).
/// - Failures are `RuntimeError`s whose `code` says what happened; callers never read the text.
/// - No call blocks past its timeout: a runtime that does not answer throws `.timeout`.
public protocol ContainerRuntime: Sendable {
    /// Where this runtime is, for messages (`unix:///run/docker.sock`, `sim://node-1`).
    var location: String { get }
    /// Every container carrying all `labels` (`key=value` or `key`), running or not, in one call.
    func listContainers(labels: [String], timeout: Duration) async throws -> [ContainerSummary]
    /// Creates the planned container (not started), or adopts the one of the same deterministic
    /// name and spec hash. Throws `.imageMissing` when its image is not on the node, and
    /// `.nameConflict` when a container of that name is not Berth's or has another spec hash.
    func ensureContainer(_ planned: PlannedContainer) async throws -> (id: String, outcome: EnsureOutcome)
    /// Starts a container; starting a running one is fine.
    func startContainer(_ id: String) async throws
    /// Stops a container, killing it after `grace`.
    func stopContainer(_ id: String, grace: Duration) async throws
    /// Removes a container, killing it first when `force`.
    func removeContainer(_ id: String, force: Bool) async throws
    /// Container events for containers carrying `labels`, until cancelled or the runtime goes away.
    func events(labels: [String], since: Date?) -> AsyncThrowingStream<DockerEvent, any Error>
    /// Pulls an image; `progress` hears bytes done and known so far.
    func pullImage(_ reference: String, auth: RegistryAuth?, timeout: Duration,
                   progress: (@Sendable (_ done: Int64, _ total: Int64) -> Void)?) async throws
    /// Whether the image is on the node.
    func hasImage(_ reference: String) async throws -> Bool
    /// Images on the node.
    func listImages() async throws -> [ImageSummary]
    /// Removes an image tag; one a container uses is refused unless `force`.
    func removeImage(_ reference: String, force: Bool) async throws
}

/// How a replica's health endpoint is asked: over HTTP in production (`HTTPProber` in
/// BerthDocker), from the simulated network in the simulator.
public protocol ReplicaProber: Sendable {
    /// The HTTP status a GET of `url` answered within `timeout`; nil when nothing answered.
    func status(_ url: String, timeout: Duration) async -> Int?
    /// Sends the same check and calls `done` once with its status when it is answered or fails,
    /// on whatever thread that happens (before this returns, when it cannot be sent at all).
    /// What the health watch uses thousands of times a second: a prober on an event loop answers
    /// there, without a task or a continuation per check.
    func check(_ url: String, timeout: Duration, done: @escaping @Sendable (Int?) -> Void)
}

extension ReplicaProber {
    /// `status` in a task of its own.
    public func check(_ url: String, timeout: Duration, done: @escaping @Sendable (Int?) -> Void) {
        Task { done(await status(url, timeout: timeout)) }
    }
}

/// What `ensureContainer` found or did.
public enum EnsureOutcome: String, Sendable {
    /// A new container was created.
    case created
    /// A Berth container of that name and spec hash existed already (an earlier create went through).
    case adopted
}

/// Hands out the runtime of each node's engine endpoint, made on first use and reused; `forget`
/// drops one that failed so the next use connects afresh.
public protocol RuntimeProvider: Sendable {
    func runtime(for engine: EngineEndpoint) async throws -> any ContainerRuntime
    func forget(_ engine: EngineEndpoint) async
}

extension ContainerRuntime {
    /// Berth's own containers.
    public func listContainers(timeout: Duration = .seconds(30)) async throws -> [ContainerSummary] {
        try await listContainers(labels: [BerthLabel.managedFilter], timeout: timeout)
    }
}
