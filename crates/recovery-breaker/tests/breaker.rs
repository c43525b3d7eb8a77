//! The breaker set against a reference model under random operations, one probe at a time under
//! many threads, the cap on open breakers when every agent fails at once, and the config's checks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use recovery_breaker::{Admission, BreakerConfig, BreakerSet, Outcome, Permit, State, Transition};

fn config() -> BreakerConfig {
    BreakerConfig {
        window: 6,
        minimum_calls: 4,
        failure_rate_threshold: 0.5,
        slow_call_rate_threshold: 0.75,
        open_for: Duration::from_millis(100),
        open_multiplier: 2.0,
        max_open_for: Duration::from_millis(700),
        jitter: 0.0,
        ..BreakerConfig::default()
    }
}

/// The reference: the rules written out plainly, for one breaker.
#[derive(Debug, Clone, PartialEq)]
enum M {
    Closed,
    Open(Instant),
    HalfOpen { probe_out: bool },
}

#[derive(Debug)]
struct Model {
    state: M,
    window: Vec<Outcome>,
    opens: u32,
}

impl Model {
    fn open_time(&self, c: &BreakerConfig) -> Duration {
        let t = c.open_for.as_secs_f64() * c.open_multiplier.powi(self.opens as i32);
        Duration::from_secs_f64(t.min(c.max_open_for.as_secs_f64()))
    }

    fn admit(&mut self, now: Instant) -> Admission {
        if let M::Open(until) = self.state {
            if now >= until {
                self.state = M::HalfOpen { probe_out: false };
            }
        }
        match self.state {
            M::Closed => Admission::Call,
            M::HalfOpen { probe_out: false } => {
                self.state = M::HalfOpen { probe_out: true };
                Admission::Probe
            }
            _ => Admission::Rejected,
        }
    }

    fn release(&mut self) {
        if let M::HalfOpen { .. } = self.state {
            self.state = M::HalfOpen { probe_out: false };
        }
    }

    fn record(&mut self, admitted: Admission, o: Outcome, now: Instant, c: &BreakerConfig) {
        match (&self.state, admitted) {
            (M::HalfOpen { .. }, Admission::Probe) => {
                if o == Outcome::Success {
                    self.state = M::Closed;
                    self.window.clear();
                    self.opens = 0;
                } else {
                    self.state = M::Open(now + self.open_time(c));
                    self.opens += 1;
                }
            }
            (M::Closed, Admission::Call) => {
                self.window.push(o);
                if self.window.len() > c.window {
                    self.window.remove(0);
                }
                let n = self.window.len() as f64;
                let fails = self
                    .window
                    .iter()
                    .filter(|x| **x == Outcome::Failure)
                    .count() as f64;
                let slow = self.window.iter().filter(|x| **x == Outcome::Slow).count() as f64;
                if self.window.len() >= c.minimum_calls
                    && (fails >= c.failure_rate_threshold * n
                        || slow >= c.slow_call_rate_threshold * n)
                {
                    self.state = M::Open(now + self.open_time(c));
                    self.opens += 1;
                    self.window.clear();
                }
            }
            _ => {}
        }
    }

    fn seen(&self, now: Instant) -> State {
        match self.state {
            M::Closed => State::Closed,
            M::Open(until) if now < until => State::Open { until },
            _ => State::HalfOpen,
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Admit,
    Record(usize, Outcome),
    Drop(usize),
    Advance(u64),
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Success),
        Just(Outcome::Failure),
        Just(Outcome::Slow)
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            3 => Just(Op::Admit),
            3 => (0..4usize, outcome()).prop_map(|(i, o)| Op::Record(i, o)),
            1 => (0..4usize).prop_map(Op::Drop),
            2 => (1..400u64).prop_map(Op::Advance),
        ],
        1..200,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn prop_the_set_follows_the_model(ops in ops()) {
        let c = config();
        // Ten members: the cap (10 % of 10, at least one) lets this one open.
        let set = BreakerSet::new(c.clone()).unwrap();
        for k in 0..10u32 {
            set.insert(k);
        }
        let mut model = Model { state: M::Closed, window: Vec::new(), opens: 0 };
        let mut now = Instant::now();
        let mut permits: Vec<(Permit<u32>, Admission)> = Vec::new();
        for op in ops {
            match op {
                Op::Admit => {
                    let expected = model.admit(now);
                    match set.try_acquire(&0, now) {
                        Ok(p) => {
                            let got = if p.is_probe() { Admission::Probe } else { Admission::Call };
                            prop_assert_eq!(got, expected);
                            permits.push((p, got));
                        }
                        Err(_) => prop_assert_eq!(Admission::Rejected, expected),
                    }
                }
                Op::Record(i, o) if i < permits.len() => {
                    let (p, admitted) = permits.remove(i);
                    model.record(admitted, o, now, &c);
                    let _ = p.record(o, now);
                }
                Op::Drop(i) if i < permits.len() => {
                    let (p, admitted) = permits.remove(i);
                    if admitted == Admission::Probe {
                        model.release();
                    }
                    drop(p);
                }
                Op::Advance(ms) => now += Duration::from_millis(ms),
                _ => {}
            }
            prop_assert_eq!(set.state(&0, now), Some(model.seen(now)));
            let ejected = u64::from(!matches!(model.state, M::Closed));
            prop_assert_eq!(set.stats().open_now, ejected);
        }
    }
}

