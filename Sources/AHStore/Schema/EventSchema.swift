/// The access point's copy of leader sessions and their events (the uplink, docs/protocol.md
/// "Event streams"). One row per (session, seq), so a batch resent after a lost ack is
/// stored once; `sessions.last_seq` is the highest seq stored (they are gap-free from 1).
enum EventSchema {
    static let sessionsV4 = """
        CREATE TABLE sessions (
            id          TEXT PRIMARY KEY NOT NULL,
            leader      TEXT NOT NULL,             -- the executor that sent its first event: the owner
            started_at  INTEGER NOT NULL,          -- unix ms of that first contact
            updated_at  INTEGER NOT NULL,          -- unix ms of the last stored batch or end
            last_seq    INTEGER NOT NULL DEFAULT 0,
            ended_at    INTEGER                    -- set by the leader's events-end, cleared when it sends again
        );

        CREATE TABLE session_events (
            session  TEXT NOT NULL,
            seq      INTEGER NOT NULL,
            type     TEXT NOT NULL,
            ts       TEXT NOT NULL,
            data     TEXT NOT NULL,                -- the event's JSON object as the leader sent it
            PRIMARY KEY (session, seq)
        ) WITHOUT ROWID;
        CREATE INDEX session_events_by_type ON session_events (session, type, seq);
        """
}
