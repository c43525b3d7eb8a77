//! Every statement of the shared swarm, in one place. Every write a holder makes checks its
//! epoch, its instance id and the task's state in the same statement (the fence); every
//! deadline is computed with the server's clock (`clock_timestamp()`), never an instance's.

/// The advisory-lock space of instance locks (`pg_advisory_lock(LOCK_SPACE, lock_key)`).
pub(crate) const LOCK_SPACE: i32 = 0x5357; // "SW"

/// The notification channel: the payload is the swarm's name.
pub(crate) const CHANNEL: &str = "swarm_tasks";

pub(crate) const TRY_LOCK: &str = "SELECT pg_try_advisory_lock($1, $2)";

pub(crate) const REGISTER: &str =
    "INSERT INTO swarm.instances (id, swarm, name, lock_key) VALUES ($1, $2, $3, $4)";

pub(crate) const HEARTBEAT: &str =
    "UPDATE swarm.instances SET heartbeat_at = clock_timestamp() WHERE id = $1";

/// `$1` swarm, `$2` ids, `$3` names, `$4` priorities, `$5` capabilities, `$6` payloads.
pub(crate) const SUBMIT: &str = "
    WITH ins AS (
        INSERT INTO swarm.tasks (id, swarm, name, priority, capability, payload)
        SELECT i.id, $1, i.name, i.priority, i.capability, i.payload
        FROM unnest($2::uuid[], $3::text[], $4::smallint[], $5::text[], $6::bytea[])
             AS i(id, name, priority, capability, payload)
        RETURNING id)
    SELECT count(*), pg_notify('swarm_tasks', $1) FROM ins";

/// `$1` swarm, `$2` capabilities the instance's agents have, `$3` how many, `$4` instance,
/// `$5` lease in milliseconds.
pub(crate) const CLAIM: &str = "
    WITH c AS (
        SELECT id FROM swarm.tasks
        WHERE swarm = $1 AND state = 'pending'
          AND (capability IS NULL OR capability = ANY($2))
        ORDER BY priority DESC, seq
        LIMIT $3
        FOR UPDATE SKIP LOCKED),
    claimed AS (
        UPDATE swarm.tasks t
        SET state = 'claimed', owner = $4, epoch = t.epoch + 1,
            lease_until = clock_timestamp() + $5 * interval '1 millisecond'
        FROM c WHERE t.id = c.id
        RETURNING t.id, t.epoch, t.name, t.priority, t.capability, t.payload, t.retries, t.tried),
    log AS (
        INSERT INTO swarm.task_log (task, epoch, instance, kind)
        SELECT id, epoch, $4, 'claimed' FROM claimed)
    SELECT * FROM claimed";

/// `$1` ids, `$2` epochs, `$3` instance, `$4` lease in milliseconds. Only a lease that has not
/// expired is renewed.
pub(crate) const RENEW: &str = "
    UPDATE swarm.tasks t
    SET lease_until = clock_timestamp() + $4 * interval '1 millisecond'
    FROM unnest($1::uuid[], $2::bigint[]) AS l(id, epoch)
    WHERE t.id = l.id AND t.epoch = l.epoch AND t.owner = $3
      AND t.state = 'claimed' AND t.lease_until >= clock_timestamp()
    RETURNING t.id";

/// `$1` ids, `$2` epochs, `$3` outputs, `$4` instance.
pub(crate) const COMPLETE: &str = "
    WITH i AS (
        SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bytea[]) AS i(id, epoch, output)),
    done AS (
        UPDATE swarm.tasks t
        SET state = 'completed', output = i.output, owner = NULL, lease_until = NULL,
            finished_at = clock_timestamp()
        FROM i WHERE t.id = i.id AND t.epoch = i.epoch AND t.owner = $4 AND t.state = 'claimed'
        RETURNING t.id, t.epoch),
    log AS (
        INSERT INTO swarm.task_log (task, epoch, instance, kind)
        SELECT id, epoch, $4, 'completed' FROM done)
    SELECT id FROM done";

/// `$1` id, `$2` epoch, `$3` instance, `$4` reason.
pub(crate) const FAIL: &str = "
    WITH done AS (
        UPDATE swarm.tasks
        SET state = 'failed', reason = $4, owner = NULL, lease_until = NULL,
            finished_at = clock_timestamp()
        WHERE id = $1 AND epoch = $2 AND owner = $3 AND state = 'claimed'
        RETURNING id, epoch),
    log AS (
        INSERT INTO swarm.task_log (task, epoch, instance, kind)
        SELECT id, epoch, $3, 'failed' FROM done)
    SELECT count(*) FROM done";

