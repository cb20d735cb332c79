import BerthTesting
import Foundation
import Testing

/// A real headless Chromium, driven by `scripts/lib/browse` over the DevTools protocol.
enum Browser {
    static let script = LocalCluster.root.appendingPathComponent("scripts/lib/browse").path
    /// With BERTH_INTEGRATION=1 (which `scripts/test` meets by installing Debian's chromium); a missing browser then fails the test.
    static var available: Bool { LocalCluster.enabled }

    /// Where screenshots and rendered pages are kept after the run.
    static let output: String = {
        let path = ProcessInfo.processInfo.environment["BERTH_TEST_OUTPUT"].map { $0 + "/console" }
            ?? LocalCluster.root.appendingPathComponent("test-output/console").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    /// Runs the steps in one browser; the JSON lines it printed. A step that failed fails the test.
    @discardableResult
    static func run(_ steps: [String], cookies: [String] = []) throws -> [[String: Any]] {
        let result = try BerthProcess.tool(script, cookies.flatMap { ["--cookie", $0] } + steps)
        let lines = result.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        if let error = lines.compactMap({ $0["error"] as? String }).first { Issue.record("browser: \(error)") }
        return lines
    }

    static func dom(_ name: String) -> String { (try? String(contentsOfFile: output + "/\(name).html", encoding: .utf8)) ?? "" }

    static func count(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }
}

/// The console in a real browser against a live controller on the local cluster.
extension LocalClusterEndToEnd {
@Suite("web console in Chromium on the local cluster")
struct ConsoleEndToEndTests {
    let dir = BerthProcess.temporaryFolder()
    var state: String { dir + "/berth.db" }

    func fleet(_ edit: (String) -> String = { $0 }) -> String { LocalCluster.fleetFile(in: dir, edit) }

    func apply(_ path: String, wait: Bool = true) throws -> BerthProcess.Result {
        try BerthProcess.applyToCluster(path, state: state, wait: wait, timeout: 90)
    }

