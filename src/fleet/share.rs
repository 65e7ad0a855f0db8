//! Shares: how one cycle's sessions, concurrency and rate split over the
//! fleet. Agent i of N owns a contiguous block of session numbers, so
//! `{{session}}` stays unique across the fleet, and the blocks, the
//! concurrency and the rate each add up to the cycle's.

use serde::{Deserialize, Serialize};

use crate::scenario::Rate;

/// One agent's part of a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Share {
    /// The number of its first session; it runs `first..first + sessions`.
    pub first: u64,
    /// Sessions it opens.
    pub sessions: u32,
    /// Most of them open at once.
    pub concurrency: u32,
    /// Its part of the arrival rate (same ramp), when the load is paced.
    pub rate: Option<Rate>,
}

/// `total` split into `n` parts that differ by at most one, the larger
/// first (so agent 0's share is the largest, which bounds the others').
pub fn split(total: u32, n: u32) -> Vec<u32> {
    let n = n.max(1);
    (0..n)
        .map(|i| total / n + u32::from(i < total % n))
        .collect()
}

/// The shares of a cycle of `sessions` sessions at most `concurrency` at
/// once (clamped to `sessions`, as a local cycle does), paced at `rate`,
/// over `agents` agents. When the concurrency is below the number of
/// agents, only that many agents get sessions (an agent with no slot could
/// run none); the others report an empty share.
pub fn shares(sessions: u32, concurrency: u32, rate: Option<Rate>, agents: u32) -> Vec<Share> {
    let concurrency = concurrency.min(sessions);
    let agents = agents.max(1);
    let active = agents.min(concurrency);
    let pad = |mut parts: Vec<u32>| {
        parts.resize(agents as usize, 0);
        parts
    };
    let counts = pad(if active == 0 {
        Vec::new()
    } else {
        split(sessions, active)
    });
    let slots = pad(if active == 0 {
        Vec::new()
    } else {
        split(concurrency, active)
    });
    let mut first = 0u64;
    counts
        .into_iter()
        .zip(slots)
        .map(|(count, slots)| {
            let share = Share {
                first,
                sessions: count,
                // Both splits put their remainder first, and concurrency <=
                // sessions, so slots <= count already; the min is for
                // readers, not a correction.
                concurrency: slots.min(count),
                rate: rate.map(|r| Rate {
                    per_second: if sessions == 0 {
                        0.0
                    } else {
                        r.per_second * f64::from(count) / f64::from(sessions)
                    },
                    ramp: r.ramp,
                }),
            };
            first += u64::from(count);
            share
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    #[test]
    fn three_agents_share_ten_sessions() {
        let s = shares(10, 4, None, 3);
        let blocks: Vec<(u64, u32, u32)> = s
            .iter()
            .map(|x| (x.first, x.sessions, x.concurrency))
            .collect();
        assert_eq!(blocks, vec![(0, 4, 2), (4, 3, 1), (7, 3, 1)]);
    }

    #[test]
    fn fewer_sessions_than_agents_leaves_some_idle() {
        let s = shares(2, 5, None, 3);
        let counts: Vec<u32> = s.iter().map(|x| x.sessions).collect();
        assert_eq!(counts, vec![1, 1, 0]);
        assert_eq!(s[2].concurrency, 0);
        // Two slots over three agents: the third could run nothing.
        let s = shares(10, 2, None, 3);
        let counts: Vec<(u32, u32)> = s.iter().map(|x| (x.sessions, x.concurrency)).collect();
        assert_eq!(counts, vec![(5, 1), (5, 1), (0, 0)]);
    }

    proptest! {
        #[test]
        fn shares_cover_every_session_exactly_once(
            sessions in 0u32..200_000,
            concurrency in 1u32..50_000,
            agents in 1u32..64,
            per_second in proptest::option::of(0.5f64..100_000.0),
        ) {
            let rate = per_second.map(|p| Rate { per_second: p, ramp: Duration::from_secs(2) });
            let s = shares(sessions, concurrency, rate, agents);
            prop_assert_eq!(s.len() as u32, agents);
            // Contiguous, in order, from 0, ending at `sessions`: every
            // session number is owned by exactly one agent.
            let mut next = 0u64;
            for x in &s {
                prop_assert_eq!(x.first, next);
                next += u64::from(x.sessions);
                prop_assert!(x.concurrency <= x.sessions);
                prop_assert!(x.concurrency > 0 || x.sessions == 0);
            }
            prop_assert_eq!(next, u64::from(sessions));
            let slots: u64 = s.iter().map(|x| u64::from(x.concurrency)).sum();
            prop_assert_eq!(slots, u64::from(concurrency.min(sessions)));
            let sizes: Vec<u32> = s.iter().filter(|x| x.concurrency > 0).map(|x| x.sessions).collect();
            if let (Some(max), Some(min)) = (sizes.iter().max(), sizes.iter().min()) {
                prop_assert!(max - min <= 1);
            }
            if let (Some(p), true) = (per_second, sessions > 0) {
                let sum: f64 = s.iter().map(|x| x.rate.unwrap().per_second).sum();
                prop_assert!((sum - p).abs() <= p * 1e-9, "{} vs {}", sum, p);
            }
        }
    }
}
