//! The coordinator's split against what agents make of the changes they hear.

use super::*;
use herd_protocol::roster::Roster;
use herd_protocol::split::Parts;
use proptest::prelude::*;
use std::time::Duration;

fn ids(n: u32) -> Vec<AgentId> {
    (0..n).map(AgentId::numbered).collect()
}

fn gap(share: ShareMove) -> AgentGap {
    AgentGap {
        silent_from_ms: 0,
        lost_at_ms: share.at_ms,
        back_at_ms: None,
        reason: "r".into(),
        share: Some(share),
    }
}

#[test]
fn a_lost_carrier_leaves_the_others_in_their_order_and_only_it_is_named() {
    let mut s = Shares::new(ids(3));
    let moved = s.without(&[AgentId::numbered(1)], 5_000).expect("moved");
    assert_eq!(moved.agent_count, 2);
    assert_eq!(moved.lost, vec![AgentId::numbered(1)]);
    assert!(moved.joined.is_empty());
    assert_eq!(s.carriers(), &[AgentId::numbered(0), AgentId::numbered(2)]);
    // Lost again (taken back, then lost): it carries nothing, nothing moves.
    assert_eq!(s.without(&[AgentId::numbered(1)], 6_000), None);
    assert_eq!(s.removal_of(&AgentId::numbered(1)), Some(&moved));
    // The last carriers have nobody to hand their share to.
    assert_eq!(
        s.without(&[AgentId::numbered(0), AgentId::numbered(2)], 7_000),
        None
    );
    assert_eq!(s.history().len(), 1);
}

#[test]
fn a_replacement_takes_the_lost_agents_place() {
    let mut s = Shares::new(ids(4));
    s.without(&[AgentId::numbered(2)], 5_000).expect("moved");
    let new = AgentId::new("agent-2-r1").expect("valid");
    let joined = s
        .join(new.clone(), &AgentId::numbered(2), 6_000)
        .expect("joined");
    assert_eq!((joined.seq, joined.agent_count), (2, 4));
    assert_eq!(joined.joined[0].index, 2);
    assert_eq!(joined.joined[0].slot, 2);
    assert_eq!(s.carriers()[2], new);
    // Without a move before (nobody was left to take it): the lost agent leaves as it joins.
    let mut t = Shares::new(ids(1));
    let new = AgentId::new("agent-0-r1").expect("valid");
    let joined = t
        .join(new.clone(), &AgentId::numbered(0), 6_000)
        .expect("joined");
    assert_eq!(joined.lost, vec![AgentId::numbered(0)]);
    assert_eq!(t.carriers(), &[new]);
}

#[test]
fn the_split_is_rebuilt_from_the_stored_gaps() {
    let mut live = Shares::new(ids(4));
    live.without(&[AgentId::numbered(0)], 4_000);
    live.without(&[AgentId::numbered(3), AgentId::numbered(1)], 9_000);
    let new = AgentId::new("agent-3-r1").expect("valid");
    live.join(new.clone(), &AgentId::numbered(3), 10_000);
    let to = live.carriers().to_vec();
    let gaps = [
        (
            AgentId::numbered(1),
            gap(recorded(
                "redistribute",
                9_000,
                vec![AgentId::numbered(2), new.clone()],
            )),
        ),
        (
            AgentId::numbered(3),
            gap(ShareMove {
                interim_at_ms: Some(9_000),
                ..recorded("replace", 10_000, vec![new.clone()])
            }),
        ),
        (
            AgentId::numbered(0),
            gap(recorded("redistribute", 4_000, ids(4)[1..].to_vec())),
        ),
        // A loss under `continue` moved nothing.
        (
            AgentId::numbered(2),
            gap(recorded("continue", 1_000, vec![])),
        ),
    ];
    let restored = Shares::restore(ids(4), gaps.iter().map(|(a, g)| (a, g)));
    assert_eq!(restored.carriers(), to.as_slice());
    assert_eq!(restored.history(), live.history());
}

