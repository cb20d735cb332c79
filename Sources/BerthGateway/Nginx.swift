import BerthModel
import Foundation

/// What went wrong with a gateway's nginx: what kind of failure, and nginx's or the system's own words.
public struct NginxError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// A system nginx's configuration or pid path lies outside its folders.
        case pathRefused
        /// `nginx -t` refused a configuration, or the master kept its old one on reload.
        case configurationRefused
        /// The checked configuration could not be moved into place.
        case installFailed
        /// A managed nginx did not start.
        case startFailed
        /// The master could not be signalled.
        case signalFailed
        /// No nginx binary, or it could not be run.
        case notRunnable
    }

    public var code: Code
    public var message: String
    public var description: String { message }

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// One gateway's nginx: validates candidate configurations, installs them atomically, starts a
/// managed nginx and reloads a running one (SIGHUP to its master), and tells when the reload took
/// effect (new workers running) and when the old workers have finished their requests.
public struct Nginx: Sendable {
    public let binary: String
    public let paths: NginxPaths
    public let managed: Bool
    /// Where a system nginx's files may lie (`managed: false`).
    public let folders: SystemNginxFolders

    public init(paths: NginxPaths, managed: Bool, binary: String? = nil, folders: SystemNginxFolders = .fromEnvironment()) {
        self.paths = paths
        self.managed = managed
        self.binary = binary ?? ProcessInfo.processInfo.environment["BERTH_NGINX"] ?? "/usr/sbin/nginx"
        self.folders = folders
    }

    /// Throws unless a system nginx's configuration and pid file lie in its folders. Manifests are
    /// checked when applied; this refuses a path stored before that check (or edited in the
    /// database) before anything is written, renamed or signalled. A managed gateway's paths are
    /// Berth's own, under the state folder.
    public func checkPaths() throws {
        guard !managed else { return }
        if let refused = folders.check(configPath: paths.config) {
            throw NginxError(.pathRefused, "configuration path \(Self.shown(paths.config)) \(refused.problem) — while preparing a system nginx's gateway configuration (expected \(refused.expected))")
        }
        if let refused = folders.check(pidFile: paths.pidFile) {
            throw NginxError(.pathRefused, "pid file \(Self.shown(paths.pidFile)) \(refused.problem) — while preparing a system nginx's gateway configuration (expected \(refused.expected))")
        }
    }

    /// A path quoted, with control characters escaped, for a message.
    static func shown(_ path: String) -> String {
        let text = path.count > 80 ? String(path.prefix(80)) + "…" : path
        return "\"" + text.unicodeScalars.map { $0.escaped(asASCII: true) }.joined() + "\""
    }

    var candidatePath: String { paths.config + ".candidate" }
    var lastGoodPath: String { paths.config + ".last-good" }
    var errorLog: String { managed ? "\(paths.prefix)/logs/error.log" : "/var/log/nginx/error.log" }

    /// The configuration nginx runs now (the installed file), or nil.
    public func installed() -> String? {
        guard (try? checkPaths()) != nil else { return nil }
        return try? String(contentsOfFile: paths.config, encoding: .utf8)
    }

    /// Writes `text` as the candidate and runs `nginx -t` on it: nil when valid, else nginx's message.
    public func test(_ text: String) throws -> String? {
        try checkPaths()
        try prepareFolders()
        try write(text, to: candidatePath)
        var testConfig = candidatePath
        if !managed {
            // A system nginx's block is tested inside a minimal main configuration.
            testConfig = paths.config + ".test-main"
            try write("events {}\nhttp {\n    include \(candidatePath);\n}\n", to: testConfig)
        }
        defer { if !managed { try? FileManager.default.removeItem(atPath: testConfig) } }
        let (status, output) = try run([binary, "-t", "-q", "-p", paths.prefix + "/", "-c", testConfig])
        if status == 0 { return nil }
        return Self.messages(output).joined(separator: "; ").nonEmpty ?? "nginx -t failed (exit \(status))"
    }

    /// Checks the configuration in effect without writing anything: the managed gateway's own file,
    /// or a system nginx's whole configuration (which includes the gateway's block). nil when valid.
    public func checkInstalled() -> String? {
        do { try checkPaths() } catch { return "\(error)" }
        let argv = managed ? [binary, "-t", "-q", "-p", paths.prefix + "/", "-c", paths.config] : [binary, "-t", "-q"]
        guard let (status, output) = try? run(argv) else { return "cannot run \(binary)" }
        return status == 0 ? nil : (Self.messages(output).joined(separator: "; ").nonEmpty ?? "nginx -t failed (exit \(status))")
    }

