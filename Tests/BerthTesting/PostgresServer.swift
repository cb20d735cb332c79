import Foundation

/// A real PostgreSQL 15 server for one test suite: `initdb` into a fresh folder, listening on a
/// loopback port the kernel picked, its superuser `berth` logging in over TCP with a password
/// (scram-sha-256). Run as the `postgres` user when the tests run as root (PostgreSQL refuses to
/// run as root). `stop()` shuts it down and removes its folder.
public final class PostgresServer: @unchecked Sendable {
    public static let bin = "/usr/lib/postgresql/15/bin"
    public let port: Int
    public let folder: String
    public let user = "berth"
    let fsync: Bool
    public let password = "pw-\(UUID().uuidString.prefix(12))"
    public var host: String { "127.0.0.1" }

    /// One server for the whole test process, started on first use and stopped when it exits.
    public static let shared: Result<PostgresServer, any Error> = {
        guard installed else { return .failure(PostgresServerError(message: "PostgreSQL 15 is not installed: scripts/install-deps --cluster")) }
        let result = Result { try PostgresServer() }
        if case .success = result { atexit { if case .success(let s) = PostgresServer.shared { s.stop() } } }
        return result
    }()

    /// The file holding the password (owner-only), for `--state-password-file`.
    public var passwordFile: String { folder + "/pwfile" }

    /// The state URL of `database` on this server.
    public func url(_ database: String) -> String { "postgres://\(user)@\(host):\(port)/\(database)?sslmode=disable" }

    /// Whether Debian's PostgreSQL 15 server is installed (`scripts/install-deps --cluster`).
    public static var installed: Bool { FileManager.default.isExecutableFile(atPath: bin + "/postgres") }

    /// `fsync: false` (the tests) trades durability for speed; a benchmark keeps it on.
    public init(fsync: Bool = false) throws {
        self.fsync = fsync
        port = unusedLoopbackPort()
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("berth-pg-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        chmod(folder, 0o700)
        _ = FileManager.default.createFile(atPath: folder + "/pwfile", contents: Data(password.utf8), attributes: [.posixPermissions: 0o600])
        if geteuid() == 0 {
            let (rc, _, err) = try Spawn.run(["/bin/chown", "-R", "postgres:postgres", folder])
            guard rc == 0 else { throw PostgresServerError(message: "chown \(folder) to postgres: \(err)") }
        }
        do {
            try run([Self.bin + "/initdb", "-N", "-D", folder + "/data", "-U", user, "--pwfile=" + folder + "/pwfile",
                     "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C"], doing: "initdb")
            try start()
        } catch {
            stop()
            throw error
        }
    }

    func start() throws {
        try run([Self.bin + "/pg_ctl", "-D", folder + "/data", "-l", folder + "/server.log", "-w", "-t", "60",
                 "-o", "-p \(port) -k \(folder) -c listen_addresses=127.0.0.1 -c fsync=\(fsync ? "on" : "off") -c unix_socket_permissions=0700", "start"],
                doing: "pg_ctl start")
    }

    /// Stops the server (fast shutdown, else immediate) and removes its folder.
    public func stop() {
        if (try? run([Self.bin + "/pg_ctl", "-D", folder + "/data", "-m", "fast", "-w", "-t", "30", "stop"], doing: "pg_ctl stop")) == nil {
            _ = try? run([Self.bin + "/pg_ctl", "-D", folder + "/data", "-m", "immediate", "-w", "stop"], doing: "pg_ctl stop")
        }
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// Stops it at once (`immediate`: as a crash) and starts it again on the same port and data.
    public func restart() throws {
        try run([Self.bin + "/pg_ctl", "-D", folder + "/data", "-m", "immediate", "-w", "stop"], doing: "pg_ctl stop")
        try start()
    }

    /// Runs SQL as the superuser over the server's local socket (no password there).
    @discardableResult
    public func sql(_ statement: String, database: String = "postgres") throws -> String {
        try run([Self.bin + "/psql", "-h", folder, "-p", "\(port)", "-U", user, "-d", database, "-v", "ON_ERROR_STOP=1", "-Atqc", statement], doing: "psql")
    }

    /// A new, empty database, by name.
    public func createDatabase() throws -> String {
        let name = "berth_\(UUID().uuidString.prefix(8).lowercased())"
        try sql("CREATE DATABASE \(name)")
        return name
    }

    @discardableResult
    func run(_ argv: [String], doing: String) throws -> String {
        let command = geteuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] + argv : argv
        // In the server's folder: PostgreSQL's programs return to the working directory, which
        // the postgres user may not be allowed into (a checkout under /root).
        let (rc, out, err) = try Spawn.run(command, environment: ["PATH": "/usr/bin:/bin", "LC_ALL": "C"], cwd: folder)
        guard rc == 0 else {
            let log = (try? String(contentsOfFile: folder + "/server.log", encoding: .utf8)).map { String($0.suffix(2000)) } ?? ""
            throw PostgresServerError(message: "\(doing) failed (\(rc)): \(err)\(out)\n\(log)")
        }
        return out
    }
}

public struct PostgresServerError: Error, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
