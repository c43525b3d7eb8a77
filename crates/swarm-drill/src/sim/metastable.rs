//! The metastable-failure experiment of "Metastable Failures in the Wild" (OSDI'22), its retry
//! case, on tokio's paused clock.
//!
//! A server of capacity C serves a FIFO queue and keeps working on requests whose clients
//! already gave up. An open-loop load of 0.8 C arrives; each client waits `timeout` for its
//! answer and then resends at once, up to `retries` times. The capacity is cut to 0.2 C for
//! `cut` seconds, then restored. Without a retry budget, resends multiply the load past C: the
//! queue never drains and goodput stays near zero long after capacity is back (the sustaining
//! effect is the work on abandoned requests). With the backoff crate's [`RetryBudget`] shared by
//! the clients, resends stay within a share of the requests, the load stays under C, and the
//! queue drains.
//!
//! ```
//! use std::time::Duration;
//! use swarm_drill::sim::metastable::{MetastableOptions, run};
//!
//! let without = run(&MetastableOptions { budget: false, ..MetastableOptions::default() });
//! let with = run(&MetastableOptions { budget: true, ..MetastableOptions::default() });
//! assert!(without.seconds_below_half_in_first_minute >= 60);
//! assert!(with.back_to_95_after.unwrap() <= Duration::from_secs(10));
//! ```

use std::collections::VecDeque;
use std::time::Duration;

use recovery_backoff::RetryBudget;
use serde::{Deserialize, Serialize};

/// The experiment's parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetastableOptions {
    /// Requests the server completes per second at full capacity.
    pub capacity: f64,
    /// Offered load, as a share of capacity.
    pub load: f64,
    /// How long a client waits for an answer before it resends.
    pub timeout: Duration,
    /// Resends per request at most.
    pub retries: u32,
    /// The capacity during the cut, as a share.
    pub cut_to: f64,
    /// How long the cut lasts.
    pub cut: Duration,
    /// Whether the clients share a [`RetryBudget`] (10 s window, 10 retries a second, 10 % of
    /// requests).
    pub budget: bool,
    /// Normal running before the cut.
    pub warm_up: Duration,
    /// How long to watch after capacity is restored.
    pub observe: Duration,
}

impl Default for MetastableOptions {
    fn default() -> Self {
        Self {
            capacity: 1000.0,
            load: 0.8,
            timeout: Duration::from_secs(1),
            retries: 4,
            cut_to: 0.2,
            cut: Duration::from_secs(2),
            budget: false,
            warm_up: Duration::from_secs(10),
            observe: Duration::from_secs(90),
        }
    }
}

/// What happened after capacity was restored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetastableReport {
    /// The options.
    pub options: MetastableOptions,
    /// Goodput in each second after capacity was restored: answers that reached a client still
    /// waiting, over the requests that arrived in that second.
    pub goodput: Vec<f64>,
    /// Of the first 60 s after the restore, the seconds with goodput below 50 %.
    pub seconds_below_half_in_first_minute: usize,
    /// When goodput was back at 95 % or more (and stayed there for 5 s), after the restore.
    pub back_to_95_after: Option<Duration>,
    /// Requests the server worked on for clients that had given up.
    pub wasted_work: u64,
}

struct Request {
    client: u64,
    attempt: u32,
}

/// Run the experiment on a fresh paused runtime.
pub fn run(options: &MetastableOptions) -> MetastableReport {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime builds")
        .block_on(simulate(options))
}

async fn simulate(o: &MetastableOptions) -> MetastableReport {
    const STEP: Duration = Duration::from_millis(1);
    let budget = RetryBudget::new(Duration::from_secs(10), 10, 0.1).expect("valid budget");
    let per_step = |rate: f64| rate * STEP.as_secs_f64();
    let step_of = |d: Duration| (d.as_nanos() / STEP.as_nanos()) as u64;
    let (cut_at, restore_at) = (step_of(o.warm_up), step_of(o.warm_up + o.cut));
    let end = restore_at + step_of(o.observe);
    let timeout = step_of(o.timeout);

    let mut queue: VecDeque<Request> = VecDeque::new();
    // Each client's current attempt, or `None` once answered or given up.
    let mut current: Vec<Option<u32>> = Vec::new();
    // (deadline step, client, attempt), in deadline order.
    let mut deadlines: VecDeque<(u64, u64, u32)> = VecDeque::new();
    let (mut arrivals, mut service) = (0.0f64, 0.0f64);
    let (mut good_this_second, mut offered_this_second) = (0u64, 0u64);
    let mut goodput = Vec::new();
    let mut wasted = 0u64;
    for step in 0..end {
        // New requests: open loop, evenly spaced.
        arrivals += per_step(o.load * o.capacity);
        while arrivals >= 1.0 {
            arrivals -= 1.0;
            let client = current.len() as u64;
            current.push(Some(0));
            queue.push_back(Request { client, attempt: 0 });
            deadlines.push_back((step + timeout, client, 0));
            offered_this_second += 1;
            if o.budget {
                budget.deposit();
            }
        }
        // Timeouts: resend at once, or give up.
        while deadlines.front().is_some_and(|(d, ..)| *d <= step) {
            let (_, client, attempt) = deadlines.pop_front().expect("checked");
            if current[client as usize] != Some(attempt) {
                continue;
            }
            let may = attempt < o.retries && (!o.budget || budget.withdraw());
            if may {
                current[client as usize] = Some(attempt + 1);
                queue.push_back(Request {
                    client,
                    attempt: attempt + 1,
                });
                deadlines.push_back((step + timeout, client, attempt + 1));
            } else {
                current[client as usize] = None;
            }
        }
        // Service, at the capacity of the moment, in arrival order.
        let capacity = if (cut_at..restore_at).contains(&step) {
            o.capacity * o.cut_to
        } else {
            o.capacity
        };
        service += per_step(capacity);
        while service >= 1.0 {
            let Some(r) = queue.pop_front() else {
                service = 0.0;
                break;
            };
            service -= 1.0;
            if current[r.client as usize] == Some(r.attempt) {
                current[r.client as usize] = None;
                good_this_second += 1;
            } else {
                wasted += 1;
            }
        }
        tokio::time::advance(STEP).await;
        if (step + 1) % 1000 == 0 {
            if step >= restore_at {
                goodput.push(good_this_second as f64 / offered_this_second.max(1) as f64);
            }
            good_this_second = 0;
            offered_this_second = 0;
        }
    }
    let seconds_below_half_in_first_minute = goodput.iter().take(60).filter(|g| **g < 0.5).count();
    let back_to_95_after = (0..goodput.len())
        .find(|&s| goodput[s..].iter().take(5).all(|g| *g >= 0.95) && s + 5 <= goodput.len())
        .map(|s| Duration::from_secs(s as u64 + 1));
    MetastableReport {
        options: o.clone(),
        goodput,
        seconds_below_half_in_first_minute,
        back_to_95_after,
        wasted_work: wasted,
    }
}

/// The sweep over the length of the cut: for each, with and without the budget.
pub fn sweep(cuts: &[Duration]) -> Vec<(Duration, MetastableReport, MetastableReport)> {
    cuts.iter()
        .map(|&cut| {
            let base = MetastableOptions {
                cut,
                ..MetastableOptions::default()
            };
            let without = run(&MetastableOptions {
                budget: false,
                ..base.clone()
            });
            let with = run(&MetastableOptions {
                budget: true,
                ..base
            });
            (cut, without, with)
        })
        .collect()
}
