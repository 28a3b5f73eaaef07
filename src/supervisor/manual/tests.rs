use std::time::{Duration, Instant};

use super::confirm::{Confirm, Doubt, Evidence};
use super::*;
use crate::chain::sockets::Holder;

const NODE: Evidence = Evidence {
    holder: Holder::Node,
    same_node: Some(true),
};

fn unknown() -> Evidence {
    Evidence {
        holder: Holder::Unknown("a name".into()),
        same_node: None,
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A run that read heights 1..=`to`, one every 100 ms (10 blocks/s), from `t0`.
fn followed(to: u64, t0: Instant) -> Confirm {
    let mut c = Confirm::new(60);
    for h in 1..=to {
        assert_eq!(c.below(h, t0 + ms(100 * h)).trust, Trust::Below);
    }
    c
}

#[test]
fn the_last_block_from_the_nodes_socket_is_believed_once_it_holds() {
    let t0 = Instant::now();
    let mut c = followed(58, t0);
    let t = t0 + ms(5_900);
    let first = c.decisive_reading(59, t, &NODE).unwrap();
    assert_eq!(first.trust, Trust::Owned);
    assert_eq!(
        c.decisive_reading(59, t + ms(25), &NODE).unwrap().trust,
        Trust::Owned
    );
    let held = c.decisive_reading(59, t + ms(500), &NODE).unwrap();
    assert_eq!(
        held,
        Reading {
            height: 59,
            trust: Trust::Confirmed
        }
    );
}

#[test]
fn a_jump_from_the_middle_of_the_run_to_the_last_block_is_not_believed() {
    let t0 = Instant::now();
    let mut c = followed(11, t0);
    let t = t0 + ms(1_200);
    // Every reading of a 1.2 s lie, from the node's own socket.
    for i in 0..48 {
        let doubt = c.decisive_reading(59, t + ms(25 * i), &NODE).unwrap_err();
        assert!(
            matches!(doubt, Doubt::TooFast { from: 11, .. }),
            "{doubt:?}"
        );
    }
    // The honest answers go on, and the real last block is believed when it comes.
    for h in 12..=58 {
        c.below(h, t0 + ms(100 * h + 300));
    }
    let t = t0 + ms(6_200);
    c.decisive_reading(59, t, &NODE).unwrap();
    assert_eq!(
        c.decisive_reading(59, t + ms(600), &NODE).unwrap().trust,
        Trust::Confirmed
    );
}

#[test]
fn a_short_lie_at_the_first_reading_does_not_hold() {
    let t = Instant::now();
    let mut c = Confirm::new(60);
    assert_eq!(
        c.decisive_reading(59, t, &NODE).unwrap().trust,
        Trust::Owned
    );
    assert_eq!(
        c.decisive_reading(59, t + ms(300), &NODE).unwrap().trust,
        Trust::Owned
    );
    // The lie ended: the node is at 12.
    c.below(12, t + ms(325));
    assert!(c.decisive_reading(59, t + ms(350), &NODE).is_err());
}

#[test]
fn another_process_or_another_node_is_never_believed() {
    let t0 = Instant::now();
    let mut c = followed(58, t0);
    let other = Evidence {
        holder: Holder::Other("held by pid 7 (gaiad)".into()),
        same_node: Some(true),
    };
    let foreign = Evidence {
        holder: Holder::Node,
        same_node: Some(false),
    };
    for i in 0..100 {
        let t = t0 + ms(5_900 + 25 * i);
        assert!(matches!(
            c.decisive_reading(59, t, &other),
            Err(Doubt::OtherProcess(_))
        ));
        assert_eq!(c.decisive_reading(59, t, &foreign), Err(Doubt::OtherNode));
    }
}

#[test]
fn an_unknown_owner_needs_more_readings_over_a_longer_time() {
    let t0 = Instant::now();
    let mut c = followed(58, t0);
    let t = t0 + ms(5_900);
    assert_eq!(c.decisive_reading(59, t, &unknown()), Err(Doubt::Pending));
    assert_eq!(
        c.decisive_reading(59, t + ms(700), &unknown()),
        Err(Doubt::Pending)
    );
    assert_eq!(
        c.decisive_reading(59, t + ms(1_400), &unknown()),
        Err(Doubt::Pending)
    );
    assert_eq!(
        c.decisive_reading(59, t + ms(1_500), &unknown()),
        Ok(Reading {
            height: 59,
            trust: Trust::Confirmed
        })
    );
}

#[test]
fn an_unknown_owner_with_the_same_node_is_believable_for_the_nodes_exit_to_confirm() {
    let t0 = Instant::now();
    let mut c = followed(58, t0);
    let same = Evidence {
        holder: Holder::Unknown("a name".into()),
        same_node: Some(true),
    };
    let t = t0 + ms(5_900);
    assert_eq!(
        c.decisive_reading(59, t, &same).unwrap().trust,
        Trust::Owned
    );
    assert_eq!(
        c.decisive_reading(59, t + ms(700), &same).unwrap().trust,
        Trust::Owned,
        "held for longer where the owner cannot be told"
    );
    assert_eq!(
        c.decisive_reading(59, t + ms(1_500), &same).unwrap().trust,
        Trust::Confirmed
    );
}

#[test]
fn a_height_below_one_already_believed_is_refused() {
    let t0 = Instant::now();
    let mut c = Confirm::new(60);
    c.decisive_reading(61, t0, &NODE).unwrap();
    c.decisive_reading(61, t0 + ms(600), &NODE).unwrap();
    assert_eq!(
        c.decisive_reading(59, t0 + ms(700), &NODE),
        Err(Doubt::WentBack { believed: 61 })
    );
}
