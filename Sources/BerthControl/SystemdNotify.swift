import Foundation

/// Tells systemd how the controller is doing, the sd_notify protocol without libsystemd: one
/// datagram of `KEY=VALUE` lines to the unix socket named by `$NOTIFY_SOCKET` (a path, or an
/// abstract name written with a leading `@`). Without that variable (not under a `Type=notify`
/// unit) it does nothing.
///
/// The packaged `berth-controller.service` is `Type=notify`: systemd counts the controller started
/// once it sends `READY=1`, after its state opened and its HTTP API listens.
public enum SystemdNotify {
    /// Sends `message` (such as `"READY=1\nSTATUS=…"`); false when there is no socket or it failed.
    @discardableResult
    public static func send(_ message: String, socket: String? = ProcessInfo.processInfo.environment["NOTIFY_SOCKET"]) -> Bool {
        guard let socket, socket.count > 1 else { return false }
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(socket.utf8)
        if path.first == UInt8(ascii: "@") { path[0] = 0 }  // an abstract socket
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.count < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path)
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count + (path.first == 0 ? 0 : 1))
        let bytes = Array(message.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sa, length) }
            }
        }
        return sent == bytes.count
    }
}