/// One step of a run's life: agents lost together (positions among the current carriers), or a
/// replacement for the lost agent that was lost `n`-th.
#[derive(Debug, Clone)]
enum Step {
    Lose(Vec<usize>),
    Replace(usize),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            prop::collection::vec(0usize..40, 1..4).prop_map(Step::Lose),
            (0usize..40).prop_map(Step::Replace),
        ],
        0..12,
    )
}

proptest! {
    /// Every agent (a start agent, or a replacement from its start command on) that applies the
    /// changes it hears keeps the same list as the coordinator's full re-split — the start's
    /// agents that are not lost and the replacements, ordered by slot — and every agent's
    /// shares, timed by the changes it applied, add up exactly to the total at every instant.
    #[test]
    fn agents_applying_changes_agree_with_the_full_resplit(
        n in 1u32..12, steps in steps(), total in 0u64..5_000, probes in prop::collection::vec(0u64..40_000, 8),
    ) {
        let start = ids(n);
        let mut s = Shares::new(start.clone());
        let mut lost_order: Vec<AgentId> = Vec::new();
        let mut replaced: BTreeMap<AgentId, AgentId> = BTreeMap::new();
        let mut slot_of: BTreeMap<AgentId, u32> = start.iter().cloned().zip(0..).collect();
        let mut gone: std::collections::BTreeSet<AgentId> = Default::default();
        let mut at_ms = 1_000;
        for step in &steps {
            at_ms += 1_000;
            match step {
                Step::Lose(positions) => {
                    let carriers = s.carriers().to_vec();
                    let lost: Vec<AgentId> = positions.iter().map(|p| carriers[p % carriers.len()].clone()).collect();
                    if s.without(&lost, at_ms).is_some() {
                        for a in lost {
                            if !gone.contains(&a) {
                                gone.insert(a.clone());
                                lost_order.push(a);
                            }
                        }
                    }
                }
                Step::Replace(k) => {
                    let candidates: Vec<&AgentId> = lost_order.iter().filter(|a| !replaced.contains_key(*a)).collect();
                    if candidates.is_empty() { continue; }
                    let old = candidates[k % candidates.len()].clone();
                    let new = AgentId::new(format!("{old}-r")).expect("valid");
                    s.join(new.clone(), &old, at_ms).expect("joins");
                    slot_of.insert(new.clone(), slot_of[&old]);
                    replaced.insert(old, new);
                }
            }
            // The full re-split, computed from scratch.
            let mut full: Vec<AgentId> = start.iter().filter(|a| !gone.contains(*a)).cloned()
                .chain(replaced.values().filter(|a| !gone.contains(*a)).cloned()).collect();
            full.sort_by_key(|a| slot_of[a]);
            prop_assert_eq!(s.carriers(), full.as_slice());
        }
        // Each agent hears every change (a replacement: in its start command), in a shuffled
        // order with repeats, and follows its place.
        let everyone: Vec<AgentId> = start.iter().cloned().chain(replaced.values().cloned()).collect();
        let mut parts_of = Vec::new();
        for agent in &everyone {
            let mut roster = Roster::new(start.clone());
            let in_start = start.contains(agent);
            let mut parts = Parts::new(n, in_start.then(|| start.iter().position(|a| a == agent).map(|i| i as u32)).flatten());
            let mut heard: Vec<Reassignment> = s.history().iter().rev().cloned().collect();
            heard.extend(s.history().iter().cloned());
            for change in heard {
                for placed in roster.hear(change, agent) {
                    parts.reassign(Duration::from_millis(placed.at_ms), placed.count, placed.index);
                }
            }
            prop_assert_eq!(roster.carriers(), s.carriers());
            parts_of.push(parts);
        }
        for t in probes {
            let t = Duration::from_millis(t);
            let sum: u64 = parts_of.iter().map(|p| p.share_at(total, t)).sum();
            prop_assert_eq!(sum, total, "at {:?}", t);
        }
    }
}
