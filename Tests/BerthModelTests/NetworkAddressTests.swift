import BerthModel
import Testing

@Suite("Network addresses")
struct NetworkAddressTests {
    static let loopbackCases: [(host: String, loopback: Bool)] = [
        ("127.0.0.1", true),
        ("127.255.255.254", true),
        ("127.1.2.3", true),
        ("localhost", true),
        ("LocalHost", true),
        ("::1", true),
        ("[::1]", true),
        ("0:0:0:0:0:0:0:1", true),
        ("::ffff:127.0.0.1", true),
        // Names that only look like loopback: anyone can point them anywhere.
        ("127.attacker.example", false),
        ("127.0.0.1.example", false),
        ("127.0.0.1.", false),
        ("localhost.evil", false),
        ("localhost.", false),
        ("localhostx", false),
        ("xlocalhost", false),
        // Not dotted quads.
        ("127.1", false),
        ("127.0.0", false),
        ("127.0.0.1.1", false),
        ("127.0.0.256", false),
        ("127.0.0.-1", false),
        ("127..0.1", false),
        ("0177.0.0.1", false),
        ("127.0.0.01", false),
        ("127.0.0.1 ", false),
        ("0x7f.0.0.1", false),
        ("2130706433", false),
        // Other addresses.
        ("10.0.0.1", false),
        ("0.0.0.0", false),
        ("128.0.0.1", false),
        ("::", false),
        ("::2", false),
        ("[::1", false),
        ("::ffff:10.0.0.1", false),
        ("fe80::1", false),
        ("", false),
    ]

    @Test(arguments: loopbackCases)
    func isLoopback_acceptsOnlyAddressesOfThisMachine(host: String, loopback: Bool) {
        #expect(NetworkAddress.isLoopback(host: host) == loopback, "\(host)")
    }

    static let splitCases: [(text: String, host: String?, port: Int?)] = [
        ("127.0.0.1:7480", "127.0.0.1", 7480),
        ("localhost:5000", "localhost", 5000),
        ("[::1]:2375", "::1", 2375),
        ("[::1]", "::1", nil),
        ("::1", "::1", nil),
        ("registry.local", "registry.local", nil),
        ("0.0.0.0:0", "0.0.0.0", 0),
        (":7480", "", 7480),
        ("host:65536", nil, nil),
        ("host:", nil, nil),
        ("host:80x", nil, nil),
        ("host:-1", nil, nil),
        ("[::1]x", nil, nil),
        ("[::1:80", nil, nil),
        ("::1]:80", nil, nil),
    ]

    @Test(arguments: splitCases)
    func splitAuthority_separatesHostAndPort(text: String, host: String?, port: Int?) {
        let parts = NetworkAddress.split(authority: text)
        #expect(parts?.host == host, "\(text)")
        #expect(parts?.port == port, "\(text)")
    }

    static let endpointCases: [(endpoint: String, loopback: Bool)] = [
        ("tcp://127.0.0.1:2375", true),
        ("tcp://localhost:2375", true),
        ("tcp://[::1]:2375", true),
        ("tcp://127.attacker.example:2375", false),
        ("tcp://localhost.evil:2375", false),
        ("tcp://10.0.0.11:2375", false),
        ("unix:///var/run/docker.sock", false),
    ]

    @Test(arguments: endpointCases)
    func engineEndpoint_isLoopbackOnlyForThisMachine(endpoint: String, loopback: Bool) {
        #expect(EndpointSyntax.isLoopback(endpoint) == loopback, "\(endpoint)")
    }

    /// Plain TCP is allowed without `insecure: true` only to this machine.
    @Test func nodeManifest_plainTCPToAHostNamedLikeLoopback_needsTLSOrInsecure() {
        let text = edit(Fixture.node, "unix:///var/run/docker.sock", "tcp://127.attacker.example:2375")
        let issues = Fixture.validate(text)
        #expect(issues.contains { $0.field == "spec.engine.endpoint" && $0.problem.contains("unencrypted") }, "\(issues)")
        #expect(Fixture.validate(edit(Fixture.node, "unix:///var/run/docker.sock", "tcp://127.0.0.1:2375")).isEmpty)
    }
}
