extension DockerClient {
    public typealias EnsureOutcome = BerthRuntime.EnsureOutcome

    /// Creates the planned container, or adopts the existing one of the same deterministic name.
    /// A container of that name that Berth does not own, or that carries another spec hash, is
    /// left alone and reported as a name conflict.
    public func ensureContainer(_ planned: PlannedContainer) async throws -> (id: String, outcome: EnsureOutcome) {
        do {
            let id = try await createContainer(name: planned.name, spec: try planned.resolvedSpec())
            return (id, .created)
        } catch let error as DockerError where error.code == .nameConflict {
            let existing = try await inspectContainer(planned.name)
            let labels = existing.config.labels ?? [:]
            guard labels[BerthLabel.managedBy] == "berth" else {
                throw DockerError(.nameConflict, endpoint: endpoint.description, operation: "create container \(planned.name)",
                                  status: 409, message: "a container of that name exists without Berth's labels; Berth leaves it alone — rename or remove it")
            }
            guard labels[BerthLabel.specHash] == planned.specHash else {
                throw DockerError(.nameConflict, endpoint: endpoint.description, operation: "create container \(planned.name)",
                                  status: 409, message: "a Berth container of that name has spec hash \(labels[BerthLabel.specHash] ?? "none"), not \(planned.specHash)")
            }
            return (existing.id, .adopted)
        }
    }

    /// Sends a signal to a container's main process (SIGKILL by default), as a crash would.
    public func killContainer(_ id: String, signal: String = "KILL") async throws {
        _ = try await send(.POST, "/containers/\(id)/kill", query: [("signal", signal)], operation: "kill container \(id)")
    }
}
