import BerthModel

/// Rollout policy after a pass: which halted rollouts return to their deployment's last good
/// revision (`rollout.autoRollback`). Pure; the controller stores each as a revision of origin
/// `rollback`.
public enum AutoRollback {
    public struct Decision: Sendable, Hashable {
        public var deployment: String
        /// The deployment's revision whose rollout last completed.
        public var toRevision: Int64
        /// Why the rollout halted, in its condition's words.
        public var reason: String

        public init(deployment: String, toRevision: Int64, reason: String) {
            self.deployment = deployment
            self.toRevision = toRevision
            self.reason = reason
        }
    }

    /// One decision per halted rollout whose spec asks for automatic rollback and whose last good
    /// revision is another than the one it halted on. `specs`: each deployment's spec by name.
    public static func decisions(_ deployments: [DeploymentStatus], specs: [String: DeploymentSpec]) -> [Decision] {
        deployments.compactMap { d in
            guard d.rollout == .halted, specs[d.name]?.rollout.autoRollback == true,
                  let good = d.lastGoodRevision, good != d.objectRevision else { return nil }
            return Decision(deployment: d.name, toRevision: good,
                            reason: d.conditions[ConditionType.progressing.rawValue]?.message ?? "ready deadline exceeded")
        }
    }
}