    @Test(.enabled(if: Browser.available))
    func everyPage_showsTheLiveFleet_atBothWidths_andARollbackClickedThroughIsStored() throws {
        try LocalCluster.removeBerthContainers()
        defer {
            try? LocalCluster.removeBerthContainers()
            stopGateways(stateFolder: dir)
        }
        _ = try apply(fleet(), wait: false)
        let controller = try ControllerProcess(state: state, folder: dir)
        defer { controller.stop() }
        #expect(try apply(fleet()).code == 0, "\(controller.text.suffix(2000))")
        let v2 = fleet(ControllerEndToEndTests.chatVersion("v2"))
        #expect(try apply(v2).code == 0, "\(controller.text.suffix(2000))")
        let api = try #require(controller.api())
        let status = try JSONSerialization.jsonObject(with: Data(try BerthProcess.get(api + "/api/v1/status").utf8)) as? [String: Any]
        let deployments = ((status?["status"] as? [String: Any])?["deployments"] as? [[String: Any]]) ?? []
        let gpusInUse = deployments.flatMap { ($0["replicas"] as? [[String: Any]]) ?? [] }.reduce(0) { $0 + (($1["gpus"] as? [Int])?.count ?? 0) }
        #expect(gpusInUse == 3)

        // Every page at both widths: rendered DOM and a screenshot each.
        for (width, height) in [(1280, 900), (390, 844)] {
            var steps = ["size:\(width)x\(height)"]
            for page in ["fleet": "/", "deployments": "/deployments", "history": "/history", "events": "/events"].sorted(by: { $0.key < $1.key }) {
                steps += ["open:\(api)\(page.value)", "dom:\(Browser.output)/\(page.key)-\(width).html", "shot:\(Browser.output)/\(page.key)-\(width).png"]
            }
            let lines = try Browser.run(steps)
            #expect(lines.compactMap { $0["status"] as? Int } == [200, 200, 200, 200], "\(lines)")
            // A phone-width page is no wider than the phone.
            let wide = try Browser.run(["size:\(width)x\(height)", "open:\(api)/", "eval:document.documentElement.scrollWidth"])
            #expect((wide.compactMap { $0["eval"] as? Int }.first ?? .max) <= width, "\(wide)")
        }
        let fleetPage = Browser.dom("fleet-1280")
        for node in ["node-1", "node-2", "node-3"] { #expect(fleetPage.contains("data-node=\"\(node)\""), "\(node)") }
        // The tiles coloured by a deployment are the GPUs its replicas hold, as the JSON API says.
        let coloured = (0..<8).reduce(0) { $0 + Browser.count("class=\"tile d\($1)\"", in: fleetPage) }
        #expect(coloured == gpusInUse, "\(coloured) coloured tiles")
        #expect(Browser.count("class=\"tile standby\"", in: fleetPage) == 4, "node-3's four GPUs wait as a standby's")
        let deploymentsPage = Browser.dom("deployments-1280")
        #expect(deploymentsPage.contains("data-deployment=\"chat\""))
        #expect(deploymentsPage.range(of: #"data-field="ready">2/2<"#, options: .regularExpression) != nil, "chat is 2/2 ready")
        #expect(deploymentsPage.contains("data-field=\"version\">v2<"))
        #expect(deploymentsPage.contains("data-gateway=\"local\""), "the gateway's split is drawn")
        let historyPage = Browser.dom("history-1280")
        for n in 1...2 { #expect(historyPage.contains("data-revision=\"\(n)\""), "revision \(n)") }
        #expect(Browser.dom("events-1280").contains("data-event="), "stored events are listed")

        // A diff between two revisions, and what was desired at a time.
        let now = ISO8601DateFormatter().string(from: Date())
        try Browser.run(["open:\(api)/history/diff?from=1&to=2", "dom:\(Browser.output)/diff.html",
                         "open:\(api)/history/at?time=\(now)", "dom:\(Browser.output)/at.html"])
        #expect(Browser.dom("diff").contains("<span class=\"add\">+  version: v2</span>"), "\(Browser.dom("diff"))")
        #expect(Browser.dom("at").contains("revision 2, by") && Browser.dom("at").contains("deployment/chat"), "\(Browser.dom("at"))")

        // Live: a cordon made once the events page is open and following the stream arrives through it.
        let marker = dir + "/page-open.html"
        let cordon = try Spawn.start(["/bin/sh", "-c", "while [ ! -s \(marker) ]; do sleep 0.1; done; exec \(BerthProcess.binary.path) node cordon node-2 --state \(state) --author live-test -m maintenance"],
                                     stdout: dir + "/cordon.log")
        let live = try Browser.run(["open:\(api)/events", "wait:document.getElementById('live').textContent === 'live'",
                                    "eval:document.body.innerText.includes('NodeCordoned')", "dom:\(marker)",
                                    "wait:document.body.innerText.includes('NodeCordoned')", "eval:document.getElementById('live').textContent"])
        if Spawn.wait(cordon, upTo: 30) == nil { kill(cordon, SIGKILL) }
        #expect(live.compactMap { $0["eval"] as? Bool }.first == false, "the cordon came after the page loaded")
        #expect(live.compactMap { $0["eval"] as? String }.last == "live", "\(live)")

        // A rollback, clicked through its dry run and confirmation, stores a revision.
        let rolled = try Browser.run([
            "size:1280x900", "open:\(api)/history", "click:a[href=\"/rollback?revision=1\"]",
            "dom:\(Browser.output)/rollback-dry-run.html", "shot:\(Browser.output)/rollback-dry-run-1280.png",
            "type:input[name=author]=console-test", "click:#confirm", "dom:\(Browser.output)/rollback-done.html",
        ])
        let dryRun = Browser.dom("rollback-dry-run")
        #expect(dryRun.contains("id=\"rollback-diff\"") && dryRun.contains("v2") && dryRun.contains("v1"), "the dry run shows the diff")
        #expect(dryRun.contains("id=\"checks-passed\""), "the target passes its checks")
        #expect(rolled.compactMap { $0["url"] as? String }.last?.hasSuffix("/history?stored=3") == true, "\(rolled)")
        #expect(Browser.dom("rollback-done").contains("revision 3 stored"))
        let history = try BerthProcess.run(["history"], state: state)
        #expect(history.stdout.contains("console-test") && history.stdout.contains("rollback"), "\(history.stdout)")

        // By keyboard alone: Tab reaches every section's link and the nodes, Enter opens a node's page.
        let tabs = try Browser.run(["open:\(api)/"] + Array(repeating: ["key:Tab", "eval:document.activeElement.textContent.trim()"], count: 5).flatMap { $0 }
                                   + ["key:Enter", "eval:document.querySelector('h1').textContent"])
        let reached = tabs.compactMap { $0["eval"] as? String }
        #expect(reached == ["Fleet", "Deployments", "History", "Events", "node-1", "Node node-1"], "\(reached)")

        // A node action from its page, recorded with its author.
        let cordoned = try Browser.run(["open:\(api)/", "click:#node-node-1 a.name", "type:#node-actions input[name=author]=console-test",
                                        "type:#node-actions input[name=reason]=disk swap", "click:#node-actions button[value=cordon]",
                                        "shot:\(Browser.output)/node-1280.png", "eval:document.querySelector('.flash').textContent"])
        #expect(cordoned.compactMap { $0["url"] as? String }.last?.hasSuffix("/nodes/node-1?done=cordon") == true, "\(cordoned)")
        #expect(cordoned.compactMap { $0["eval"] as? String }.last?.hasPrefix("cordon: stored") == true, "\(cordoned)")
        let described = try BerthProcess.run(["describe", "node", "node-1"], state: state)
        #expect(described.stdout.contains("cordon by console-test") && described.stdout.contains("disk swap"), "\(described.stdout)")
    }
}
}

/// The console off loopback: nothing without the token; the sign-in form sets an HttpOnly,
/// SameSite cookie; a POST from another site is refused. No engine is needed.
@Suite("web console sign-in off loopback", .serialized)
struct ConsoleSignInTests {
    /// A new state holding one node, `node-a`, whose engine is nowhere: the console needs none.
    static func stateWithOneNode() throws -> (dir: String, state: String) {
        let dir = BerthProcess.temporaryFolder()
        let state = dir + "/berth.db"
        write(Manifests.node("node-a"), to: dir + "/node.yaml")
        #expect(try BerthProcess.run(["apply", "-f", dir + "/node.yaml"], state: state).code == 0)
        return (dir, state)
    }

