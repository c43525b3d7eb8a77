//! The indexes that keep the coordinator's decisions independent of the swarm's size: idle
//! agents by capability (most trusted first), and callers waiting for an agent, by the
//! capability their task needs (highest priority, then oldest, first).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use recovery_core::{AgentId, Priority, TaskId};
use tokio::sync::oneshot;

use super::RunTicket;

/// What an agent or a task is matched on: a capability, or none (any agent will do).
pub(crate) type Key = Option<String>;

/// A map with a fixed, fast hasher: the same operations iterate in the same order on every run,
/// so a simulation replays exactly. The keys are ids the coordinator made itself, so there are
/// no hostile keys to defend against.
pub(crate) type Map<K, V> = HashMap<K, V, rustc_hash::FxBuildHasher>;

/// Trust scores are kept in hundredths (they move by 0.01, 0.05 and 0.2 from 0.5), so the most
/// trusted idle agent is the top of one of 101 buckets.
const BUCKETS: usize = 101;

fn bucket_of(trust: f64) -> usize {
    (trust.clamp(0.0, 1.0) * 100.0).round() as usize
}

/// The idle agents of one key, by trust bucket: inserting, removing and finding the most
/// trusted take the same time whatever the number of agents.
#[derive(Debug)]
struct Buckets {
    buckets: Vec<Vec<AgentId>>,
    /// Where each agent is: bucket and index.
    at: Map<AgentId, (usize, usize)>,
    /// Bit `b` set when bucket `b` is not empty.
    full: u128,
}

impl Default for Buckets {
    fn default() -> Self {
        Self {
            buckets: vec![Vec::new(); BUCKETS],
            at: Map::default(),
            full: 0,
        }
    }
}

impl Buckets {
    fn insert(&mut self, agent: AgentId, bucket: usize) {
        let list = &mut self.buckets[bucket];
        self.at.insert(agent, (bucket, list.len()));
        list.push(agent);
        self.full |= 1 << bucket;
    }

    fn remove(&mut self, agent: AgentId) {
        let Some((bucket, index)) = self.at.remove(&agent) else {
            return;
        };
        let list = &mut self.buckets[bucket];
        list.swap_remove(index);
        if let Some(&moved) = list.get(index) {
            self.at.insert(moved, (bucket, index));
        }
        if list.is_empty() {
            self.full &= !(1 << bucket);
        }
    }

    fn best(&self) -> Option<AgentId> {
        if self.full == 0 {
            return None;
        }
        let top = 127 - self.full.leading_zeros() as usize;
        self.buckets[top].last().copied()
    }

    fn is_empty(&self) -> bool {
        self.full == 0
    }
}

/// Idle agents, by every key they serve: `None` and each of their capabilities.
#[derive(Debug, Default)]
pub(crate) struct IdlePool {
    by_key: Map<Key, Buckets>,
    /// Each idle agent's bucket.
    members: Map<AgentId, usize>,
    /// The keys each agent serves, made once (capabilities do not change).
    keys: Map<AgentId, Arc<[Key]>>,
}

impl IdlePool {
    /// Add an idle agent (or move it to the bucket of its trust).
    pub(crate) fn insert<'a>(
        &mut self,
        agent: AgentId,
        trust: f64,
        capabilities: impl IntoIterator<Item = &'a String>,
    ) {
        self.remove(agent);
        let keys = Arc::clone(self.keys.entry(agent).or_insert_with(|| {
            std::iter::once(None)
                .chain(capabilities.into_iter().cloned().map(Some))
                .collect()
        }));
        let bucket = bucket_of(trust);
        for key in keys.iter() {
            self.by_key
                .entry(key.clone())
                .or_default()
                .insert(agent, bucket);
        }
        self.members.insert(agent, bucket);
    }

    /// Remove an agent (whether it was idle or not).
    pub(crate) fn remove(&mut self, agent: AgentId) -> bool {
        if self.members.remove(&agent).is_none() {
            return false;
        }
        if let Some(keys) = self.keys.get(&agent) {
            for key in keys.iter() {
                if let Some(b) = self.by_key.get_mut(key) {
                    b.remove(agent);
                    if b.is_empty() {
                        self.by_key.remove(key);
                    }
                }
            }
        }
        true
    }

    /// Forget an agent that left the swarm.
    pub(crate) fn forget(&mut self, agent: AgentId) {
        self.remove(agent);
        self.keys.remove(&agent);
    }

    /// Whether `agent` is idle.
    pub(crate) fn contains(&self, agent: AgentId) -> bool {
        self.members.contains_key(&agent)
    }

    /// The most trusted idle agent that serves `key`.
    pub(crate) fn best(&self, key: &Key) -> Option<AgentId> {
        self.by_key.get(key).and_then(Buckets::best)
    }

    /// How many agents are idle.
    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    /// Every idle agent.
    pub(crate) fn agents(&self) -> impl Iterator<Item = AgentId> + '_ {
        self.members.keys().copied()
    }

    pub(crate) fn clear(&mut self) {
        self.by_key.clear();
        self.members.clear();
        self.keys.clear();
    }
}

/// How many healthy (idle or busy) agents serve each key, so that "can any agent ever run
/// this?" is one lookup.
#[derive(Debug, Default)]
pub(crate) struct Healthy {
    by_key: Map<Key, usize>,
}

