import BerthTesting
import Foundation

/// Runs the built `berth` binary, as a person would.
struct BerthProcess {
    struct Result {
        var code: Int32
        var stdout: String
        var stderr: String
    }

    /// The `berth` binary next to this test bundle, or `$BERTH_BINARY`.
    static let binary: URL = {
        if let path = ProcessInfo.processInfo.environment["BERTH_BINARY"] { return URL(fileURLWithPath: path) }
        var dir = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("berth")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir.deleteLastPathComponent()
        }
        fatalError("berth binary not found next to the tests; build it or set BERTH_BINARY")
    }()

    /// Repository root, for the shipped manifests.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func run(_ arguments: [String], state: String? = nil, environment: [String: String] = [:], cwd: String? = nil) throws -> Result {
        var env = ProcessInfo.processInfo.environment
        env["BERTH_STATE"] = nil
        env["USER"] = "tester"
        env["SUDO_USER"] = nil
        for (k, v) in environment { env[k] = v }
        let (code, out, err) = try Spawn.run([binary.path] + arguments + (state.map { ["--state", $0] } ?? []), environment: env, cwd: cwd)
        return Result(code: code, stdout: out, stderr: err)
    }

    /// `berth apply` of the local cluster's nodes and the fleet at `path`; with `wait`, until every
    /// replica is ready or `timeout` seconds have passed.
    static func applyToCluster(_ path: String, state: String, wait: Bool = true, timeout: Int = 60) throws -> Result {
        try run(["apply", "-f", LocalCluster.nodes, "-f", path] + (wait ? ["--wait", "--timeout", "\(timeout)"] : []), state: state)
    }

    /// POSTs an empty inference request with curl and returns the answer.
    static func curl(_ url: String) throws -> String {
        try tool("/usr/bin/curl", ["-s", "-m", "3", "-X", "POST", "-d", "{}", url])
    }

    /// The status code of a GET, or 0 when nothing answered.
    static func httpStatus(_ url: String) -> Int {
        Int((try? tool("/usr/bin/curl", ["-s", "-m", "2", "-o", "/dev/null", "-w", "%{http_code}", url])) ?? "") ?? 0
    }

    /// The body of a GET.
    static func get(_ url: String) throws -> String {
        try tool("/usr/bin/curl", ["-s", "-m", "5", url])
    }

    /// POSTs an empty inference request; the body, or "" on failure.
    static func post(_ url: String) -> String { (try? curl(url)) ?? "" }

    /// POSTs an empty inference request; the status code, or 0 when nothing answered.
    static func postStatus(_ url: String) -> Int {
        (try? tool("/usr/bin/curl", ["-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-d", "{}", url]))
            .flatMap { Int($0) } ?? 0
    }

    /// Runs a tool and returns its standard output.
    @discardableResult
    static func tool(_ path: String, _ arguments: [String]) throws -> String {
        try Spawn.run([path] + arguments).1
    }

    static func temporaryFolder() -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("berth-cli-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.path
    }
}

func write(_ text: String, to path: String) {
    try! text.write(toFile: path, atomically: true, encoding: .utf8)
}

/// Sends requests one after another on a thread until stopped; counts successes and keeps every failure.
final class RequestLoop: @unchecked Sendable {
    private let lock = NSLock()
    private var running = true
    private var ok = 0
    private var failed: [String] = []
    private var thread: Thread?

    init(url: String) {
        let thread = Thread { [self] in while step(url) {} }
        self.thread = thread
        thread.start()
    }

    private func step(_ url: String) -> Bool {
        let code = BerthProcess.postStatus(url)
        lock.lock()
        defer { lock.unlock() }
        if code == 200 { ok += 1 } else { failed.append("\(Date()): HTTP \(code)") }
        return running
    }

    /// Stops the loop; the successes and the failures.
    func stop() -> (Int, [String]) {
        lock.lock()
        running = false
        lock.unlock()
        while thread?.isFinished == false { Thread.sleep(forTimeInterval: 0.02) }
        lock.lock()
        defer { lock.unlock() }
        return (ok, failed)
    }
}

/// A TCP port held open, so that nginx cannot bind it.
final class ListeningSocket {
    let fd: Int32

    init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = INADDR_ANY
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(fd, 1) == 0 else { throw POSIXError(.EADDRINUSE) }
    }

    func close() { _ = Glibc.close(fd) }
}

/// Stops the nginx of every managed gateway a test's controller started under `stateFolder`.
func stopGateways(stateFolder: String) {
    for name in (try? FileManager.default.contentsOfDirectory(atPath: stateFolder + "/gateways")) ?? [] {
        if let text = try? String(contentsOfFile: stateFolder + "/gateways/\(name)/nginx.pid", encoding: .utf8),
           let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
            kill(pid, SIGQUIT)
            waitUntil(5) { kill(pid, 0) != 0 }
        }
    }
}

extension LocalCluster {
    /// What the stand-in on `port` answers to an inference call ("" when nothing answers).
    static func answers(_ port: String) -> String {
        (try? BerthProcess.curl("http://127.0.0.1:\(port)/v2/models/standin/infer")) ?? ""
    }
}
