@testable import BerthDocker
import NIOCore
import BerthTesting
import Foundation
import Testing

/// Health checks on kept connections, against a real HTTP/1.1 server (Python's, keep-alive on):
/// one connection carries every check; a replica that restarts, hangs or stops listening costs
/// one check its answer, never a wrong one.
@Suite("Health checks on kept connections", .serialized)
struct KeptProberTests {
    /// A replica's health endpoint: `/ready` answers the code last set with `/set?CODE`, `/hang`
    /// never answers, `/connections` says how many connections it has accepted.
    final class Replica {
        static let script = """
            import http.server, sys, time, threading
            code, connections, lock = [200], [0], threading.Lock()
            class H(http.server.BaseHTTPRequestHandler):
                protocol_version = "HTTP/1.1"
                def setup(self):
                    super().setup()
                    with lock: connections[0] += 1
                def log_message(self, *a): pass
                def answer(self, status, text):
                    body = text.encode()
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                def do_GET(self):
                    if self.path.startswith("/set?"):
                        code[0] = int(self.path[5:]); self.answer(200, "ok")
                    elif self.path == "/hang":
                        time.sleep(30)
                    elif self.path == "/connections":
                        self.answer(200, str(connections[0]))
                    else:
                        self.answer(code[0], "ready" if code[0] == 200 else "loading")
            http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
            """
        let port: Int
        var pid: pid_t = 0

        /// curl's output; throws when it fails.
        static func curl(_ arguments: [String]) throws -> String {
            let (code, out, err) = try Spawn.run(["/usr/bin/curl"] + arguments)
            if code != 0 { throw CurlFailed(message: err) }
            return out
        }

        struct CurlFailed: Error { var message: String }
        let folder: String

        init() throws {
            folder = NSTemporaryDirectory() + "berth-kept-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try Self.script.write(toFile: folder + "/replica.py", atomically: true, encoding: .utf8)
            port = 24_000 + Int.random(in: 0..<900)
            try start()
        }

        func start() throws {
            pid = try Spawn.start(["/usr/bin/python3", folder + "/replica.py", "\(port)"], stdout: folder + "/replica.log")
            let up = (0..<100).contains { _ in
                if (try? Self.curl(["-sf", "-m", "1", "http://127.0.0.1:\(port)/connections"])) != nil { return true }
                usleep(50_000)
                return false
            }
            if !up { throw POSIXError(.ECONNREFUSED) }
        }

        func stop() {
            kill(pid, SIGKILL)
            Spawn.wait(pid)
        }

        func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

