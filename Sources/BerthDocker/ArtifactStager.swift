import BerthModel
import BerthRuntime
import Foundation

// One file past 300 lines on purpose: the stager's shell script and the Swift that writes and
// reads it must agree line for line (its status lines, its exit codes).

/// Stages a model version's files on a node without an agent: a short-lived container (of the
/// version's own image, or another with `sh`, `sha256sum` or `openssl`, and `curl` or `wget`)
/// with the node's model root mounted fetches each artifact from the version's source.
///
/// Each file is written under a temporary name (`NAME.berth-partial`) and hashed as soon as it
/// is whole, from the page cache it was just written through; an interrupted one resumes with an
/// HTTP Range request (the bytes already there are hashed with the rest). Only a file whose size
/// and sha256 match is synced and renamed into place, so nothing half-written or wrong is ever
/// taken for a staged file. Free space is checked before the first byte: what is missing plus
/// `minFreeGiB` must fit. (Hashing through a pipe while the fetch writes measured slower: on two
/// cores, 4 × 256 MiB took 2.1 s that way against 1.55 s fetched, then hashed.)
public enum ArtifactStager {
    /// One file to fetch.
    public struct File: Sendable, Hashable {
        public var url: String
        public var path: String
        public var sha256: String
        public var size: Int64

        public init(url: String, path: String, sha256: String, size: Int64) {
            self.url = url
            self.path = path
            self.sha256 = sha256
            self.size = size
        }
    }

    /// What a stager reports: progress while it runs, the outcome once it ends.
    public struct Report: Sendable, Hashable {
        /// Bytes of the version's files in place or partial, of `total`.
        public var done: Int64 = 0
        public var total: Int64 = 0
        /// Bytes fetched over the network so far.
        public var fetched: Int64 = 0
        /// The file being fetched.
        public var current: String?
        public var outcome: Outcome?

        public init(done: Int64 = 0, total: Int64 = 0, fetched: Int64 = 0, current: String? = nil, outcome: Outcome? = nil) {
            self.done = done
            self.total = total
            self.fetched = fetched
            self.current = current
            self.outcome = outcome
        }
    }

    public enum Outcome: Sendable, Hashable {
        case staged
        /// The file's bytes arrived whole but their sha256 (or size) differs: never renamed into place.
        case mismatch(path: String, expected: String, actual: String, size: Int64)
        /// What is missing plus the free space to keep does not fit.
        case noSpace(need: Int64, available: Int64, keepFree: Int64)
        /// The source could not be read (unreachable, 404, cut off): the partial file stays for a resume.
        case fetchFailed(path: String, detail: String)
        /// The stager itself could not run (no fetcher in the image, a bandwidth cap without curl).
        case unusable(String)

        /// One line for status and events.
        public var summary: String {
            switch self {
            case .staged: "staged"
            case .mismatch(let path, let expected, let actual, let size):
                "\(path): sha256 mismatch (manifest \(expected), fetched file \(actual), \(size) bytes); not put in place"
            case .noSpace(let need, let available, let keepFree):
                "refused: needs \(gib(need)) more, \(gib(available)) free, and storage.minFreeGiB keeps \(gib(keepFree)) free"
            case .fetchFailed(let path, let detail): "\(path): \(detail)"
            case .unusable(let why): why
            }
        }
    }

    static func gib(_ bytes: Int64) -> String { String(format: "%.1f GiB", Double(bytes) / Double(1 << 30)) }

    /// Defines `digest`, which prints the sha256 of its standard input first on its line: OpenSSL's
    /// where the image has a working one (it uses the CPU's SHA extensions, about 4× coreutils'
    /// on x86 with SHA-NI), else `sha256sum`.
    static let digest = #"""
        empty=$(openssl dgst -sha256 -r < /dev/null 2>/dev/null)
        if [ "${empty%% *}" = e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 ]; then
            digest() { openssl dgst -sha256 -r; }
        else
            digest() { sha256sum; }
        fi

