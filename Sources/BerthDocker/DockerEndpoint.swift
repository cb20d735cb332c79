import BerthModel
import Foundation
import NIOSSL

/// Where and how to reach one Docker engine.
public struct DockerEndpoint: Sendable, CustomStringConvertible {
    public enum Transport: Sendable {
        case unixSocket(path: String)
        case tcp(host: String, port: Int)
    }

    public var transport: Transport
    public var tls: TLSFiles?
    /// The endpoint as written in the manifest.
    public var description: String

    public init(_ engine: EngineEndpoint) throws {
        try self.init(engine.endpoint, tls: engine.tls)
    }

    /// Parses `unix:///path` or `tcp://host:port`.
    public init(_ text: String, tls: TLSFiles? = nil) throws {
        description = text
        self.tls = tls
        if let problem = EndpointSyntax.check(text) {
            throw DockerError(.badRequest, endpoint: text, operation: "parse the endpoint", message: problem)
        }
        if text.hasPrefix("unix://") {
            transport = .unixSocket(path: String(text.dropFirst("unix://".count)))
        } else {
            let rest = text.dropFirst("tcp://".count)
            let colon = rest.lastIndex(of: ":")!
            var host = String(rest[..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            transport = .tcp(host: host, port: Int(rest[rest.index(after: colon)...])!)
        }
    }

    /// The URL prefix requests are sent to (without the API version).
    var baseURL: String {
        switch transport {
        case .unixSocket(let path):
            let encoded = path.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? path
            return "http+unix://\(encoded)"
        case .tcp(let host, let port):
            // With an explicit server name the URL names it (the certificate is checked against
            // it) and the client's DNS override sends the connection to the address.
            let h = tls?.serverName ?? (host.contains(":") ? "[\(host)]" : host)
            return "\(tls == nil ? "http" : "https")://\(h):\(port)"
        }
    }

    /// Host name → address for the HTTP client, when the certificate names a server name.
    var dnsOverride: [String: String] {
        guard case .tcp(let host, _) = transport, let name = tls?.serverName else { return [:] }
        return [name: host]
    }

    /// Client TLS settings from the manifest's CA, certificate and key files.
    func tlsConfiguration() throws -> TLSConfiguration? {
        guard let tls else { return nil }
        do {
            var config = TLSConfiguration.makeClientConfiguration()
            config.trustRoots = .file(tls.ca)
            config.certificateChain = try NIOSSLCertificate.fromPEMFile(tls.cert).map { .certificate($0) }
            config.privateKey = .privateKey(try NIOSSLPrivateKey(file: tls.key, format: .pem))
            // The engine's certificate must name the address it is reached at (a DNS name or an IP
            // in its subjectAltName): any certificate of the fleet's CA must not pass for any engine.
            config.certificateVerification = .fullVerification
            return config
        } catch {
            throw DockerError(.tls, endpoint: description, operation: "load the TLS files (ca \(tls.ca), cert \(tls.cert), key \(tls.key))",
                              message: "\(error)")
        }
    }
}
