import BerthTesting
import Foundation
import Testing

@Suite("The controller's HTTP API off loopback")
struct APITokenTests {
    func status(_ url: String, token: String? = nil) -> Int {
        let args = ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "3"] + (token.map { ["-H", "Authorization: Bearer \($0)"] } ?? []) + [url]
        return Int((try? BerthProcess.tool("/usr/bin/curl", args)) ?? "") ?? 0
    }

    @Test func aNonLoopbackListener_needsAToken_andChecksItOnEveryPathButHealthz() throws {
        let (dir, state) = try threeRevisions()
        defer { stopGateways(stateFolder: dir + "/state") }
        let refused = try BerthProcess.run(["controller", "--listen", "0.0.0.0:17491"], state: state)
        #expect(refused.code != 0 && refused.stderr.contains("needs --token-file"), "\(refused.stderr)")
        write("short", to: dir + "/short-token")
        let short = try BerthProcess.run(["controller", "--listen", "0.0.0.0:17491", "--token-file", dir + "/short-token"], state: state)
        #expect(short.code != 0 && short.stderr.contains("shorter than 16 characters"), "\(short.stderr)")

        let token = String(repeating: "0123456789abcdef", count: 2)
        write(token + "\n", to: dir + "/token")
        let controller = try ControllerProcess(state: state, folder: dir, arguments: ["--listen", "0.0.0.0:17491", "--token-file", dir + "/token"])
        defer { controller.stop() }
        let base = "http://127.0.0.1:17491"
        #expect(waitUntil(10) { status(base + "/healthz") == 200 } != nil, "\(controller.text.suffix(1000))")
        for path in ["/readyz", "/metrics", "/api/v1/status", "/api/v1/nodes"] {
            #expect(status(base + path) == 401, "\(path) without a token")
            #expect(status(base + path, token: token + "x") == 401, "\(path) with a wrong token")
            #expect([200, 503].contains(status(base + path, token: token)), "\(path) with the token")
        }
    }
}
