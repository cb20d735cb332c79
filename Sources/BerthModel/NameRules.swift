/// The shapes names and values must have. Each check returns nil when valid, or what would be valid.
///
/// Names end up in container names, file names under the state folder, nginx upstream names and
/// log lines, so they are kept to characters that mean nothing to a shell, a path or SQL.
public enum NameRules {
    static let lowerAlnum = Set("abcdefghijklmnopqrstuvwxyz0123456789")
    static let alnum = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")

    /// Object names: DNS-label style, 1–63 characters.
    public static func objectName(_ name: String) -> String? {
        let chars = Array(name)
        let valid = (1...63).contains(chars.count)
            && chars.allSatisfy { lowerAlnum.contains($0) || $0 == "-" }
            && lowerAlnum.contains(chars.first!) && lowerAlnum.contains(chars.last!)
        return valid ? nil : "1–63 lower-case letters, digits and '-', starting and ending with a letter or digit (e.g. \"deepseek-v3\")"
    }

    /// Model version names: `2024-12-fp8`, `v1.2.0`.
    public static func versionName(_ name: String) -> String? {
        let chars = Array(name)
        let valid = (1...63).contains(chars.count)
            && chars.allSatisfy { alnum.contains($0) || "._-".contains($0) }
            && alnum.contains(chars.first!)
        return valid ? nil : "1–63 letters, digits, '.', '_' and '-', starting with a letter or digit (e.g. \"v1.2.0\")"
    }

    /// Label keys: `zone`, `berth.io/rack`.
    public static func labelKey(_ key: String) -> String? {
        let chars = Array(key)
        let valid = (1...63).contains(chars.count)
            && chars.allSatisfy { alnum.contains($0) || "._-/".contains($0) }
            && alnum.contains(chars.first!) && alnum.contains(chars.last!)
        return valid ? nil : "1–63 letters, digits, '.', '_', '-' and '/', starting and ending with a letter or digit"
    }

    /// Label values: may be empty.
    public static func labelValue(_ value: String) -> String? {
        let chars = Array(value)
        let valid = chars.count <= 63 && chars.allSatisfy { alnum.contains($0) || "._-".contains($0) }
        return valid ? nil : "at most 63 letters, digits, '.', '_' and '-'"
    }

    /// Environment variable names.
    public static func envName(_ name: String) -> String? {
        let chars = Array(name)
        let valid = !chars.isEmpty && chars.allSatisfy { alnum.contains($0) || $0 == "_" }
            && !("0123456789".contains(chars.first!))
        return valid ? nil : "letters, digits and '_', not starting with a digit (e.g. \"TRITON_LOG_LEVEL\")"
    }

    /// Why a deployment may not set variable `name` itself, or nil. Berth sets these in every
    /// replica: the GPU wiring (which GPUs the container sees) and the `BERTH_*` facts about the
    /// replica. A manifest that set them could take another replica's GPUs or lie about itself.
    public static func reservedEnvName(_ name: String) -> String? {
        if name == "NVIDIA_VISIBLE_DEVICES" || name == "CUDA_VISIBLE_DEVICES" {
            return "\(name) is the GPU wiring: Berth sets it to the GPUs assigned to each replica"
        }
        if name.hasPrefix("BERTH_") {
            return "BERTH_* variables are Berth's: it sets BERTH_DEPLOYMENT, BERTH_REPLICA, BERTH_PORT and others in each replica"
        }
        return nil
    }

    /// Any value that is handed on without a shell: printable, no control characters.
    public static func printable(_ value: String) -> String? {
        value.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) ? nil : "printable characters only"
    }

    /// Docker image references: `registry:5000/team/triton:24.12-py3` or with `@sha256:…`.
    public static func imageReference(_ ref: String) -> String? {
        let valid = !ref.isEmpty && ref.count <= 255
            && ref.allSatisfy { alnum.contains($0) || "._-/:@".contains($0) }
            && alnum.contains(ref.first!)
        return valid ? nil : "an image reference such as \"registry.local:5000/triton:24.12-py3\""
    }

    /// Absolute paths without `..` segments or control characters.
    public static func absolutePath(_ path: String) -> String? {
        let valid = path.hasPrefix("/") && printable(path) == nil
            && !path.split(separator: "/").contains("..")
        return valid ? nil : "an absolute path (starting with '/', without '..')"
    }

    /// An artifact's path: absolute (placed by hand), or relative to a node's model root
    /// (staged), never climbing out of it.
    public static func artifactPath(_ path: String) -> String? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst(path.hasPrefix("/") ? 1 : 0)
        let valid = !path.isEmpty && printable(path) == nil && !path.hasSuffix("/")
            && !parts.contains("..") && !parts.contains(".") && !parts.contains("")
        return valid ? nil : "an absolute path, or one relative to the node's model root, such as deepseek-v3/v1/model.safetensors (no '..', '.' or empty parts)"
    }

    /// 64 lower-case hexadecimal digits.
    public static func sha256(_ hash: String) -> String? {
        let hex = Set("0123456789abcdef")
        return hash.count == 64 && hash.allSatisfy({ hex.contains($0) }) ? nil : "64 lower-case hexadecimal digits"
    }

    /// Host names and IP addresses.
    public static func host(_ host: String) -> String? {
        let valid = !host.isEmpty && host.count <= 253
            && host.allSatisfy { alnum.contains($0) || ".-:[]".contains($0) }
        return valid ? nil : "a host name or IP address, e.g. \"10.0.0.11\" or \"gpu-a1.internal\""
    }
}