    @Test(.enabled(if: Browser.available))
    func withoutTheToken_everythingIsRefused_andTheSignInFormLetsABrowserIn() throws {
        let (dir, state) = try Self.stateWithOneNode()
        let token = "console-test-token-0123456789"
        write(token + "\n", to: dir + "/token")
        let port = unusedLoopbackPort()
        let controller = try ControllerProcess(state: state, folder: dir, listen: "0.0.0.0:\(port)", arguments: ["--token-file", dir + "/token"])
        defer { controller.stop() }
        #expect(controller.api() != nil, "\(controller.text.suffix(2000).description)")
        let base = "http://127.0.0.1:\(port)"

        #expect(BerthProcess.httpStatus(base + "/api/v1/status") == 401)
        #expect(BerthProcess.httpStatus(base + "/history") == 401)
        let page = try BerthProcess.tool("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "-H", "Accept: text/html", base + "/history"])
        #expect(page.hasPrefix("303 ") && page.contains("/login?next=%2Fhistory"), "\(page)")

        let wrong = try BerthProcess.tool("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--data", "token=wrong&next=/", base + "/login"])
        #expect(wrong == "403")
        // The sign-in page, open to anyone reaching the address, says nothing of the fleet.
        let signIn = try BerthProcess.tool("/usr/bin/curl", ["-s", base + "/login"])
        #expect(signIn.contains("name=\"token\"") && !signIn.contains("leading") && !signIn.contains("standing by"), "\(signIn)")
        // The scheme in any case; a time typed in a GET form (`+` for the space).
        let at = try BerthProcess.tool("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Authorization: bearer \(token)",
                                                         base + "/history/at?time=2026-12-06+09%3A00"])
        #expect(at == "200")
        let headers = try BerthProcess.tool("/usr/bin/curl", ["-s", "-D", "-", "-o", "/dev/null", "--data", "token=\(token)&next=/history", base + "/login"])
        #expect(headers.contains("303") && headers.lowercased().contains("location: /history"), "\(headers)")
        let cookie = try #require(headers.split(separator: "\r\n").first { $0.lowercased().hasPrefix("set-cookie:") })
        #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && !cookie.contains(token), "\(cookie)")

        // In the browser: sent to the sign-in page, then in.
        let lines = try Browser.run(["size:390x844", "open:\(base)/deployments", "shot:\(Browser.output)/login-390.png",
                                     "type:input[name=token]=\(token)", "click:button", "eval:document.querySelector('h1').textContent"])
        #expect(lines.compactMap { $0["url"] as? String }.first?.contains("/login?next=") == true, "\(lines)")
        #expect(lines.compactMap { $0["eval"] as? String }.last == "Deployments", "\(lines)")

        // With the session cookie, an action POSTed from elsewhere (no Origin of this host) is refused.
        let value = String(cookie.split(separator: ";")[0].split(separator: "=", maxSplits: 1)[1])
        let forged = try BerthProcess.tool("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Cookie: berth_session=\(value)",
                                                             "-H", "Origin: http://evil.example", "--data", "action=cordon&author=x", base + "/nodes/node-a"])
        #expect(forged == "403")
        let holds = try BerthProcess.run(["describe", "node", "node-a"], state: state)
        #expect(!holds.stdout.lowercased().contains("cordoned"), "\(holds.stdout)")

