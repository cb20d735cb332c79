import Foundation

/// Removes model files so that their bytes are gone from the disk as far as a file system lets
/// a program make sure: each file is overwritten in place (random bytes, then zeros on the last
/// pass), synced after every pass, then unlinked.
///
/// Best effort: SSDs remap writes (wear levelling), and copy-on-write or journalling file systems
/// (btrfs, ZFS, data=journal ext4) and snapshots may keep the old blocks. Encrypting the model
/// disk and discarding its key is the sure way.
public enum ArtifactPurge {
    public struct Result: Sendable, Hashable {
        public var path: String
        public var bytes: Int64
        /// Empty when the file was overwritten and removed; else why not.
        public var problem: String
    }

    public static func purge(_ path: String, passes: Int) -> Result {
        let fd = open(path, O_WRONLY)
        guard fd >= 0 else {
            return Result(path: path, bytes: 0, problem: errno == ENOENT ? "missing" : "cannot open: \(String(cString: strerror(errno)))")
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            close(fd)
            return Result(path: path, bytes: 0, problem: "cannot stat: \(String(cString: strerror(errno)))")
        }
        let size = Int64(info.st_size)
        let chunk = 4 << 20
        var buffer = [UInt64](repeating: 0, count: chunk / 8)
        var rng = SystemRandomNumberGenerator()
        let passes = max(1, passes)
        for pass in 1...passes {
            // Random bytes, and zeros on the last pass.
            for i in buffer.indices { buffer[i] = pass == passes ? 0 : rng.next() }
            var offset: Int64 = 0
            while offset < size {
                let n = Int(min(Int64(chunk), size - offset))
                let written = buffer.withUnsafeBytes { pwrite(fd, $0.baseAddress, n, off_t(offset)) }
                guard written == n else {
                    let why = String(cString: strerror(errno))
                    close(fd)
                    return Result(path: path, bytes: size, problem: "overwrite pass \(pass) failed at byte \(offset): \(why)")
                }
                offset += Int64(n)
            }
            guard fsync(fd) == 0 else {
                let why = String(cString: strerror(errno))
                close(fd)
                return Result(path: path, bytes: size, problem: "sync after pass \(pass) failed: \(why)")
            }
        }
        close(fd)
        guard unlink(path) == 0 else { return Result(path: path, bytes: size, problem: "overwritten, but not removed: \(String(cString: strerror(errno)))") }
        return Result(path: path, bytes: size, problem: "")
    }
}