/// Give a held task back (the instance cannot run it now): `$1` id, `$2` epoch, `$3` instance.
pub(crate) const RELEASE: &str = "
    WITH r AS (
        UPDATE swarm.tasks SET state = 'pending', owner = NULL, lease_until = NULL
        WHERE id = $1 AND epoch = $2 AND owner = $3 AND state = 'claimed'
        RETURNING swarm)
    SELECT count(*), pg_notify('swarm_tasks', (SELECT swarm FROM r LIMIT 1)) FROM r";

/// A recovery round starts: `$1` id, `$2` epoch, `$3` instance, `$4` round, `$5` retries,
/// `$6` error kind, `$7` error. Only the holder of a live lease may start one.
pub(crate) const ROUND_START: &str = "
    WITH t AS (
        UPDATE swarm.tasks SET retries = $5, last_error = $7
        WHERE id = $1 AND epoch = $2 AND owner = $3 AND state = 'claimed'
          AND lease_until >= clock_timestamp()
        RETURNING id),
    log AS (
        INSERT INTO swarm.recovery_log (task, epoch, instance, round, retries, error_kind)
        SELECT id, $2, $3, $4, $5, $6 FROM t)
    SELECT count(*) FROM t";

/// A recovery round ended: `$1` id, `$2` epoch, `$3` instance, `$4` round, `$5` action,
/// `$6` success, `$7` the round as a `kind -> action` line, `$8` re-runs made so far.
pub(crate) const ROUND_END: &str = "
    WITH t AS (
        UPDATE swarm.tasks SET tried = array_append(tried, $7), retries = $8
        WHERE id = $1 AND epoch = $2 AND owner = $3 AND state = 'claimed'
        RETURNING id),
    log AS (
        UPDATE swarm.recovery_log SET action = $5, success = $6, retries_after = $8
        WHERE task = $1 AND epoch = $2 AND instance = $3 AND round = $4
          AND EXISTS (SELECT 1 FROM t))
    SELECT count(*) FROM t";

/// `$1` swarm, `$2` instance, `$3` tasks, `$4` epochs, `$5` what was written.
pub(crate) const REJECTED: &str = "
    INSERT INTO swarm.fence_rejections (swarm, instance, task, epoch, write)
    SELECT $1, $2, r.task, r.epoch, $5 FROM unnest($3::uuid[], $4::bigint[]) AS r(task, epoch)";

/// Dead instances (their advisory lock is free) leave; their tasks and every expired lease go
/// back to pending, and the instances are told. `$1` swarm, `$2` lock space. Returns (tasks
/// freed, instances removed).
pub(crate) const REAP: &str = "
    WITH dead AS (
        SELECT i.id FROM swarm.instances i
        WHERE i.swarm = $1 AND NOT EXISTS (
            SELECT 1 FROM pg_locks l
            WHERE l.locktype = 'advisory' AND l.classid = $2::integer::oid
              AND l.objid = i.lock_key::oid AND l.objsubid = 2 AND l.granted)),
    freed AS (
        UPDATE swarm.tasks t SET state = 'pending', owner = NULL, lease_until = NULL
        WHERE t.swarm = $1 AND t.state = 'claimed'
          AND (t.owner IN (SELECT id FROM dead) OR t.lease_until < clock_timestamp())
        RETURNING t.id),
    gone AS (
        DELETE FROM swarm.instances WHERE id IN (SELECT id FROM dead) RETURNING id),
    counts AS (SELECT (SELECT count(*) FROM freed) AS freed, (SELECT count(*) FROM gone) AS gone)
    SELECT freed, gone, CASE WHEN freed > 0 THEN pg_notify('swarm_tasks', $1) END FROM counts";

/// `$1` swarm, `$2` instance: leave, giving held tasks back.
pub(crate) const LEAVE: &str = "
    WITH r AS (
        UPDATE swarm.tasks SET state = 'pending', owner = NULL, lease_until = NULL
        WHERE swarm = $1 AND owner = $2 AND state = 'claimed' RETURNING id),
    gone AS (DELETE FROM swarm.instances WHERE id = $2 RETURNING id)
    SELECT (SELECT count(*) FROM r), pg_notify('swarm_tasks', $1)";

/// `$1` id: a task's state, output and reason.
pub(crate) const OUTCOME: &str = "SELECT state, output, reason FROM swarm.tasks WHERE id = $1";
