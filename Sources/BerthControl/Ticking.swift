import ServiceLifecycle

/// The loop of every service beside the reconcile loop: `body` at once, then again every `tick`
/// on `clock`, until the task is cancelled or the service group shuts down gracefully. `state`
/// goes from one tick to the next; its last value is returned.
@discardableResult
func everyTick<State: Sendable>(_ tick: Duration, on clock: any Clock<Duration>, state: State,
                                _ body: @escaping @Sendable (inout State) async -> Void) async -> State {
    await cancelWhenGracefulShutdown {
        var state = state
        while !Task.isCancelled {
            await body(&state)
            do { try await clock.sleep(for: tick, tolerance: nil) } catch { break }
        }
        return state
    }
}
