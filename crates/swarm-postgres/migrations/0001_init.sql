-- swarm-postgres schema, version 1. Applied by swarm_postgres::migrate, in one transaction,
-- under a transaction-level advisory lock, so that instances starting at once do not race.
-- Every table is keyed by `swarm`: several swarms (and tests) share one database.

-- Checkpoints: the bytes of the file format (header and payload, as recovery-checkpoint's
-- FileStore writes them), numbered per store.
CREATE TABLE swarm.checkpoints (
    store      text        NOT NULL,
    sequence   bigint      NOT NULL,
    id         uuid        NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    data       bytea       NOT NULL,
    PRIMARY KEY (store, sequence)
);

CREATE TABLE swarm.checkpoint_sequences (
    store text   PRIMARY KEY,
    last  bigint NOT NULL
);

-- The instances of a swarm. Each holds a session advisory lock on (lock_space, lock_key) for as
-- long as its process lives: a free lock means a dead instance.
CREATE TABLE swarm.instances (
    id           uuid        PRIMARY KEY,
    swarm        text        NOT NULL,
    name         text        NOT NULL,
    lock_key     integer     NOT NULL UNIQUE,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    heartbeat_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX instances_by_swarm ON swarm.instances (swarm);

-- Shared tasks. `epoch` grows with every claim: it is the fencing token every write of a holder
-- checks in the same statement.
CREATE TABLE swarm.tasks (
    id          uuid        PRIMARY KEY,
    swarm       text        NOT NULL,
    seq         bigserial   NOT NULL,
    name        text        NOT NULL,
    priority    smallint    NOT NULL,
    capability  text,
    payload     bytea       NOT NULL,
    state       text        NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'claimed', 'completed', 'failed')),
    epoch       bigint      NOT NULL DEFAULT 0,
    owner       uuid,
    lease_until timestamptz,
    retries     integer     NOT NULL DEFAULT 0,
    tried       text[]      NOT NULL DEFAULT '{}',
    last_error  text,
    output      bytea,
    reason      text,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz
);

CREATE INDEX tasks_pending ON swarm.tasks (swarm, priority DESC, seq) WHERE state = 'pending';
CREATE INDEX tasks_claimed ON swarm.tasks (swarm, lease_until) WHERE state = 'claimed';
CREATE INDEX tasks_by_owner ON swarm.tasks (owner) WHERE state = 'claimed';

-- What happened to each task, appended in the same statement as the change: one row per claim
-- (with its epoch) and one per applied completion or failure.
CREATE TABLE swarm.task_log (
    task     uuid        NOT NULL,
    epoch    bigint      NOT NULL,
    instance uuid        NOT NULL,
    kind     text        NOT NULL CHECK (kind IN ('claimed', 'completed', 'failed')),
    at       timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX task_log_by_task ON swarm.task_log (task, at);

-- Each recovery round, written only by the holder of the task's current epoch.
CREATE TABLE swarm.recovery_log (
    task       uuid        NOT NULL,
    epoch      bigint      NOT NULL,
    instance   uuid        NOT NULL,
    round      integer     NOT NULL,
    -- Re-runs made when the round started, and when it ended (null: it never ended here).
    retries       integer     NOT NULL,
    error_kind    text        NOT NULL,
    action        text,
    success       boolean,
    retries_after integer,
    at         timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX recovery_log_by_task ON swarm.recovery_log (task, at);

-- Writes the fence refused: a holder whose epoch was no longer current.
CREATE TABLE swarm.fence_rejections (
    swarm    text        NOT NULL,
    instance uuid        NOT NULL,
    task     uuid        NOT NULL,
    epoch    bigint      NOT NULL,
    write    text        NOT NULL,
    at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
