import BerthModel
import Foundation
import Testing

@Suite("Engine transport rules")
struct EngineTransportTests {
    func node(_ engine: String) -> String {
        """
        apiVersion: berth/v1
        kind: Node
        metadata: { name: gpu-1 }
        spec:
          address: 10.0.0.5
          engine: \(engine)
          gpus: { count: 8, memoryGiB: 80 }
        """
    }

    @Test func plainTCPToANonLoopbackAddress_isRefusedUnlessInsecure() throws {
        do {
            _ = try ManifestLoader.load(text: node("{ endpoint: \"tcp://10.0.0.5:2375\" }"), file: "node.yaml")
            Issue.record("a plain tcp:// engine on the network was accepted")
        } catch let errors as ManifestErrors {
            let text = errors.description
            #expect(text.contains("node.yaml:6:") && text.contains("spec.engine") && text.contains("`insecure: true` to accept the risk"), "\(text)")
        }
        let allowed = try ManifestLoader.load(text: node("{ endpoint: \"tcp://10.0.0.5:2375\", insecure: true }"), file: "node.yaml")
        #expect(allowed.first?.resource.node?.engine.insecure == true)
        _ = try ManifestLoader.load(text: node("{ endpoint: \"tcp://127.0.0.1:2375\" }"), file: "node.yaml")
        _ = try ManifestLoader.load(text: node("{ endpoint: \"tcp://10.0.0.5:2376\", tls: { ca: /etc/berth/ca.pem, cert: /etc/berth/c.pem, key: /etc/berth/k.pem } }"), file: "node.yaml")
    }

    @Test func anExplicitTLSServerName_isKept_andMustBeADNSName() throws {
        let tls = "tls: { ca: /etc/berth/ca.pem, cert: /etc/berth/c.pem, key: /etc/berth/k.pem, serverName: %@ }"
        let ok = try ManifestLoader.load(text: node("{ endpoint: \"tcp://10.0.0.5:2376\", \(tls.replacingOccurrences(of: "%@", with: "gpu-1.fleet.internal")) }"), file: "node.yaml")
        #expect(ok.first?.resource.node?.engine.tls?.serverName == "gpu-1.fleet.internal")
        for bad in ["\"bad name\"", "10.0.0.5", "-x.example", "\"a..b\""] {
            do {
                _ = try ManifestLoader.load(text: node("{ endpoint: \"tcp://10.0.0.5:2376\", \(tls.replacingOccurrences(of: "%@", with: bad)) }"), file: "node.yaml")
                Issue.record("accepted serverName \(bad)")
            } catch let errors as ManifestErrors {
                #expect(errors.description.contains("spec.engine.tls.serverName") && errors.description.contains("is not a DNS name"), "\(errors.description)")
            }
        }
    }
}
