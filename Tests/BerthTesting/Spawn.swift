import BerthGateway
import Foundation

/// Child processes for the tests, spawned with posix_spawn and reaped with waitpid on their own
/// pid. Foundation's Process sometimes never returned from waitUntilExit here when several threads
/// launched processes at once (the child sat as a zombie); output goes through files, never pipes.
public enum Spawn {
    /// Starts `argv` with its output appended to `output` (stdout and stderr) or to two files.
    public static func start(_ argv: [String], environment: [String: String]? = nil, cwd: String? = nil,
                      stdout: String, stderr: String? = nil) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        if let stderr {
            posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        // A working folder through coreutils' env -C: Glibc's addchdir action does not import.
        let argv = cwd.map { ["/usr/bin/env", "-C", $0] + argv } ?? argv
        var cArgs = argv.map { strdup($0) } + [nil]
        var cEnv = env.map { strdup($0) } + [nil]
        defer { for a in cArgs + cEnv { free(a) } }
        var pid: pid_t = 0
        let rc = FreshSignals.withAttributes { posix_spawn(&pid, argv[0], &actions, $0, &cArgs, &cEnv) }
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EINVAL) }
        return pid
    }

    /// Waits for `pid` and returns its exit status (128 + signal when killed).
    @discardableResult
    public static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, 0)
            if r == pid { return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f) }
            if r == -1 && errno == EINTR { continue }
            return -1
        }
    }

    /// `wait`, for at most `seconds`: nil while the process still runs then. A process this one
    /// cannot reap (already reaped elsewhere) counts as ended once it is gone.
    public static func wait(_ pid: pid_t, upTo seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        var status: Int32 = 0
        while Date() < deadline {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f) }
            if r == -1 && errno != EINTR && kill(pid, 0) != 0 { return -1 }
            usleep(20_000)
        }
        return nil
    }

    /// Runs `argv` to the end; its status, stdout and stderr.
    public static func run(_ argv: [String], environment: [String: String]? = nil, cwd: String? = nil) throws -> (Int32, String, String) {
        let base = NSTemporaryDirectory() + "berth-test-\(getpid())-\(UUID().uuidString)"
        defer { unlink(base + ".out"); unlink(base + ".err") }
        let pid = try start(argv, environment: environment, cwd: cwd, stdout: base + ".out", stderr: base + ".err")
        let code = wait(pid)
        let out = (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? ""
        return (code, out, err)
    }
}

/// Polls `condition` every 50 ms for up to `seconds`; the seconds it took, or nil.
@discardableResult
public func waitUntil(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Double? {
    let start = Date()
    while Date().timeIntervalSince(start) < seconds {
        if try condition() { return Date().timeIntervalSince(start) }
        Thread.sleep(forTimeInterval: 0.05)
    }
    return nil
}
