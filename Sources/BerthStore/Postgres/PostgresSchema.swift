import BerthModel

/// The state's schema on PostgreSQL: the same tables and columns as on SQLite (`Schema`), from
/// the same named migrations in the same order, each applied once (those missing together, in
/// one transaction) and recorded in `berth_migrations`. Never edit a registered migration; add a new one to both.
/// Identifiers are left unquoted (PostgreSQL folds them to lower case) and queries never quote
/// them either.
enum PostgresSchema {
    /// Marks a database as a Berth state: a row `application = berth-state` in `berth_meta`.
    static let application = "berth-state"

    static let bookkeeping = [
        "CREATE TABLE berth_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "INSERT INTO berth_meta (key, value) VALUES ('application', '\(application)')",
        "CREATE TABLE berth_migrations (identifier TEXT PRIMARY KEY, appliedAt TIMESTAMPTZ NOT NULL DEFAULT now())",
    ]

    static var migrations: [(id: String, statements: [String])] {
        let kinds = ResourceKindNames.all.map { "'\($0)'" }.joined(separator: ", ")
        return [
            ("v1-revisions-objects-events", [
                """
                CREATE TABLE revision (
                    id BIGSERIAL PRIMARY KEY,
                    createdAt TIMESTAMPTZ NOT NULL,
                    author TEXT NOT NULL,
                    message TEXT NOT NULL DEFAULT '',
                    origin TEXT NOT NULL CHECK (origin IN ('apply', 'rollback', 'restore')),
                    createdCount BIGINT NOT NULL CHECK (createdCount >= 0),
                    configuredCount BIGINT NOT NULL CHECK (configuredCount >= 0),
                    deletedCount BIGINT NOT NULL CHECK (deletedCount >= 0))
                """,
                "CREATE INDEX revision_createdAt ON revision (createdAt)",
                """
                CREATE TABLE objectVersion (
                    revision BIGINT NOT NULL REFERENCES revision (id) ON DELETE RESTRICT,
                    kind TEXT NOT NULL CHECK (kind IN (\(kinds))),
                    name TEXT NOT NULL CHECK (length(name) > 0),
                    action TEXT NOT NULL CHECK (action IN ('created', 'configured', 'deleted')),
                    document TEXT,
                    PRIMARY KEY (kind, name, revision),
                    CHECK ((action = 'deleted') = (document IS NULL)))
                """,
                "CREATE INDEX objectVersion_revision ON objectVersion (revision)",
                """
                CREATE TABLE object (
                    kind TEXT NOT NULL CHECK (kind IN (\(kinds))),
                    name TEXT NOT NULL,
                    revision BIGINT NOT NULL REFERENCES revision (id) ON DELETE RESTRICT,
                    createdRevision BIGINT NOT NULL REFERENCES revision (id) ON DELETE RESTRICT,
                    document TEXT NOT NULL,
                    PRIMARY KEY (kind, name))
                """,
                """
                CREATE TABLE event (
                    id BIGSERIAL PRIMARY KEY,
                    time TIMESTAMPTZ NOT NULL,
                    revision BIGINT REFERENCES revision (id) ON DELETE RESTRICT,
                    kind TEXT,
                    name TEXT,
                    type TEXT NOT NULL CHECK (type IN ('Normal', 'Warning')),
                    reason TEXT NOT NULL,
                    message TEXT NOT NULL)
                """,
                "CREATE INDEX event_object ON event (kind, name, id)",
            ]),
            ("v2-artifact-verifications", [
                """
                CREATE TABLE verification (
                    id BIGSERIAL PRIMARY KEY,
                    model TEXT NOT NULL,
                    version TEXT NOT NULL,
                    path TEXT NOT NULL,
                    node TEXT,
                    expected TEXT NOT NULL,
                    actual TEXT,
                    ok BOOLEAN NOT NULL,
                    detail TEXT NOT NULL DEFAULT '',
                    verifiedAt TIMESTAMPTZ NOT NULL)
                """,
                "CREATE INDEX verification_version ON verification (model, version, path, id)",
            ]),
            ("v3-controller-status", [
                """
                CREATE TABLE lease (
                    name TEXT PRIMARY KEY,
                    holder TEXT NOT NULL,
                    epoch BIGINT NOT NULL CHECK (epoch >= 1),
                    acquiredAt TIMESTAMPTZ NOT NULL,
                    renewedAt TIMESTAMPTZ NOT NULL,
                    expiresAt TIMESTAMPTZ NOT NULL)
                """,
                """
                CREATE TABLE status (
                    kind TEXT NOT NULL CHECK (kind IN ('deployment', 'node', 'gateway', 'controller')),
                    name TEXT NOT NULL,
                    document TEXT NOT NULL,
                    updatedAt TIMESTAMPTZ NOT NULL,
                    PRIMARY KEY (kind, name))
                """,
            ]),
            ("v4-node-holds", [
                """
                CREATE TABLE nodeHold (
                    node TEXT PRIMARY KEY,
                    cordoned BOOLEAN NOT NULL,
                    draining BOOLEAN NOT NULL,
                    promote BOOLEAN NOT NULL,
                    author TEXT NOT NULL,
                    reason TEXT NOT NULL DEFAULT '',
                    since TIMESTAMPTZ NOT NULL)
                """,
            ]),
            ("v5-lease-renewals", ["ALTER TABLE lease ADD COLUMN renewals BIGINT NOT NULL DEFAULT 0"]),
            ("v6-staging", [
                """
                CREATE TABLE staging (
                    node TEXT NOT NULL,
                    model TEXT NOT NULL,
                    version TEXT NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('staging', 'staged', 'failed', 'purged')),
                    fingerprint TEXT NOT NULL,
                    bytesDone BIGINT NOT NULL DEFAULT 0,
                    bytesTotal BIGINT NOT NULL DEFAULT 0,
                    bytesFetched BIGINT NOT NULL DEFAULT 0,
                    attempts BIGINT NOT NULL DEFAULT 0,
                    startedAt TIMESTAMPTZ,
                    updatedAt TIMESTAMPTZ NOT NULL,
                    detail TEXT NOT NULL DEFAULT '',
                    PRIMARY KEY (node, model, version))
                """,
            ]),
            ("v7-gpu-holds", [
                """
                CREATE TABLE gpuHold (
                    node TEXT NOT NULL,
                    gpu BIGINT NOT NULL CHECK (gpu >= 0),
                    uuid TEXT NOT NULL DEFAULT '',
                    fault TEXT NOT NULL,
                    detail TEXT NOT NULL,
                    author TEXT NOT NULL,
                    since TIMESTAMPTZ NOT NULL,
                    returnedBy TEXT,
                    returnedAt TIMESTAMPTZ,
                    PRIMARY KEY (node, gpu))
                """,
            ]),
        ]
    }
}
