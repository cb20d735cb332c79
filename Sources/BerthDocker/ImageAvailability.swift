import AsyncHTTPClient
import BerthModel
import Foundation
import NIOCore
import NIOHTTP1

/// Whether an image can be run: already on a node, or pullable from its registry.
public enum ImageAvailability {
    /// nil when `image` is on one of the engines or its registry has the manifest; else what is
    /// wrong, naming the nodes asked and the registry's answer.
    public static func problem(with image: String, engines: [(node: String, engine: EngineEndpoint)], timeout: Duration = .seconds(3)) async -> String? {
        var unreachable: [String] = []
        for (node, engine) in engines {
            do {
                let client = try await DockerClient.connect(DockerEndpoint(engine), timeout: timeout)
                if try await client.hasImage(image) { return nil }
            } catch {
                unreachable.append(node)
            }
        }
        let registryAnswer = await registryHas(image, timeout: timeout)
        if registryAnswer == nil { return nil }
        var text = "image \(image) is on no node"
        if !unreachable.isEmpty { text += " (unreachable: \(unreachable.joined(separator: ", ")))" }
        return text + " and is not pullable: \(registryAnswer!)"
    }

    /// nil when the registry serves the image's manifest; else its answer or the transport error.
    static func registryHas(_ image: String, timeout: Duration) async -> String? {
        let (repository, reference) = DockerClient.split(image)
        let parts = repository.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2, parts[0].contains(".") || parts[0].contains(":") || parts[0] == "localhost" else {
            return "no registry host in the reference (Docker Hub cannot be reached from here)"
        }
        let host = parts[0]
        let loopback = NetworkAddress.split(authority: host).map { NetworkAddress.isLoopback(host: $0.host) } ?? false
        var request = HTTPClientRequest(url: "\(loopback ? "http" : "https")://\(host)/v2/\(parts[1])/manifests/\(reference)")
        request.method = .HEAD
        request.headers.add(name: "Accept", value: "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json")
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(timeout.components.seconds))
            switch response.status.code {
            case 200: return nil
            case 401: return "registry \(host) wants credentials to tell"
            case 404: return "registry \(host) has no \(parts[1]):\(reference)"
            default: return "registry \(host) answered HTTP \(response.status.code)"
            }
        } catch {
            return "registry \(host) unreachable (\(error))"
        }
    }
}