        // What is not there is a page saying so, with its status; a bad action is refused.
        func fetch(_ path: String, _ extra: [String] = []) throws -> String {
            try BerthProcess.tool("/usr/bin/curl", ["-s", "-w", "\n%{http_code}", "-H", "Authorization: Bearer \(token)"] + extra + [base + path])
        }
        for (path, says) in [("/history/diff?from=1&to=99", "revision 99 does not exist"), ("/rollback?revision=99", "revision 99 does not exist"),
                             ("/nodes/nope", "no node &quot;nope&quot;")] {
            let answer = try fetch(path)
            #expect(answer.hasSuffix("\n404") && answer.contains(says), "\(path): \(answer.suffix(300))")
        }
        let bogus = try fetch("/nodes/node-a", ["--data", "action=reboot&author=x"])
        #expect(bogus.hasSuffix("\n400") && bogus.contains("action must be one of: cordon, uncordon, drain, promote"), "\(bogus)")

        // A rollback whose checks fail is refused (409) with its dry run shown again, and nothing
        // stored; ticked to store it anyway, it is stored with its author. Revision 2 serves `m`,
        // whose image no engine can show (node-a's engine is nowhere); revision 3 went back to 1.
        write(Manifests.node("node-a") + "\n---\n" + Manifests.model + "\n---\n" + Manifests.deployment("d"), to: dir + "/fleet.yaml")
        #expect(try BerthProcess.run(["apply", "-f", dir + "/fleet.yaml"], state: state).code == 0)
        #expect(try BerthProcess.run(["rollback", "--all", "--to-revision", "1"], state: state).code == 0)
        let refused = try fetch("/rollback", ["--data", "revision=2&author=console-test"])
        #expect(refused.hasSuffix("\n409") && refused.contains("rollback refused:") && refused.contains("deployment/d"), "\(refused.suffix(600))")
        func revisions() throws -> [Substring] { try BerthProcess.run(["history"], state: state).stdout.split(separator: "\n").dropFirst().map { $0 } }
        #expect(try revisions().count == 3)
        let forced = try fetch("/rollback", ["--data", "revision=2&author=console-test&force=1", "-o", "/dev/null"])
        #expect(forced.hasSuffix("\n303"), "\(forced)")
        let newest = try revisions()
        #expect(newest.count == 4 && newest.first.map { $0.hasPrefix("4 ") && $0.contains("console-test") && $0.contains("rollback") } == true, "\(newest)")

        // No other site may frame a page.
        let headers2 = try fetch("/history", ["-D", "-", "-o", "/dev/null"])
        #expect(headers2.contains("frame-ancestors 'none'") && headers2.lowercased().contains("x-frame-options: deny"), "\(headers2)")
    }

    /// Without a token on loopback: a page whose name is later pointed at 127.0.0.1 (DNS
    /// rebinding) is refused; a console tab's open event stream never holds up a stop.
    @Test(.enabled(if: Browser.available))
    func onLoopbackWithoutAToken_onlyLoopbackNamesAreAnswered_andAnOpenStreamDoesNotHoldUpAStop() throws {
        let (dir, state) = try Self.stateWithOneNode()
        let controller = try ControllerProcess(state: state, folder: dir)
        defer { controller.stop() }
        let base = try #require(controller.api())
        let port = base.split(separator: ":").last.map(String.init) ?? ""
        func status(_ extra: [String], _ path: String) throws -> String {
            try BerthProcess.tool("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}"] + extra + [base + path])
        }
        #expect(try status([], "/") == "200")
        #expect(try status(["-H", "Host: localhost:\(port)"], "/api/v1/status") == "200")
        #expect(try status(["-H", "Host: evil.example:\(port)"], "/") == "421")
        #expect(try status(["-H", "Host: evil.example:\(port)"], "/api/v1/status") == "421")
        #expect(try status(["-H", "Host: evil.example:\(port)", "-H", "Origin: http://evil.example:\(port)", "--data", "action=cordon&author=x"], "/nodes/node-a") == "421")
        #expect(try status(["-H", "Origin: http://evil.example", "--data", "action=cordon&author=x"], "/nodes/node-a") == "403")

        let stream = try Spawn.start(["/usr/bin/curl", "-sN", base + "/events/stream"], stdout: dir + "/stream.log")
        defer { kill(stream, SIGKILL); _ = Spawn.wait(stream, upTo: 5) }
        waitUntil(10) { ((try? String(contentsOfFile: dir + "/stream.log", encoding: .utf8)) ?? "").contains(": berth console") }
        let started = Date()
        #expect(controller.stop() == 0)
        #expect(Date().timeIntervalSince(started) < 10, "a stop with a console stream open took \(Date().timeIntervalSince(started)) s")
    }
}
