import Foundation

/// The PostgreSQL states this process has open, by URL: every part of a controller (the loop,
/// staging, images, snapshots) opens its state by URL, and they share one connection rather than
/// each logging in; the lease's statements have a second connection of their own.
final class PostgresStates: @unchecked Sendable {
    static let shared = PostgresStates()

    private let lock = NSLock()
    private var open: [PostgresLocation: (state: PostgresState, lease: PostgresState)] = [:]

    /// The state at `url`, connected and checked on first use. The URL is read first, so that a
    /// password written in it is refused without being repeated.
    func open(_ url: String, create: Bool, passwordFile: String?,
              environment: [String: String] = ProcessInfo.processInfo.environment) throws -> (state: PostgresState, lease: PostgresState) {
        let location = try PostgresLocation.parse(url)
        lock.lock()
        defer { lock.unlock() }
        if let both = open[location] { return both }
        let password = try location.password(file: passwordFile ?? environment["BERTH_STATE_PASSWORD_FILE"].flatMap { $0.isEmpty ? nil : $0 },
                                             environment: environment)
        let state = try PostgresState.open(location, password: password, create: create)
        let lease = try PostgresState.open(location, password: password, create: false)
        open[location] = (state, lease)
        return (state, lease)
    }
}
