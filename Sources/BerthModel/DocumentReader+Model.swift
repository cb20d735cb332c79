import Foundation
import Yams

extension DocumentReader {
    static func readModel(_ field: Field) -> ModelSpec? {
        guard let m = field.mapping(fields: ["keepVersions", "versions"]) else { return nil }
        let keep = m.optional("keepVersions")?.int(in: 1...100, expected: "how many versions to keep ready, 1–100")
        let list = m.required("versions", expected: "a list of versions")?.list()
        m.finish()
        guard let list else { return nil }
        if list.isEmpty {
            m.field.fail("versions is empty", expected: "at least one version")
            return nil
        }
        var seen: Set<String> = []
        var broken = false
        let versions = list.compactMap { item -> ModelVersion? in
            guard let v = readVersion(item) else { broken = true; return nil }
            if !seen.insert(v.version).inserted {
                item.fail("version \"\(v.version)\" is listed twice", expected: "each version name once")
                broken = true
            }
            return v
        }
        if broken || (m.optional("keepVersions") != nil && keep == nil) { return nil }
        return ModelSpec(keepVersions: keep ?? 3, versions: versions)
    }

    static func readVersion(_ field: Field) -> ModelVersion? {
        guard let m = field.mapping(fields: ["version", "image", "parameters", "precision", "gpuMemoryGiB", "artifacts", "pinned", "registryAuth", "source"]) else { return nil }
        let version = m.required("version", expected: "a version name")?.string(expected: "a version name such as \"v1\"").flatMap { checked($0, m, "version", NameRules.versionName) }
        let image = m.required("image", expected: "an image reference")?.string().flatMap { checked($0, m, "image", NameRules.imageReference) }
        let parameters = m.required("parameters", expected: "a parameter count such as 671B").flatMap(readParameters)
        let precisions = Precision.allCases.map(\.rawValue).joined(separator: ", ")
        let precision = m.required("precision", expected: "one of: \(precisions)")?.oneOf(Precision.self)
        let memoryField = m.optional("gpuMemoryGiB")
        let memory = memoryField?.number(minimum: 0.001, expected: "GiB of GPU memory one replica needs")
        let pinnedField = m.optional("pinned")
        let pinned = pinnedField?.bool()
        let authField = m.optional("registryAuth")
        let auth = authField.flatMap { f -> RegistryCredentials? in
            guard let a = f.mapping(fields: ["username", "password"]) else { return nil }
            let username = a.required("username", expected: "the registry user name")?.string(expected: "the registry user name")
            let passwordField = a.required("password", expected: "{ fromFile: /path } or { fromEnv: NAME }")
            var password: SecretRef?
            if let passwordField {
                if case .mapping = passwordField.node {
                    password = readSecretRef(passwordField)
                } else {
                    passwordField.fail("a password written in the manifest would be stored and shown", expected: "the password by reference: { fromFile: /path } or { fromEnv: NAME }")
                }
            }
            a.finish()
            guard let username, let password else { return nil }
            return RegistryCredentials(username: username, password: password)
        }
        let sourceField = m.optional("source")
        let source = sourceField.flatMap(readSource)
        var artifacts: [Artifact] = []
        var broken = false
        if let list = m.optional("artifacts")?.list() {
            var paths: Set<String> = []
            for item in list {
                guard let a = readArtifact(item) else { broken = true; continue }
                if !paths.insert(a.path).inserted {
                    item.fail("artifact \(a.path) is listed twice", expected: "each path once")
                    broken = true
                }
                // Staged files live under each node's model root; hand-placed ones are named absolutely.
                let relative = !a.path.hasPrefix("/")
                let pathField = item.mapping(fields: ["path", "sha256", "sizeBytes"])?.optional("path") ?? item
                if sourceField != nil, !relative {
                    pathField.fail("\(a.path) is absolute, but this version is staged from a source",
                                   expected: "a path relative to each node's storage.modelRoot, such as \(version ?? "v1")/\((a.path as NSString).lastPathComponent)")
                    broken = true
                } else if sourceField == nil, relative {
                    pathField.fail("\(a.path) is relative, but this version names no source to stage it from",
                                   expected: "source: { url: https://host/path/ } on the version, or an absolute path placed on every node by hand")
                    broken = true
                } else if sourceField != nil, a.sizeBytes == nil {
                    item.fail("artifact \(a.path) has no sizeBytes", expected: "sizeBytes on every staged artifact: free space is checked and progress shown with it")
                    broken = true
                }
                artifacts.append(a)
            }
        } else if m.optional("artifacts") != nil {
            broken = true
        }
        if let sourceField, artifacts.isEmpty, !broken {
            sourceField.fail("a source with no artifacts", expected: "the artifacts to stage from it, or no source")
            broken = true
        }
        m.finish()
        guard let version, let image, let parameters, let precision, !broken, memoryField == nil || memory != nil,
              pinnedField == nil || pinned != nil, authField == nil || auth != nil, sourceField == nil || source != nil else { return nil }
        return ModelVersion(version: version, image: image, parameters: parameters, precision: precision, gpuMemoryGiB: memory, artifacts: artifacts,
                            pinned: pinned == true ? true : nil, registryAuth: auth, source: source)
    }

