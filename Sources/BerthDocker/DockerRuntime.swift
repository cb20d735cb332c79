@_exported import BerthRuntime
import BerthModel
import Foundation

/// Docker's name for the runtime error every engine call throws.
public typealias DockerError = RuntimeError

/// A Docker engine is a `ContainerRuntime`: the reconciler drives it through that protocol only.
extension DockerClient: ContainerRuntime {
    public var location: String { endpoint.description }
}

/// Engine clients, one per endpoint, made on first use and reused across passes.
public actor ClientPool: RuntimeProvider {
    /// By the whole engine entry (endpoint and TLS files, server name), with the TLS files' state
    /// when the client was made: a manifest naming other files, or files replaced in place (a
    /// certificate rotated), gets a new client at the next use; no restart needed.
    var clients: [EngineEndpoint: (client: DockerClient, files: [FileStamp])] = [:]

    /// What tells a file was replaced: its inode, size and modification time.
    struct FileStamp: Equatable {
        var inode: UInt64
        var size: Int64
        var modified: Int
        var modifiedNanoseconds: Int

        init?(_ path: String) {
            var st = stat()
            guard stat(path, &st) == 0 else { return nil }
            inode = UInt64(st.st_ino)
            size = Int64(st.st_size)
            modified = st.st_mtim.tv_sec
            modifiedNanoseconds = st.st_mtim.tv_nsec
        }
    }

    public init() {}

    static func stamps(_ engine: EngineEndpoint) -> [FileStamp] {
        guard let tls = engine.tls else { return [] }
        return [tls.ca, tls.cert, tls.key].compactMap(FileStamp.init)
    }

    /// TLS files that failed to make a client while an older client of the same engine works.
    var refusedFiles: [EngineEndpoint: [FileStamp]] = [:]

    public func client(for engine: EngineEndpoint, timeout: Duration = .seconds(3)) async throws -> DockerClient {
        let files = Self.stamps(engine)
        if let cached = clients[engine] {
            if cached.files == files { return cached.client }
            // Rotated files that do not work (a key the controller cannot read, a certificate
            // the engine refuses) must not cut the controller off an engine it still reaches:
            // the client it has keeps serving until files that work appear.
            if refusedFiles[engine] == files { return cached.client }
            do {
                let c = try await DockerClient.connect(DockerEndpoint(engine), timeout: timeout)
                clients[engine] = (c, files)
                refusedFiles[engine] = nil
                return c
            } catch {
                refusedFiles[engine] = files
                return cached.client
            }
        }
        let c = try await DockerClient.connect(DockerEndpoint(engine), timeout: timeout)
        // A manifest change leaves no client behind for the old entry of the same endpoint.
        for key in clients.keys where key.endpoint == engine.endpoint { clients[key] = nil; refusedFiles[key] = nil }
        clients[engine] = (c, files)
        return c
    }

    public func runtime(for engine: EngineEndpoint) async throws -> any ContainerRuntime {
        try await client(for: engine)
    }

    public func forget(_ engine: EngineEndpoint) {
        clients[engine] = nil
        refusedFiles[engine] = nil
    }
}
