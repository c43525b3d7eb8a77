//! Properties of the codec, the file format and the strategy; a counting allocator measures
//! what decoding untrusted bytes allocates.
#![allow(unsafe_code)] // the counting global allocator below

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant, SystemTime};

use common::{Agent, AgentStatus, Event, EventKind, SwarmState, Target, Task, TaskState};
use proptest::prelude::*;
use recovery_checkpoint::{
    Checkpoint, CheckpointError, CheckpointRecoveryStrategy, Checkpointable, Codec, format,
};
use recovery_core::{AgentId, Priority, TaskId};
use uuid::Uuid;

// ---- counting allocator (per thread, only while measuring) ----

struct Counting;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
    static TOTAL: Cell<usize> = const { Cell::new(0) };
}

fn on_alloc(size: usize) {
    let _ = TRACKING.try_with(|t| {
        if t.get() {
            LIVE.with(|l| {
                let live = l.get() + size;
                l.set(live);
                PEAK.with(|p| p.set(p.get().max(live)));
            });
            TOTAL.with(|x| x.set(x.get() + size));
        }
    });
}

fn on_dealloc(size: usize) {
    let _ = TRACKING.try_with(|t| {
        if t.get() {
            LIVE.with(|l| l.set(l.get().saturating_sub(size)));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        on_alloc(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        on_dealloc(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        on_alloc(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        on_dealloc(layout.size());
        on_alloc(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Run `f` on this thread; return its result, the peak bytes live and the total bytes
/// allocated while it ran.
fn measure<R>(f: impl FnOnce() -> R) -> (R, usize, usize) {
    LIVE.with(|l| l.set(0));
    PEAK.with(|p| p.set(0));
    TOTAL.with(|t| t.set(0));
    TRACKING.with(|t| t.set(true));
    let r = f();
    TRACKING.with(|t| t.set(false));
    (r, PEAK.with(Cell::get), TOTAL.with(Cell::get))
}

/// What decoding `n` untrusted bytes may allocate at most: a small multiple of `n`, plus a
/// fixed allowance for error messages and the like.
fn allowance(n: usize) -> usize {
    32 * n + 16 * 1024
}

fn decode_measured(bytes: &[u8]) -> (Result<SwarmState, CheckpointError>, usize, usize) {
    measure(|| Codec::CURRENT.decode::<SwarmState>(bytes))
}

fn file_of(state: &SwarmState) -> Vec<u8> {
    format::encode(&Checkpoint {
        id: Uuid::new_v4(),
        sequence: 5,
        created_at: format::stored_time(SystemTime::now()),
        codec: Codec::CURRENT,
        payload: Codec::CURRENT.encode(state).unwrap(),
    })
    .unwrap()
}

proptest! {
    #[test]
    fn prop_encode_then_decode_returns_an_equal_state(state in common::swarm_state()) {
        let bytes = Codec::CURRENT.encode(&state).unwrap();
        let back: SwarmState = Codec::CURRENT.decode(&bytes).unwrap();
        prop_assert_eq!(back, state);
    }

    #[test]
    fn prop_the_file_format_round_trips(state in common::swarm_state(), sequence in any::<u64>()) {
        let checkpoint = Checkpoint {
            id: Uuid::new_v4(),
            sequence,
            created_at: format::stored_time(SystemTime::now()),
            codec: Codec::CURRENT,
            payload: Codec::CURRENT.encode(&state).unwrap(),
        };
        let file = format::encode(&checkpoint).unwrap();
        let back = format::decode(&file).unwrap();
        prop_assert_eq!(&back, &checkpoint);
        prop_assert_eq!(Codec::CURRENT.decode::<SwarmState>(&back.payload).unwrap(), state);
    }

    #[test]
    fn prop_snapshot_restore_snapshot_gives_equal_snapshots(
        state in common::swarm_state(),
        other in common::swarm_state(),
    ) {
        common::runtime().block_on(async {
            let strategy = CheckpointRecoveryStrategy::default();
            let target = Target::new(state.clone());
            let first = target.snapshot().await.unwrap();
            let id = strategy.create_checkpoint(&target).await.unwrap();
            target.set(other);
            let report = strategy.restore_from_checkpoint(&target, None).await.unwrap();
            prop_assert_eq!(report.checkpoint_id, id);
            let second = target.snapshot().await.unwrap();
            prop_assert_eq!(&first, &second);
            prop_assert_eq!(second, state);
            Ok(())
        })?;
    }

    #[test]
    fn prop_any_flipped_byte_is_detected(
        state in common::swarm_state(),
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let mut file = file_of(&state);
        let i = at.index(file.len());
        file[i] ^= xor;
        prop_assert!(format::decode(&file).is_err(), "flip at {} of {} not detected", i, file.len());
    }

    #[test]
    fn prop_any_truncation_is_detected(state in common::swarm_state(), at in any::<prop::sample::Index>()) {
        let file = file_of(&state);
        let cut = at.index(file.len());
        let err = format::decode(&file[..cut]).unwrap_err();
        prop_assert!(err.is_corruption(), "{}", err);
    }

    #[test]
    fn prop_arbitrary_bytes_never_panic_and_allocate_little(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let (result, peak, total) = decode_measured(&bytes);
        prop_assert!(peak <= allowance(bytes.len()), "peak {} for {} bytes", peak, bytes.len());
        prop_assert!(total <= allowance(bytes.len()), "total {} for {} bytes", total, bytes.len());
        if let Ok(state) = result {
            // If garbage happens to decode, it is a state that encodes back to the same bytes.
            prop_assert_eq!(&Codec::CURRENT.encode(&state).unwrap(), &bytes);
        }
        // The same bytes as a whole file: refused without panicking.
        prop_assert!(format::decode(&bytes).is_err());
    }

    #[test]
    fn prop_damaged_valid_payloads_never_panic_and_allocate_little(
        state in common::swarm_state(),
        damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = Codec::CURRENT.encode(&state).unwrap();
        if bytes.is_empty() {
            return Ok(());
        }
        for (at, value) in damage {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let (_result, peak, total) = decode_measured(&bytes);
        prop_assert!(peak <= allowance(bytes.len()) + 8 * state_heap_estimate(&state), "peak {} for {} bytes", peak, bytes.len());
        prop_assert!(total <= 2 * allowance(bytes.len()) + 16 * state_heap_estimate(&state), "total {} for {} bytes", total, bytes.len());
    }

    #[test]
    fn prop_forged_collection_lengths_are_refused_quickly(
        field in any::<prop::sample::Index>(),
        forged in (1u64 << 32)..=u64::MAX,
    ) {
        let fields = collection_fields();
        let (name, empty, _) = &fields[field.index(fields.len())];
        check_forged(name, empty, forged)?;
    }
}

/// A rough size of what a decoded state legitimately holds on the heap (a damaged payload may
/// still decode most of it before failing).
fn state_heap_estimate(state: &SwarmState) -> usize {
    let bytes = Codec::CURRENT.encode(state).unwrap().len();
    // In memory, each encoded byte can become several: maps, strings and vectors carry
    // capacity and headers.
    bytes * 8 + (state.agents.len() + state.tasks.len() + state.recent_events.len()) * 256 + 4096
}

// ---- forged length prefixes in every collection field ----

fn one_agent(edit: impl FnOnce(&mut Agent)) -> SwarmState {
    let id = AgentId::from_u128(77);
    let mut agent = Agent {
        id,
        name: String::new(),
        status: AgentStatus::Idle,
        capabilities: Vec::new(),
        current_task: None,
        trust: 0.5,
    };
    edit(&mut agent);
    let mut s = SwarmState::empty();
    s.agents.insert(id, agent);
    s
}

fn one_task(edit: impl FnOnce(&mut Task)) -> SwarmState {
    let id = TaskId::from_u128(88);
    let mut task = Task {
        id,
        description: String::new(),
        priority: Priority::Normal,
        state: TaskState::Pending,
        dependencies: Vec::new(),
        deadline_ms: None,
        tags: Default::default(),
    };
    edit(&mut task);
    let mut s = SwarmState::empty();
    s.tasks.insert(id, task);
    s
}

fn one_event(kind: EventKind) -> SwarmState {
    let mut s = SwarmState::empty();
    s.recent_events.push(Event { at_ms: 1, kind });
    s
}

type Field = (&'static str, SwarmState, SwarmState);

/// For every collection (and string) field: a state where it is empty, and one where it holds
/// one element. Their encodings first differ at that field's length prefix.
fn collection_fields() -> Vec<Field> {
    let with = |f: fn(&mut SwarmState)| {
        let mut s = SwarmState::empty();
        f(&mut s);
        s
    };
    vec![
        ("agents", SwarmState::empty(), one_agent(|_| {})),
        (
            "agent.name",
            one_agent(|_| {}),
            one_agent(|a| a.name.push('x')),
        ),
        (
            "agent.capabilities",
            one_agent(|_| {}),
            one_agent(|a| a.capabilities.push(String::new())),
        ),
        (
            "agent.status.reason",
            one_agent(|a| {
                a.status = AgentStatus::Failed {
                    reason: String::new(),
                }
            }),
            one_agent(|a| a.status = AgentStatus::Failed { reason: "x".into() }),
        ),
        ("tasks", SwarmState::empty(), one_task(|_| {})),
        (
            "task.description",
            one_task(|_| {}),
            one_task(|t| t.description.push('x')),
        ),
        (
            "task.dependencies",
            one_task(|_| {}),
            one_task(|t| t.dependencies.push(TaskId::from_u128(1))),
        ),
        (
            "task.tags",
            one_task(|_| {}),
            one_task(|t| {
                t.tags.insert(String::new());
            }),
        ),
        (
            "task.state.output",
            one_task(|t| t.state = TaskState::Completed { output: Vec::new() }),
            one_task(|t| t.state = TaskState::Completed { output: vec![1] }),
        ),
        (
            "task.state.error",
            one_task(|t| {
                t.state = TaskState::Failed {
                    error: String::new(),
                    attempts: 0,
                }
            }),
            one_task(|t| {
                t.state = TaskState::Failed {
                    error: "x".into(),
                    attempts: 0,
                }
            }),
        ),
        (
            "assignments",
            SwarmState::empty(),
            with(|s| {
                s.assignments
                    .insert(TaskId::from_u128(1), AgentId::from_u128(2));
            }),
        ),
        (
            "config.name",
            SwarmState::empty(),
            with(|s| s.config.name.push('x')),
        ),
        (
            "config.features",
            SwarmState::empty(),
            with(|s| s.config.features.push((String::new(), true))),
        ),
        (
            "trust_scores",
            SwarmState::empty(),
            with(|s| {
                s.trust_scores.insert(AgentId::from_u128(2), 0.5);
            }),
        ),
        (
            "recent_events",
            SwarmState::empty(),
            one_event(EventKind::Custom(String::new(), Vec::new())),
        ),
        (
            "event.custom.name",
            one_event(EventKind::Custom(String::new(), Vec::new())),
            one_event(EventKind::Custom("x".into(), Vec::new())),
        ),
        (
            "event.custom.values",
            one_event(EventKind::Custom(String::new(), Vec::new())),
            one_event(EventKind::Custom(String::new(), vec![1])),
        ),
        (
            "event.error.message",
            one_event(EventKind::Error {
                code: 0,
                message: String::new(),
            }),
            one_event(EventKind::Error {
                code: 0,
                message: "x".into(),
            }),
        ),
        (
            "metadata",
            SwarmState::empty(),
            with(|s| {
                s.metadata.insert(String::new(), String::new());
            }),
        ),
        (
            "metadata.key",
            with(|s| {
                s.metadata.insert(String::new(), String::new());
            }),
            with(|s| {
                s.metadata.insert("x".into(), String::new());
            }),
        ),
        (
            "checkpoint_label",
            with(|s| s.checkpoint_label = Some(String::new())),
            with(|s| s.checkpoint_label = Some("x".into())),
        ),
    ]
}

/// The position of `empty`'s length prefix for the field where it differs from `one`.
fn prefix_at(empty: &SwarmState, one: &SwarmState) -> usize {
    let a = Codec::CURRENT.encode(empty).unwrap();
    let b = Codec::CURRENT.encode(one).unwrap();
    let at = a.iter().zip(&b).position(|(x, y)| x != y).unwrap();
    assert_eq!((a[at], b[at]), (0, 1), "not a length prefix at {at}");
    at
}

fn check_forged(name: &str, empty: &SwarmState, forged: u64) -> Result<(), TestCaseError> {
    let one = collection_fields()
        .into_iter()
        .find(|(n, ..)| *n == name)
        .map(|(_, _, one)| one)
        .unwrap();
    let at = prefix_at(empty, &one);
    let mut bytes = Codec::CURRENT.encode(empty).unwrap();
    // bincode's varint: 253 then the length as a little-endian u64.
    let mut prefix = vec![253u8];
    prefix.extend_from_slice(&forged.to_le_bytes());
    bytes.splice(at..at + 1, prefix);
    let started = Instant::now();
    let (result, peak, total) = decode_measured(&bytes);
    let elapsed = started.elapsed();
    prop_assert!(
        matches!(result, Err(CheckpointError::Decode { .. })),
        "{name}: forged length {forged} not refused: {result:?}"
    );
    prop_assert!(peak <= allowance(bytes.len()), "{name}: peak {peak} bytes");
    prop_assert!(
        total <= allowance(bytes.len()),
        "{name}: total {total} bytes"
    );
    prop_assert!(
        elapsed < Duration::from_millis(200),
        "{name}: took {elapsed:?}"
    );
    Ok(())
}

#[test]
fn forged_lengths_at_the_edges_are_refused_in_every_collection_field() {
    let fields = collection_fields();
    assert!(fields.len() >= 20);
    for (name, empty, one) in &fields {
        // The base decodes, and the one-element state decodes: the prefix found is real.
        prefix_at(empty, one);
        for forged in [
            1u64 << 32,
            (1 << 32) + 1,
            1 << 40,
            1 << 63,
            u64::MAX - 1,
            u64::MAX,
        ] {
            check_forged(name, empty, forged).unwrap();
        }
    }
}

#[test]
fn a_large_valid_state_is_not_refused_by_the_guards() {
    let state = SwarmState::sample(50, 400, 3);
    let bytes = Codec::CURRENT.encode(&state).unwrap();
    assert_eq!(Codec::CURRENT.decode::<SwarmState>(&bytes).unwrap(), state);
}