        /// Connections accepted so far (this question is one of them).
        func connections() throws -> Int { Int(try Self.curl(["-sf", "-m", "2", url("/connections")]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1 }

        func set(_ code: Int) throws { _ = try Self.curl(["-sf", "-m", "2", url("/set?\(code)")]) }

        deinit {
            stop()
            try? FileManager.default.removeItem(atPath: folder)
        }
    }

    @Test func oneConnectionCarriesEveryCheck() async throws {
        let replica = try Replica()
        let prober = KeptProber()
        defer { prober.closeAll() }
        let before = try replica.connections()
        for _ in 0..<20 { #expect(await prober.status(replica.url("/ready"), timeout: .seconds(20)) == 200) }
        try replica.set(503)
        #expect(await prober.status(replica.url("/ready"), timeout: .seconds(20)) == 503)
        // Metric scrapes take the same connection, body and all.
        let answer = await prober.get(replica.url("/ready"), timeout: .seconds(20))
        #expect(answer?.status == 503 && answer.map { String(buffer: $0.body) } == "loading")
        #expect(prober.kept == 1)
        // 22 checks, one connection; the two curl questions are one each.
        #expect(try replica.connections() == before + 1 + 2)
    }

    @Test func aRestartedReplicaIsAskedOnANewConnection() async throws {
        let replica = try Replica()
        let prober = KeptProber()
        defer { prober.closeAll() }
        #expect(await prober.status(replica.url("/ready"), timeout: .seconds(20)) == 200)
        // The kept connection dies with the process; the next check must not report that as a failure.
        replica.stop()
        try replica.start()
        let before = try replica.connections()
        #expect(await prober.status(replica.url("/ready"), timeout: .seconds(20)) == 200)
        #expect(await prober.status(replica.url("/ready"), timeout: .seconds(20)) == 200)
        #expect(try replica.connections() == before + 2, "one new connection for both checks, one for this question")
    }

    @Test func hungAndClosedEndpointsAnswerNothingWithinTheTimeout() async throws {
        let replica = try Replica()
        let prober = KeptProber()
        defer { prober.closeAll() }
        let clock = ContinuousClock()
        var status: Int?
        let hung = await clock.measure { status = await prober.status(replica.url("/hang"), timeout: .milliseconds(500)) }
        #expect(status == nil)
        #expect(hung < .seconds(10), "a hung replica costs its timeout (0.5 s), not the 30 s it hangs: \(hung)")
        #expect(prober.kept == 0, "a connection whose answer never came is not kept")
        #expect(await prober.status(replica.url("/ready"), timeout: .seconds(20)) == 200)
        replica.stop()
        let closed = await clock.measure { status = await prober.status(replica.url("/ready"), timeout: .seconds(20)) }
        #expect(status == nil)
        #expect(closed < .seconds(10), "nothing listens: refused at once, not after the 20 s timeout: \(closed)")
    }

    @Test func aHungReplicaOnAKeptConnectionCostsOneTimeoutNotTwo() async throws {
        let replica = try Replica()
        let prober = KeptProber()
        defer { prober.closeAll() }
        #expect(await prober.status(replica.url("/ready"), timeout: .seconds(20)) == 200)
        #expect(prober.kept == 1)
        let before = try replica.connections()
        #expect(await prober.status(replica.url("/hang"), timeout: .milliseconds(300)) == nil)
        // A closed kept connection is worth a second try on a new one; a check that timed out on
        // it is not (that doubled what a hung replica cost the watch).
        #expect(try replica.connections() == before + 1, "no new connection for a retry; one for this question")
    }

    @Test func checksAnswerOnTheEventLoopWithoutATask() async throws {
        let replica = try Replica()
        let prober = KeptProber()
        defer { prober.closeAll() }
        func check(_ path: String, timeout: Duration = .seconds(20)) async -> Int? {
            await withCheckedContinuation { done in prober.check(replica.url(path), timeout: timeout) { done.resume(returning: $0) } }
        }
        let before = try replica.connections()
        for _ in 0..<10 { #expect(await check("/ready") == 200) }
        try replica.set(503)
        #expect(await check("/ready") == 503)
        #expect(await check("/hang", timeout: .milliseconds(300)) == nil)
        #expect(await check("http-not-a-url") == nil, "an address it cannot ask answers at once, as nothing")
        #expect(try replica.connections() == before + 1 + 2, "one connection for the checks, one for each curl question")
        replica.stop()
        #expect(await check("/ready") == nil)
    }

    @Test func urlsSplitAsTheyShould() {
        func split(_ url: String) -> String? { KeptProber.parse(url).map { "\($0.0.host)|\($0.0.port)|\($0.1)" } }
        #expect(split("http://10.0.0.11:21000/v2/health/ready") == "10.0.0.11|21000|/v2/health/ready")
        #expect(split("http://gpu-a1:8000/metrics?x=1") == "gpu-a1|8000|/metrics?x=1")
        #expect(split("http://gpu-a1") == "gpu-a1|80|/")
        #expect(split("http://[fd00::11]:21000/v2/health/ready") == "fd00::11|21000|/v2/health/ready")
        #expect(split("http://[fd00::11]/") == "fd00::11|80|/")
        #expect(split("https://gpu-a1:8000/") == nil)
        #expect(split("http://gpu-a1:99999/") == nil)
        #expect(split("http://user@gpu-a1:8000/") == nil)
        #expect(split("http://:8000/") == nil)
    }
}
