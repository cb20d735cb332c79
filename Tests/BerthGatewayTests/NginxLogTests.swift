@testable import BerthGateway
import BerthModel
import Foundation
import Testing

/// What a real managed nginx writes to its logs with the configuration Berth renders.
@Suite("nginx logs", .enabled(if: ProcessInfo.processInfo.environment["BERTH_INTEGRATION"] == "1", "needs nginx; set BERTH_INTEGRATION=1"))
struct NginxLogTests {
    /// A gateway with a tight rate limit in front of a ready replica nobody listens on.
    func startGateway(listen: Int, folder: String) throws -> (Nginx, Int32) {
        let spec = GatewaySpec(listen: listen, routes: [Route(deployment: "chat", weight: 1)], rateLimit: RateLimit(rate: "1r/m"))
        let members = UpstreamWeights.members(routes: spec.routes,
                                              candidates: [Candidate(deployment: "chat", replica: 0, endpoint: "127.0.0.1:\(listen + 1)", ready: true)])
        let paths = NginxPaths.managed(stateFolder: folder, gateway: "g")
        let nginx = Nginx(paths: paths, managed: true)
        let text = NginxConfig.render(gateway: "g", spec: spec, members: members, paths: paths)
        #expect(try nginx.test(text) == nil)
        try nginx.install()
        return (nginx, try nginx.start())
    }

    /// The request comes from 127.0.0.2, so that the client's address differs from the replica's
    /// (127.0.0.1, which the access log names).
    func status(_ nginx: Nginx, _ url: String) -> Int {
        Int((try? nginx.run(["/usr/bin/curl", "-s", "-m", "3", "--interface", "127.0.0.2", "-o", "/dev/null", "-w", "%{http_code}", url]).1) ?? "") ?? 0
    }

    @Test func rateLimitedAndFailedRequests_leaveNoClientAddressInAnyLog() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("berth-nginx-logs-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (nginx, master) = try startGateway(listen: 18111, folder: folder)
        defer { kill(master, SIGKILL) }
        #expect(status(nginx, "http://127.0.0.1:18111/v2/models/chat/infer") == 502, "the replica refuses the connection")
        #expect(status(nginx, "http://127.0.0.1:18111/v2/models/chat/infer") == 429, "the second request in a minute is over the limit")
        // Stopping flushes the buffered access log.
        kill(master, SIGQUIT)
        let deadline = Date().addingTimeInterval(5)
        while kill(master, 0) == 0 && Date() < deadline { usleep(10_000) }

        let logs = nginx.paths.prefix + "/logs"
        let files = try FileManager.default.contentsOfDirectory(atPath: logs)
        var written = ""
        for file in files {
            let text = try String(contentsOfFile: logs + "/" + file, encoding: .utf8)
            #expect(!text.contains("127.0.0.2"), "\(file) names the client:\n\(text)")
            written += text
        }
        // The logs were written, and say what happened.
        #expect(written.contains(" 502 ") && written.contains(" 429 "), "\(written)")
        #expect(written.contains("127.0.0.1:18112"), "the access log names the replica")
    }

    /// The error log still tells a reload nginx refused: here a port another process holds.
    @Test func reloadThatCannotBind_isStillReportedFromTheErrorLog() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("berth-nginx-logs-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (nginx, master) = try startGateway(listen: 18113, folder: folder)
        defer { kill(master, SIGQUIT) }
        let (_, otherMaster) = try startGateway(listen: 18115, folder: folder + "/other")
        defer { kill(otherMaster, SIGQUIT) }
        let taken = GatewaySpec(listen: 18115, routes: [Route(deployment: "chat", weight: 1)])
        let text = NginxConfig.render(gateway: "g", spec: taken, members: [], paths: nginx.paths)
        try nginx.install(text)
        do {
            _ = try nginx.reload(master: master)
            Issue.record("nginx took a configuration whose port is held by another process")
        } catch {
            #expect("\(error)".contains("[emerg]") && "\(error)".contains("bind()"), "\(error)")
        }
    }
}

extension Nginx {
    /// Writes `text` as the candidate and installs it, without `nginx -t` (which would refuse a taken port too).
    func install(_ text: String) throws {
        try write(text, to: candidatePath)
        try install()
    }
}
