/// What this build is: `berth --version` and the controller's first log line print it.
///
/// `scripts/release` builds from a copy of the tree in which it rewrites the three lines below
/// (version kept, commit and build date filled in); a build from the working tree is unreleased.
public enum BerthVersion {
    public static let version = "0.2.0"
    public static let commit: String? = nil
    public static let buildDate: String? = nil

    /// `0.2.0 (commit 1a2b3c4d5e6f, built 2026-12-05T14:00:00Z)`, or `0.2.0 (unreleased build)`.
    public static var current: String {
        guard let commit else { return "\(version) (unreleased build)" }
        return "\(version) (commit \(commit), built \(buildDate ?? "at an unknown date"))"
    }
}