    /// Moves the tested candidate into place in one rename, keeping the previous file as last good.
    public func install() throws {
        try checkPaths()
        let fm = FileManager.default
        if fm.fileExists(atPath: paths.config) {
            try? fm.removeItem(atPath: lastGoodPath)
            try fm.copyItem(atPath: paths.config, toPath: lastGoodPath)
        }
        guard rename(candidatePath, paths.config) == 0 else {
            throw NginxError(.installFailed, "cannot move \(candidatePath) to \(paths.config): \(String(cString: strerror(errno)))")
        }
    }

    /// The configuration installed before the current one, if kept.
    public func lastGood() -> String? { try? String(contentsOfFile: lastGoodPath, encoding: .utf8) }

    /// Puts the last good configuration back (after a reload nginx refused).
    public func restoreLastGood() {
        guard (try? checkPaths()) != nil else { return }
        if FileManager.default.fileExists(atPath: lastGoodPath) { _ = rename(lastGoodPath, paths.config) }
    }

    /// The master's pid when it runs.
    public func masterPID() -> Int32? {
        guard (try? checkPaths()) != nil, let text = try? String(contentsOfFile: paths.pidFile, encoding: .utf8),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0, kill(pid, 0) == 0,
              let cmdline = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8), cmdline.contains("nginx")
        else { return nil }
        return pid
    }

    /// Live worker processes of `master`.
    public static func workers(of master: Int32) -> Set<Int32> {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var result = Set<Int32>()
        for e in entries {
            guard let pid = Int32(e), let stat = try? String(contentsOfFile: "/proc/\(e)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            // state, ppid, …; a zombie has finished already.
            if fields.count > 1, fields[0] != "Z", Int32(fields[1]) == master { result.insert(pid) }
        }
        return result
    }

    /// Starts a managed nginx with the installed configuration; returns its master's pid.
    public func start() throws -> Int32 {
        precondition(managed, "a system nginx is started by the system")
        try prepareFolders()
        let (status, output) = try run([binary, "-p", paths.prefix + "/", "-c", paths.config])
        if status != 0 { throw NginxError(.startFailed, Self.messages(output).joined(separator: "; ").nonEmpty ?? "nginx exited with \(status)") }
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            if let pid = masterPID(), !Self.workers(of: pid).isEmpty { return pid }
            usleep(10_000)
        }
        throw NginxError(.startFailed, "nginx started but no master with workers appeared within 5 s (see \(errorLog))")
    }

    /// Signals the master to reload and waits until new workers run. Returns the old workers
    /// (still finishing requests) and how long it took; throws with nginx's message when it kept
    /// its old configuration (e.g. a port it cannot bind).
    public func reload(master: Int32, timeout: TimeInterval = 5) throws -> (old: Set<Int32>, seconds: Double) {
        let old = Self.workers(of: master)
        let logStart = (try? FileManager.default.attributesOfItem(atPath: errorLog)[.size] as? Int) ?? 0
        let started = Date()
        guard kill(master, SIGHUP) == 0 else { throw NginxError(.signalFailed, "cannot signal nginx master \(master): \(String(cString: strerror(errno)))") }
        let deadline = started.addingTimeInterval(timeout)
        while Date() < deadline {
            if !Self.workers(of: master).subtracting(old).isEmpty { return (old, Date().timeIntervalSince(started)) }
            // A refused configuration is logged at once: no need to wait out the timeout.
            if Date().timeIntervalSince(started) > 0.2, let refusal = refusal(since: logStart) { throw NginxError(.configurationRefused, refusal) }
            usleep(2_000)
        }
        throw NginxError(.configurationRefused, refusal(since: logStart) ?? "nginx started no new workers within \(Int(timeout)) s of the reload signal")
    }

    /// Waits up to `timeout` for `workers` to exit; true when they all have.
    public static func waitDrained(_ workers: Set<Int32>, master: Int32, timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            if Self.workers(of: master).isDisjoint(with: workers) { return true }
            usleep(5_000)
        } while Date() < deadline
        return false
    }

    /// Stops a managed nginx gracefully (SIGQUIT).
    public func stop() {
        if let pid = masterPID() { kill(pid, SIGQUIT) }
    }

    func refusal(since offset: Int) -> String? {
        guard let handle = FileHandle(forReadingAtPath: errorLog) else { return nil }
        defer { try? handle.close() }
        try? handle.seek(toOffset: UInt64(offset))
        let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        let lines = Self.messages(text).filter { $0.contains("[emerg]") || $0.contains("[alert]") || $0.contains("[crit]") }
        return lines.isEmpty ? nil : lines.joined(separator: "; ")
    }

    /// nginx's message lines, without timestamps and pids.
    static func messages(_ text: String) -> [String] {
        text.split(separator: "\n").map { line -> String in
            // "2026/11/29 03:00:00 [emerg] 123#123: bind() … failed" → "[emerg] bind() … failed"
            var s = String(line)
            if let bracket = s.firstIndex(of: "["), s.hasPrefix("20") { s = String(s[bracket...]) }
            if let hash = s.range(of: #"\] \d+#\d+: "#, options: .regularExpression) { s = s.replacingCharacters(in: hash, with: "] ") }
            return s.replacingOccurrences(of: "nginx: ", with: "")
        }.filter { !$0.isEmpty && !$0.contains("test is successful") && !$0.contains("syntax is ok") }
    }

    func prepareFolders() throws {
        let fm = FileManager.default
        let folders = managed ? [paths.prefix, "\(paths.prefix)/logs", "\(paths.prefix)/tmp"] : [(paths.config as NSString).deletingLastPathComponent]
        for f in folders where !fm.fileExists(atPath: f) {
            try fm.createDirectory(atPath: f, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        }
    }

    func write(_ text: String, to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// Runs nginx and returns its exit status and output. Spawned and reaped here with
    /// posix_spawn and waitpid: the output goes through a file, not a pipe (a master that
    /// daemonizes keeps inherited descriptors open for its whole life), and the launcher that
    /// exits after forking the master is waited for directly.
    public func run(_ argv: [String]) throws -> (Int32, String) {
        guard FileManager.default.isExecutableFile(atPath: argv[0]) else {
            throw NginxError(.notRunnable, "no nginx at \(argv[0]) (install Debian's nginx, or set BERTH_NGINX)")
        }
        let outputPath = NSTemporaryDirectory() + "berth-nginx-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).out"
        defer { unlink(outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // nginx must inherit nothing but 0–2: a daemonized master would hold the controller's
        // listening socket (its API port) for the rest of its life.
        Self.closeOnExec()
        var cArgs = argv.map { strdup($0) } + [nil]
        defer { for a in cArgs { free(a) } }
        var pid: pid_t = 0
        let rc = FreshSignals.withAttributes { posix_spawn(&pid, argv[0], &actions, $0, &cArgs, environ) }
        guard rc == 0 else { throw NginxError(.notRunnable, "cannot run \(argv[0]): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        var exitCode: Int32 = 0
        while true {
            let r = waitpid(pid, &status, 0)
            if r == pid {
                // WIFEXITED / WEXITSTATUS, spelled out: Glibc's macros do not import.
                exitCode = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
                break
            }
            if r == -1 && errno == EINTR { continue }
            break  // ECHILD: reaped elsewhere; judge by the output
        }
        return (exitCode, (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")
    }

    /// Marks every descriptor of this process above 2 close-on-exec. Descriptors that Swift or its
    /// libraries open without `O_CLOEXEC` (listening sockets among them) would otherwise reach
    /// every program spawned.
    static func closeOnExec() {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return }
        for e in entries {
            guard let fd = Int32(e), fd > 2 else { continue }
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 && flags & FD_CLOEXEC == 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }

    /// `server ADDRESS weight=N;` lines of a configuration: the endpoints it sends traffic to.
    public static func endpoints(in config: String) -> Set<String> {
        var result = Set<String>()
        for line in config.split(separator: "\n") {
            let t = line.trimmingCharacters(in: .whitespaces)
            guard t.hasPrefix("server "), !t.hasPrefix("server {") else { continue }
            let parts = t.dropFirst(7).split(separator: " ")
            if let endpoint = parts.first { result.insert(String(endpoint).trimmingCharacters(in: CharacterSet(charactersIn: ";"))) }
        }
        return result
    }
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}

/// Spawn attributes that give a child the signal state of a new process: nothing blocked, every
/// signal at its default action. A child inherits the spawning thread's signal mask, and threads
/// of a Swift program run with most signals blocked (the concurrency runtime's and the test
/// runner's do): a shell started from one never dies of `SIGTERM`, so `kill` of its background
/// job leaves the job, and the shell waiting on it, running forever.
public enum FreshSignals {
    public static func withAttributes<T>(_ body: (UnsafePointer<posix_spawnattr_t>) throws -> T) rethrows -> T {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        return try body(&attributes)
    }
}