    /// `source: { url: https://host/path/, username: U, password: { fromFile: … } }` or with
    /// `token: { fromFile: … }`, or `source: { node: NAME }`. Credentials written into the URL
    /// are refused: they would be stored.
    static func readSource(_ field: Field) -> ArtifactSource? {
        guard let m = field.mapping(fields: ["url", "node", "username", "password", "token"]) else { return nil }
        if let nodeField = m.optional("node") {
            let node = nodeField.string(expected: "the name of a node holding the files under its storage.modelRoot")
            let problem = node.flatMap(NameRules.objectName)
            if let node, let problem { nodeField.fail("\"\(node)\" is not a node name", expected: problem) }
            for other in ["url", "username", "password", "token"] {
                m.optional(other)?.fail("a node source takes no \(other)", expected: "source: { node: NAME } alone, or source: { url: … } with credentials")
            }
            m.finish()
            guard let node, problem == nil else { return nil }
            return ArtifactSource(node: node)
        }
        let urlField = m.required("url", expected: "url: the base URL the artifact paths are fetched under (such as https://files.internal/models/), or node: a node that holds them")
        var url = urlField?.string(expected: "an http:// or https:// URL")
        if let text = url, let urlField {
            let parts = URLComponents(string: text)
            if parts == nil || !["http", "https"].contains(parts?.scheme ?? "") || (parts?.host ?? "").isEmpty {
                urlField.fail("\"\(text)\" is not an http(s) URL", expected: "http://host[:port]/path/ or https://…")
                url = nil
            } else if parts?.user != nil || parts?.password != nil {
                urlField.fail("credentials written into the URL would be stored and shown", expected: "username with password: { fromFile: … }, or token: { fromFile: … }, by reference")
                url = nil
            } else if parts?.query != nil || parts?.fragment != nil {
                urlField.fail("\"\(text)\" has a query or fragment", expected: "a base URL the artifact paths are appended to")
                url = nil
            } else if !text.hasSuffix("/") {
                url = text + "/"
            }
        }
        let username = m.optional("username")?.string(expected: "the user name for HTTP Basic authentication")
        func secret(_ name: String) -> (present: Bool, ref: SecretRef?) {
            guard let f = m.optional(name) else { return (false, nil) }
            guard case .mapping = f.node else {
                f.fail("a \(name) written in the manifest would be stored and shown", expected: "by reference: { fromFile: /path } or { fromEnv: NAME }")
                return (true, nil)
            }
            return (true, readSecretRef(f))
        }
        let password = secret("password")
        let token = secret("token")
        m.finish()
        if (password.present && password.ref == nil) || (token.present && token.ref == nil) { return nil }
        if token.present && (username != nil || password.present) {
            m.field.fail("both a token and a user name or password", expected: "one: token, or username with password")
            return nil
        }
        if (username != nil) != password.present {
            m.field.fail(username == nil ? "a password without a username" : "a username without a password", expected: "username and password together")
            return nil
        }
        guard let url else { return nil }
        return ArtifactSource(url: url, username: username, password: password.ref, token: token.ref)
    }

    static func readParameters(_ field: Field) -> ParameterCount? {
        let expected = "a parameter count such as 671B, 1.5B, 500M or a whole number"
        guard case .scalar(let s) = field.node else {
            field.fail("got \(field.found)", expected: expected)
            return nil
        }
        guard let count = ParameterCount(text: s.string) else {
            field.fail("\"\(s.string)\" is not a parameter count", expected: expected)
            return nil
        }
        return count
    }

    static func readArtifact(_ field: Field) -> Artifact? {
        guard let m = field.mapping(fields: ["path", "sha256", "sizeBytes"]) else { return nil }
        let path = m.required("path", expected: "a file path")?.string().flatMap { checked($0, m, "path", NameRules.artifactPath) }
        let sha = m.required("sha256", expected: "64 lower-case hexadecimal digits")?.string(expected: "64 lower-case hexadecimal digits").flatMap { checked($0, m, "sha256", NameRules.sha256) }
        let sizeField = m.optional("sizeBytes")
        let size = sizeField?.int(in: 0...Int.max, expected: "the file size in bytes")
        m.finish()
        guard let path, let sha, sizeField == nil || size != nil else { return nil }
        return Artifact(path: path, sha256: sha, sizeBytes: size.map(Int64.init))
    }
}
