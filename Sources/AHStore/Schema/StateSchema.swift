/// The schema of the access point's state file, as an ordered list of migrations.
///
/// Conventions: timestamps are INTEGER unix milliseconds (UTC); tag maps are JSON objects
/// with sorted keys in TEXT columns; hashes are raw BLOBs. Table and column names are plain
/// SQL so that the PostgreSQL backend can mirror them.
public enum StateSchema {
    public static let migrations: [Migration] = [
        Migration(version: 1, summary: "join tokens, executors, identity history", sql: identityV1),
        Migration(version: 2, summary: "executor facts from Hello, tunnel audit", sql: registryV2),
        Migration(version: 3, summary: "time indexes for audit retention", sql: retentionV3),
        Migration(version: 4, summary: "leader sessions and their events", sql: EventSchema.sessionsV4),
    ]

    /// The schema version this build writes.
    public static var latestVersion: Int { migrations.last?.version ?? 0 }

    static let identityV1 = """
        CREATE TABLE join_tokens (
            id          TEXT PRIMARY KEY NOT NULL,      -- short public id, safe to print and log
            token_hash  BLOB NOT NULL UNIQUE,           -- SHA-256 of the secret; the secret is never stored
            created_at  INTEGER NOT NULL,
            expires_at  INTEGER NOT NULL,
            uses_left   INTEGER NOT NULL CHECK (uses_left >= 0),
            tags_json   TEXT NOT NULL DEFAULT '{}',     -- bound to every executor enrolled with it
            revoked     INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1))
        );

        CREATE TABLE executors (
            name               TEXT PRIMARY KEY NOT NULL,
            spiffe_id          TEXT NOT NULL,
            public_key_sha256  BLOB NOT NULL,           -- binds the name to one key until revoked
            tags_json          TEXT NOT NULL DEFAULT '{}',
            cert_serial        TEXT,
            cert_not_after     INTEGER,
            enrolled_at        INTEGER NOT NULL,
            last_seen          INTEGER,
            revoked_at         INTEGER,                 -- NULL while the identity is valid
            revoke_reason      TEXT
        );

        -- Append-only audit of identity decisions. No foreign key to executors: refused
        -- attempts name executors that do not exist, and history outlives re-enrollment.
        CREATE TABLE identity_history (
            id             INTEGER PRIMARY KEY AUTOINCREMENT,
            at             INTEGER NOT NULL,
            kind           TEXT NOT NULL,
            executor_name  TEXT,
            spiffe_id      TEXT,
            detail         TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX identity_history_by_executor ON identity_history (executor_name, id);
        """

    static let registryV2 = """
        -- The last Hello of each executor (OS, arch, host keys...), kept across restarts of
        -- the access point so that listings and `ah ssh-config` work while it is offline.
        CREATE TABLE executor_facts (
            name         TEXT PRIMARY KEY NOT NULL,
            facts_json   TEXT NOT NULL,
            reported_at  INTEGER NOT NULL
        );

        -- Every tunnel attempt, allowed or not. Rows are inserted at the decision and
        -- completed when the tunnel ends; `result` is 'open' while it runs.
        CREATE TABLE tunnels (
            id              INTEGER PRIMARY KEY AUTOINCREMENT,
            subject         TEXT,                      -- NULL when no valid token was shown
            executor_name   TEXT NOT NULL,
            port            INTEGER NOT NULL,
            remote          TEXT NOT NULL DEFAULT '',  -- the client's address
            started_at      INTEGER NOT NULL,
            ended_at        INTEGER,
            bytes_up        INTEGER NOT NULL DEFAULT 0, -- client → executor
            bytes_down      INTEGER NOT NULL DEFAULT 0, -- executor → client
            result          TEXT NOT NULL,             -- open, closed, aborted, or the HTTP status of a refusal
            detail          TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX tunnels_by_executor ON tunnels (executor_name, id);
        """

    /// Audit retention deletes the oldest rows in small batches; without these indexes each
    /// batch would scan the whole table to find them. (Facts rows changed shape in the same
    /// release without a migration: old rows keep their shape and decode as such.)
    static let retentionV3 = """
        CREATE INDEX tunnels_by_start ON tunnels (started_at);
        CREATE INDEX identity_history_by_time ON identity_history (at);
        """
}
