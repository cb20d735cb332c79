import BerthGateway
import Foundation

/// A real nginx serving a folder over HTTP, as a model file source: `/` at full speed,
/// `/slow/` at `slowRate` bytes per second (to cut a download midway), `/private/` only with
/// `Authorization: Bearer <token>`. Byte ranges work everywhere (resumes).
public final class FileServer: @unchecked Sendable {
    public let root: String
    public let port: Int
    public let token: String
    let prefix: String

    public var url: String { "http://127.0.0.1:\(port)/" }

    public init(root: String, port: Int, slowRate: Int = 4 << 20, token: String = "t0ken-\(UUID().uuidString.prefix(8))") throws {
        self.root = root
        self.port = port
        self.token = token
        prefix = FileManager.default.temporaryDirectory.appendingPathComponent("berth-files-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: prefix + "/logs", withIntermediateDirectories: true)
        let config = """
            pid \(prefix)/nginx.pid;
            error_log \(prefix)/logs/error.log warn;
            worker_processes 1;
            events {}
            http {
                client_body_temp_path \(prefix)/body;
                proxy_temp_path \(prefix)/proxy;
                access_log off;
                sendfile on;
                server {
                    listen 127.0.0.1:\(port);
                    root \(root);
                    location /slow/ { alias \(root)/; limit_rate \(slowRate); }
                    location /private/ {
                        alias \(root)/;
                        if ($http_authorization != "Bearer \(token)") { return 401; }
                    }
                }
            }
            """
        try config.write(toFile: prefix + "/nginx.conf", atomically: true, encoding: .utf8)
        // Started as the gateway starts its nginx: a daemonizing master must not hold our pipes.
        let launcher = Nginx(paths: NginxPaths(prefix: prefix, config: prefix + "/nginx.conf", pidFile: prefix + "/nginx.pid"), managed: true)
        let (rc, output) = try launcher.run(["/usr/sbin/nginx", "-p", prefix + "/", "-c", prefix + "/nginx.conf"])
        guard rc == 0 else { throw FileServerError(message: "nginx did not start on port \(port): \(output)") }
    }

    /// Stops nginx (SIGQUIT to its master) and removes its own folder; the served folder stays.
    public func stop() {
        if let text = try? String(contentsOfFile: prefix + "/nginx.pid", encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
            kill(pid, SIGTERM)
            // Gone before the next server takes the port.
            for _ in 0..<100 where kill(pid, 0) == 0 { usleep(50_000) }
        }
        try? FileManager.default.removeItem(atPath: prefix)
    }

    /// Writes `size` bytes of a repeatable pseudo-random pattern to `root/path` and returns the
    /// file's sha256 (hex).
    @discardableResult
    public func generate(_ path: String, size: Int, seed: UInt64 = 1) throws -> String {
        try Self.write(root + "/" + path, size: size, seed: seed)
    }

    /// Writes `size` bytes of the pattern of `seed` to the file at `full` (its folders made) and
    /// returns its sha256 (hex).
    @discardableResult
    public static func write(_ full: String, size: Int, seed: UInt64 = 1) throws -> String {
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: full, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: full))
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        var left = size
        while left > 0 {
            let n = min(left, 4 << 20)
            var chunk = [UInt8](repeating: 0, count: n)
            chunk.withUnsafeMutableBytes { raw in
                let words = raw.bindMemory(to: UInt64.self)
                for i in 0..<words.count {
                    state ^= state << 13; state ^= state >> 7; state ^= state << 17
                    words[i] = state
                }
            }
            try handle.write(contentsOf: chunk)
            left -= n
        }
        try handle.close()
        return try sha256(of: full)
    }

    /// The file's sha256 (hex), by OpenSSL (about 4× coreutils' `sha256sum` on CPUs with SHA
    /// extensions: the multi-GiB staging test hashes gigabytes).
    public static func sha256(of path: String) throws -> String {
        let (rc, out, err) = try Spawn.run(["/usr/bin/openssl", "dgst", "-sha256", "-r", path])
        guard rc == 0 else { throw FileServerError(message: "openssl dgst -sha256 \(path): \(err)") }
        return String(out.prefix(64))
    }
}

public struct FileServerError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