/// Many threads on one half-open breaker: never two probes out at once.
#[test]
fn half_open_never_admits_two_probes_at_once_under_many_threads() {
    let set = BreakerSet::new(BreakerConfig {
        window: 2,
        minimum_calls: 2,
        open_for: Duration::from_micros(50),
        max_open_for: Duration::from_micros(50),
        ..BreakerConfig::default()
    })
    .unwrap();
    set.insert("agent");
    let t0 = Instant::now();
    for _ in 0..2 {
        let _ = set
            .try_acquire(&"agent", t0)
            .unwrap()
            .record(Outcome::Failure, t0);
    }
    assert!(matches!(set.state(&"agent", t0), Some(State::Open { .. })));
    let out = Arc::new(AtomicUsize::new(0));
    let probes = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (set, out, probes) = (Arc::clone(&set), Arc::clone(&out), Arc::clone(&probes));
            std::thread::spawn(move || {
                for i in 0..20_000u32 {
                    let Ok(p) = set.try_acquire(&"agent", Instant::now()) else {
                        continue;
                    };
                    assert!(p.is_probe(), "only probes: the breaker never closes here");
                    assert_eq!(
                        out.fetch_add(1, Ordering::SeqCst),
                        0,
                        "two probes out at once"
                    );
                    probes.fetch_add(1, Ordering::Relaxed);
                    std::hint::spin_loop();
                    out.fetch_sub(1, Ordering::SeqCst);
                    // Half the probes fail (open again), the others are dropped unrecorded.
                    if (i + t) % 2 == 0 {
                        assert!(matches!(
                            p.record(Outcome::Failure, Instant::now()),
                            Transition::Reopened { .. }
                        ));
                    } else {
                        drop(p);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(
        probes.load(Ordering::Relaxed) > 100,
        "probes were let through: {}",
        probes.load(Ordering::Relaxed)
    );
}

/// Every agent fails at once: no more than the cap open, the others stay closed and say so.
#[test]
fn the_share_cap_holds_when_every_agent_fails_at_once() {
    for (members, cap) in [(20u32, 2u64), (100, 10), (5, 1), (1, 1)] {
        let set = BreakerSet::new(BreakerConfig {
            minimum_calls: 3,
            window: 3,
            ..BreakerConfig::default()
        })
        .unwrap();
        for k in 0..members {
            set.insert(k);
        }
        let now = Instant::now();
        for _ in 0..5 {
            for k in 0..members {
                if let Ok(p) = set.try_acquire(&k, now) {
                    let _ = p.record(Outcome::Failure, now);
                }
            }
        }
        let s = set.stats();
        assert_eq!(s.open_now, cap, "{members} members");
        assert_eq!(s.opened, cap);
        assert!(
            members == 1 || s.cap_reached > 0,
            "the others were held closed"
        );
        let refused = (0..members).filter(|k| set.refuses(k, now)).count() as u64;
        assert_eq!(refused, cap);
    }
}

#[test]
fn open_times_grow_to_the_cap_and_a_success_resets_them() {
    let set = BreakerSet::new(BreakerConfig {
        jitter: 0.0,
        minimum_calls: 1,
        window: 1,
        ..BreakerConfig::default()
    })
    .unwrap();
    set.insert(1);
    let mut now = Instant::now();
    let _ = set
        .try_acquire(&1, now)
        .unwrap()
        .record(Outcome::Failure, now);
    let mut lengths = Vec::new();
    for _ in 0..7 {
        let Some(State::Open { until }) = set.state(&1, now) else {
            panic!()
        };
        lengths.push((until - now).as_secs());
        now = until;
        let p = set.try_acquire(&1, now).unwrap();
        assert!(p.is_probe());
        let _ = p.record(Outcome::Failure, now);
    }
    assert_eq!(lengths, [10, 20, 40, 80, 160, 300, 300]);
    let Some(State::Open { until }) = set.state(&1, now) else {
        panic!()
    };
    let p = set.try_acquire(&1, until).unwrap();
    assert_eq!(p.record(Outcome::Success, until), Transition::Closed);
    let _ = set
        .try_acquire(&1, until)
        .unwrap()
        .record(Outcome::Failure, until);
    let Some(State::Open { until: again }) = set.state(&1, until) else {
        panic!()
    };
    assert_eq!((again - until).as_secs(), 10, "back to the first open time");
}

#[test]
fn a_bad_config_names_its_field() {
    for (c, field) in [
        (
            BreakerConfig {
                window: 0,
                ..BreakerConfig::default()
            },
            "window",
        ),
        (
            BreakerConfig {
                minimum_calls: 50,
                ..BreakerConfig::default()
            },
            "minimum_calls",
        ),
        (
            BreakerConfig {
                failure_rate_threshold: 1.5,
                ..BreakerConfig::default()
            },
            "failure_rate_threshold",
        ),
        (
            BreakerConfig {
                jitter: 1.0,
                ..BreakerConfig::default()
            },
            "jitter",
        ),
        (
            BreakerConfig {
                max_open_share: 0.0,
                ..BreakerConfig::default()
            },
            "max_open_share",
        ),
        (
            BreakerConfig {
                open_multiplier: 0.5,
                ..BreakerConfig::default()
            },
            "open_multiplier",
        ),
    ] {
        let e = c.validate().unwrap_err();
        assert_eq!(e.field, field, "{e}");
        assert!(e.to_string().contains(field));
    }
}