        """#

    /// The stager, a POSIX shell script. Arguments: ROOT KEEP_FREE_BYTES RATE_BYTES_PER_S (0: no
    /// cap; shared by the lanes) LANES (files fetched at once), then URL PATH SHA256 SIZE for
    /// each file. `BERTH_STAGE_AUTH`, when set, is sent as the
    /// `Authorization` header. Output, one line each: `progress DONE TOTAL FETCHED PATH` every
    /// couple of seconds, then `staged TOTAL FETCHED`, or one of `mismatch PATH ACTUAL SIZE`,
    /// `nospace NEED AVAILABLE KEEP`, `fetchfail PATH CODE`, `unusable WHY`.
    public static let script = #"""
        set -u
        root=$1; keep=$2; rate=$3; lanes=$4; shift 4
        if command -v curl >/dev/null 2>&1; then tool=curl
        elif command -v wget >/dev/null 2>&1; then tool=wget
        else echo "unusable the stager image has neither curl nor wget"; exit 6; fi
        if [ "$rate" != 0 ] && [ "$tool" != curl ]; then echo "unusable a bandwidth cap needs curl in the stager image"; exit 6; fi

        """# + digest + #"""
        size_of() { stat -c %s "$1" 2>/dev/null || wc -c < "$1" 2>/dev/null || echo 0; }
        # What is missing: files not in place, less what partial files hold.
        total=0; need=0; set -- "$@"; n=$#
        i=0; while [ $i -lt $n ]; do
            url=$1; path=$2; sum=$3; size=$4; shift 4; set -- "$@" "$url" "$path" "$sum" "$size"; i=$((i + 4))
            total=$((total + size))
            if [ ! -f "$root/$path" ]; then
                have=0; [ -f "$root/$path.berth-partial" ] && have=$(size_of "$root/$path.berth-partial")
                [ "$have" -le "$size" ] || have=0
                need=$((need + size - have))
            fi
        done
        mkdir -p "$root" || { echo "unusable cannot create $root"; exit 6; }
        avail=$(df -Pk "$root" | tail -n 1 | { read -r _fs _blocks _used free _rest; echo "$free"; })
        avail=$((${avail:-0} * 1024))
        if [ $((need + keep)) -gt "$avail" ]; then echo "nospace $need $avail $keep"; exit 5; fi
        fetch() {
            if [ "$tool" = curl ]; then
                if [ "$rate" != 0 ]; then limit="--limit-rate $((rate / lanes + 1))"; else limit=""; fi
                if [ -n "${BERTH_STAGE_AUTH:-}" ]; then
                    curl -fsSL $limit -H "Authorization: $BERTH_STAGE_AUTH" -C "$2" "$1" >> "$3"
                else
                    curl -fsSL $limit -C "$2" "$1" >> "$3"
                fi
            elif [ -n "${BERTH_STAGE_AUTH:-}" ]; then
                wget -q -c --header "Authorization: $BERTH_STAGE_AUTH" -O "$3" "$1"
            else
                wget -q -c -O "$3" "$1"
            fi
        }
        # One file: in place already with the right hash, or fetched into PATH.berth-partial
        # (resumed), hashed while written, renamed only on a match. Writes `ok FETCHED PATH` or a
        # failure line to the lane's log; returns non-zero on a failure.
        one() {
            url=$1; path=$2; sum=$3; size=$4; log=$5
            final="$root/$path"; part="$final.berth-partial"
            if [ -f "$final" ] && [ ! -f "$part" ]; then
                actual=$(digest < "$final"); actual=${actual%% *}
                if [ "$actual" = "$sum" ] && [ "$(size_of "$final")" = "$size" ]; then echo "ok 0 $path" >> "$log"; return 0; fi
            fi
            mkdir -p "$(dirname "$final")" || { echo "unusable cannot create the folder of $final" >> "$log"; return 6; }
            have=0; [ -f "$part" ] && have=$(size_of "$part")
            if [ "$have" -gt "$size" ]; then rm -f "$part"; have=0; fi
            echo "$have" > "$work/have.$idx"
            rc=0
            [ "$have" -lt "$size" ] && { fetch "$url" "$have" "$part"; rc=$?; }
            rm -f "$work/have.$idx"
            # Hashed whole, right after it is written (so from the page cache): the bytes of an
            # earlier attempt with the rest. Cheaper than hashing a pipe the fetch writes through.
            actual=""; [ "$rc" = 0 ] && { actual=$(digest < "$part"); actual=${actual%% *}; }
            got=$(size_of "$part")
            if [ "$rc" != 0 ]; then
                # 33: the server cannot resume; start this file over next time.
                [ "$rc" = 33 ] && rm -f "$part"
                echo "fetchfail $path $rc" >> "$log"; return 4
            fi
            if [ "$actual" != "$sum" ] || [ "$got" != "$size" ]; then
                rm -f "$part"; echo "mismatch $path $actual $got" >> "$log"; return 3
            fi
            sync "$part" 2>/dev/null || sync
            mv -f "$part" "$final" || { echo "unusable cannot rename $part" >> "$log"; return 6; }
            sync "$(dirname "$final")" 2>/dev/null || sync
            echo "ok $((got - have)) $path" >> "$log"
        }
        # Files go round-robin to `lanes` workers, so one file's hashing overlaps another's
        # download; the first failure stops every lane before its next file.
        work="${TMPDIR:-/tmp}/berth-stage-$$"; rm -rf "$work"; mkdir -p "$work" || { echo "unusable cannot create $work"; exit 6; }
        [ "$lanes" -ge 1 ] 2>/dev/null || lanes=1
        [ "$lanes" -le $((n / 4)) ] || lanes=$((n / 4)); [ "$lanes" -ge 1 ] || lanes=1
        lane() {
            k=$1; shift; idx=0; log="$work/lane.$k"; : > "$log"
            while [ $# -gt 0 ]; do
                if [ $((idx % lanes)) = "$k" ]; then
                    [ -f "$work/stop" ] && return 0
                    one "$1" "$2" "$3" "$4" "$log" || { : > "$work/stop"; return 0; }
                fi
                idx=$((idx + 1)); shift 4
            done
        }
        # Progress every couple of seconds: files in place, plus partial files, of the total.
        progress() {
            d=0; f=0; current=""; first=$2
            for l in "$work"/lane.*; do
                [ -f "$l" ] || continue
                while read -r word bytes _p; do [ "$word" = ok ] && f=$((f + bytes)); done < "$l"
            done
            idx=0; set -- "$@"
            while [ $# -gt 0 ]; do
                if [ -f "$root/$2.berth-partial" ]; then
                    p=$(size_of "$root/$2.berth-partial"); d=$((d + p))
                    if [ -f "$work/have.$idx" ]; then f=$((f + p - $(cat "$work/have.$idx" 2>/dev/null || echo "$p"))); current=$2; fi
                elif [ -f "$root/$2" ]; then d=$((d + $4)); fi
                idx=$((idx + 1)); shift 4
            done
            echo "progress $d $total $f ${current:-$first}"
        }
        ( while :; do sleep 2; progress "$@"; done ) &
        watcher=$!
        pids=""; k=0
        while [ $k -lt "$lanes" ]; do lane "$k" "$@" & pids="$pids $!"; k=$((k + 1)); done
        for p in $pids; do wait "$p"; done
        kill $watcher 2>/dev/null; wait $watcher 2>/dev/null
        fetched=0; failure=""
        for l in "$work"/lane.*; do
            while read -r word rest; do
                case $word in
                    ok) fetched=$((fetched + ${rest%% *})) ;;
                    *) [ -n "$failure" ] || failure="$word $rest" ;;
                esac
            done < "$l"
        done
        rm -rf "$work"
        if [ -n "$failure" ]; then
            echo "$failure"
            case $failure in mismatch*) exit 3 ;; fetchfail*) exit 4 ;; *) exit 6 ;; esac
        fi
        echo "staged $total $fetched"
        """#

    /// Files fetched and hashed at once on a node: one file's hashing overlaps another's download.
    public static let defaultLanes = 4

    /// The script's arguments for `files` under `root`.
    public static func arguments(root: String, keepFreeBytes: Int64, rateBytesPerSecond: Int64, lanes: Int = defaultLanes, files: [File]) -> [String] {
        [root, String(keepFreeBytes), String(rateBytesPerSecond), String(max(1, lanes))] + files.flatMap { [$0.url, $0.path, $0.sha256, String($0.size)] }
    }

    /// The files of `version` as its source serves them, under `base` (a URL ending in `/`;
    /// default the source's `url`; a node source's is the URL of the node serving them).
    public static func files(of version: ModelVersion, base: String? = nil) -> [File] {
        guard let base = base ?? version.source?.url else { return [] }
        return version.artifacts.map { File(url: ArtifactSource.url(of: $0, under: base), path: $0.path, sha256: $0.sha256, size: $0.sizeBytes ?? 0) }
    }

    /// Reads a stager's output (any tail of it that holds its last line): the newest progress
    /// and, once it ended, the outcome. `files` gives the expected hashes for a mismatch.
    public static func parse(_ output: String, files: [File]) -> Report {
        var report = Report()
        for line in output.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard let word = f.first else { continue }
            switch word {
            case "progress" where f.count >= 5:
                report.done = Int64(f[1]) ?? report.done
                report.total = Int64(f[2]) ?? report.total
                report.fetched = Int64(f[3]) ?? report.fetched
                report.current = f[4...].joined(separator: " ")
            case "staged" where f.count >= 3:
                report.total = Int64(f[1]) ?? report.total
                report.done = report.total
                report.fetched = Int64(f[2]) ?? report.fetched
                report.current = nil
                report.outcome = .staged
            case "mismatch" where f.count >= 4:
                let path = f[1..<(f.count - 2)].joined(separator: " ")
                report.outcome = .mismatch(path: path, expected: files.first { $0.path == path }?.sha256 ?? "?", actual: f[f.count - 2], size: Int64(f[f.count - 1]) ?? 0)
            case "nospace" where f.count >= 4:
                report.outcome = .noSpace(need: Int64(f[1]) ?? 0, available: Int64(f[2]) ?? 0, keepFree: Int64(f[3]) ?? 0)
            case "fetchfail" where f.count >= 3:
                let path = f[1..<(f.count - 1)].joined(separator: " ")
                report.outcome = .fetchFailed(path: path, detail: fetchFailure(code: f[f.count - 1]))
            case "unusable":
                report.outcome = .unusable(f.dropFirst().joined(separator: " "))
            default:
                continue
            }
        }
        return report
    }

    /// curl's exit codes (wget's are coarser) in words.
    static func fetchFailure(code: String) -> String {
        switch code {
        case "6": "the source's host name does not resolve"
        case "7": "the source refused the connection or is unreachable"
        case "22": "the source answered with an HTTP error (404, 403, …)"
        case "28": "the transfer timed out"
        case "18", "56": "the transfer was cut off (resumed next time)"
        case "33": "the source cannot resume a transfer (no byte ranges); starting the file over next time"
        case "23": "writing the file failed (disk full?)"
        default: "fetching failed (exit \(code))"
        }
    }

    /// The label of stager containers.
    public static let taskLabel = "io.berth.task"

    /// Stages `version` on a node: runs the stager in a container and follows it, reporting
    /// progress through `progress` about every `pollInterval`. Cancelling the calling task stops
    /// the container (the partial file stays; the next stager resumes it).
    public static func stageOnNode(
        _ client: DockerClient, node: String, model: String, version: ModelVersion, storage: NodeStorage, authorization: String?,
        base: String? = nil, image: String? = nil, pollInterval: Duration = .seconds(1), progress: @Sendable (Report) async -> Void = { _ in }
    ) async throws -> Report {
        let files = files(of: version, base: base)
        let root = storage.modelRoot
        let rate = Int64((storage.bandwidthMBps ?? 0) * 1_000_000)
        let keep = Int64(storage.minFreeGiB * Double(1 << 30))
        // A stager of this version left by a controller that was stopped: it is removed; its
        // partial files stay and this one resumes them.
        if let left = try? await client.listContainers(labels: ["\(taskLabel)=stage", "io.berth.stage=\(model)@\(version.version)"]) {
            for c in left { try? await client.removeContainer(c.id, force: true) }
        }
        let spec = TaskContainer.spec(
            image: image ?? version.image, script: script, name: "berth-stage",
            arguments: arguments(root: root, keepFreeBytes: keep, rateBytesPerSecond: rate, files: files),
            env: authorization.map { ["BERTH_STAGE_AUTH=\($0)"] } ?? [],
            labels: [taskLabel: "stage", "io.berth.stage": "\(model)@\(version.version)"], network: "host", binds: ["\(root):\(root):rw"])
        return try await TaskContainer.run(client, kind: "stage", spec: spec) { id in
            var last = Report(total: version.artifactBytes)
            // Whether it still runs is asked four times as often as its progress is read, so a
            // staging's end is seen within a quarter of the interval (a small version's whole
            // staging took ~1.15 s, most of it this wait).
            var ticks = 0
            while true {
                try await Task.sleep(for: pollInterval / 4)
                ticks += 1
                let details = try await client.inspectContainer(id)
                if details.state.running != true { break }
                guard ticks % 4 == 0 else { continue }
                let now = parse(try await client.logs(id, tail: 8), files: files)
                if now.total > 0 { last = now }
                await progress(last)
            }
            _ = try await client.waitContainer(id, timeout: .seconds(60))
            var report = parse(try await client.logs(id, tail: 8), files: files)
            if report.outcome == nil {
                let output = try await client.logs(id, tail: 3)
                report.outcome = .unusable("the stager ended without a result: \(output.trimmingCharacters(in: .whitespacesAndNewlines).suffix(300))")
            }
            if report.total == 0 { report.total = version.artifactBytes }
            return report
        }
    }
}
