import BerthModel
@testable import BerthStore
import BerthTesting
import Foundation

func options(_ message: String = "", prune: Bool = false, dryRun: Bool = false) -> ApplyOptions {
    ApplyOptions(author: "tester", message: message, dryRun: dryRun, prune: prune)
}

func temporaryPath(_ name: String = "berth.db") -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-store-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
}

/// The bytes of a file, to prove a failed operation left it untouched.
func contents(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

/// Where a parameterized store test keeps its state: every backend, PostgreSQL when the
/// integration tests run (`BERTH_INTEGRATION=1`: a real PostgreSQL 15 for the whole test process).
enum Backing: String, CaseIterable, Sendable, CustomStringConvertible {
    case memory, disk, postgres

    static var integration: Bool { ProcessInfo.processInfo.environment["BERTH_INTEGRATION"] == "1" }
    static var available: [Backing] { integration ? allCases : [.memory, .disk] }

    var description: String { rawValue }

    /// A new, empty state.
    func store() throws -> StateStore {
        switch self {
        case .memory: return try StateStore.inMemory()
        case .disk: return try StateStore.open(path: temporaryPath(), create: true)
        case .postgres:
            let server = try PostgresServer.shared.get()
            return try StateStore(postgres: PostgresState.open(server.location(try server.createDatabase()), password: server.password, create: true))
        }
    }
}

extension PostgresServer {
    func location(_ database: String) -> PostgresLocation {
        PostgresLocation(user: user, host: host, port: port, database: database, sslMode: .disable)
    }
}