impl Healthy {
    /// An agent with `capabilities` became healthy (`delta` 1) or stopped being so (-1).
    pub(crate) fn change<'a>(
        &mut self,
        capabilities: impl IntoIterator<Item = &'a String>,
        up: bool,
    ) {
        let keys = std::iter::once(None).chain(capabilities.into_iter().cloned().map(Some));
        for key in keys {
            let n = self.by_key.entry(key.clone()).or_default();
            if up {
                *n += 1;
            } else {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.by_key.remove(&key);
                }
            }
        }
    }

    /// Whether some healthy agent serves `key`.
    pub(crate) fn any(&self, key: &Key) -> bool {
        self.by_key.get(key).is_some_and(|n| *n > 0)
    }

    /// How many healthy agents serve `key`.
    pub(crate) fn count(&self, key: &Key) -> usize {
        self.by_key.get(key).copied().unwrap_or(0)
    }

    pub(crate) fn clear(&mut self) {
        self.by_key.clear();
    }
}

/// A caller's place in the queue.
pub(crate) type WaiterId = u64;

/// What a waiting caller is told: here is a run, or look again (its task changed).
#[derive(Debug)]
pub(crate) enum Wake {
    /// A run started for the caller's task; it is the caller's to carry out.
    Run(Box<RunTicket>),
    /// The task changed (it finished, another caller runs it, the state was restored): ask
    /// again.
    Again,
}

/// One waiting caller.
#[derive(Debug)]
pub(crate) struct Waiter {
    pub(crate) task: TaskId,
    pub(crate) key: Key,
    order: (Reverse<Priority>, WaiterId),
    pub(crate) tx: oneshot::Sender<Wake>,
}

/// Callers waiting for an agent (or a run slot), by the key of their task.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    next: WaiterId,
    by_key: Map<Key, BTreeMap<(Reverse<Priority>, WaiterId), ()>>,
    waiters: Map<WaiterId, Waiter>,
    by_task: Map<TaskId, BTreeSet<WaiterId>>,
}

impl Waiters {
    /// Queue a caller for `task`; it learns through the returned receiver.
    pub(crate) fn push(
        &mut self,
        task: TaskId,
        key: Key,
        priority: Priority,
    ) -> (WaiterId, oneshot::Receiver<Wake>) {
        let id = self.next;
        self.next += 1;
        let (tx, rx) = oneshot::channel();
        let order = (Reverse(priority), id);
        self.by_key
            .entry(key.clone())
            .or_default()
            .insert(order, ());
        self.by_task.entry(task).or_default().insert(id);
        self.waiters.insert(
            id,
            Waiter {
                task,
                key,
                order,
                tx,
            },
        );
        (id, rx)
    }

    /// Take a waiter out of the queue.
    pub(crate) fn remove(&mut self, id: WaiterId) -> Option<Waiter> {
        let w = self.waiters.remove(&id)?;
        if let Some(q) = self.by_key.get_mut(&w.key) {
            q.remove(&w.order);
            if q.is_empty() {
                self.by_key.remove(&w.key);
            }
        }
        if let Some(ids) = self.by_task.get_mut(&w.task) {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_task.remove(&w.task);
            }
        }
        Some(w)
    }

    /// The first waiter (highest priority, then oldest) among the keys that `served` says have
    /// an agent for them.
    pub(crate) fn first_served(&self, mut served: impl FnMut(&Key) -> bool) -> Option<WaiterId> {
        self.by_key
            .iter()
            .filter(|(key, _)| served(key))
            .filter_map(|(_, q)| q.keys().next())
            .min()
            .map(|(_, id)| *id)
    }

    /// The waiters of `task`.
    pub(crate) fn of_task(&self, task: TaskId) -> Vec<WaiterId> {
        self.by_task
            .get(&task)
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The tasks with waiters.
    pub(crate) fn tasks(&self) -> impl Iterator<Item = TaskId> + '_ {
        self.by_task.keys().copied()
    }

    /// Every waiter.
    pub(crate) fn ids(&self) -> Vec<WaiterId> {
        self.waiters.keys().copied().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.waiters.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_trusted_idle_agent_of_a_key_comes_first() {
        let mut pool = IdlePool::default();
        let (a, b, c) = (
            AgentId::from_u128(1),
            AgentId::from_u128(2),
            AgentId::from_u128(3),
        );
        let gpu = ["gpu".to_owned()];
        pool.insert(a, 0.5, &gpu);
        pool.insert(b, 0.9, &[]);
        pool.insert(c, 0.7, &gpu);
        assert_eq!(pool.best(&None), Some(b));
        assert_eq!(pool.best(&Some("gpu".into())), Some(c));
        assert!(pool.remove(c));
        assert_eq!(pool.best(&Some("gpu".into())), Some(a));
        pool.insert(a, 0.1, &gpu);
        assert_eq!(pool.best(&Some("gpu".into())), Some(a));
        assert_eq!(pool.len(), 2);
        assert_eq!(pool.best(&Some("tpu".into())), None);
    }

    #[test]
    fn waiters_are_served_by_priority_then_age() {
        let mut w = Waiters::default();
        let t = |n| TaskId::from_u128(n);
        let (low, _r1) = w.push(t(1), None, Priority::Low);
        let (high, _r2) = w.push(t(2), Some("gpu".into()), Priority::High);
        let (normal, _r3) = w.push(t(3), None, Priority::Normal);
        assert_eq!(w.first_served(|_| true), Some(high));
        assert_eq!(w.first_served(|k| k.is_none()), Some(normal));
        w.remove(normal);
        assert_eq!(w.first_served(|k| k.is_none()), Some(low));
        assert_eq!(w.of_task(t(2)), [high]);
        assert_eq!(w.len(), 2);
    }
}
