//! The liveness rules on paused tokio time: send times, the coordinator's lag, seconds that keep
//! arriving.

use super::*;

const TIMEOUT: Duration = Duration::from_secs(5);
const T0: u64 = 1_700_000_000_000;

#[tokio::test]
async fn silence_is_read_from_send_times_not_from_handling() {
    tokio::time::pause();
    let mut heard = Heard::new(T0);
    // Sent at T0, handled 20 ms later: the fastest delivery.
    assert_eq!(heard.message(T0, T0 + 20), (true, Some(0)));
    // Sent at T0 + 1 s, handled 3 s later (the coordinator was busy): news, 2.98 s extra.
    assert_eq!(heard.message(T0 + 1_000, T0 + 4_000), (true, Some(2_980)));
    // Read at T0 + 4 s: it last sent 3 s ago on the coordinator's clock (1.02 s + offset).
    assert_eq!(heard.silence_ms(T0 + 4_000), 2_980);
    // An older message handled later is not news.
    assert!(!heard.message(T0 + 500, T0 + 4_100).0);
}

#[tokio::test]
async fn an_agent_clock_far_off_does_not_make_it_silent() {
    let mut heard = Heard::new(T0);
    // The agent's clock is 30 s behind: its offset is learnt, not taken for silence.
    for k in 0..5u64 {
        heard.message(T0 - 30_000 + k * 1_000, T0 + k * 1_000 + 10);
    }
    assert_eq!(heard.silence_ms(T0 + 4_500), 490);
    assert!(!is_silent(&heard, T0 + 4_500, TIMEOUT, None));
    assert!(is_silent(&heard, T0 + 10_011, TIMEOUT, None));
}

#[tokio::test]
async fn older_agents_without_send_times_are_judged_by_handling() {
    let mut heard = Heard::new(T0);
    assert_eq!(heard.message(0, T0 + 1_000), (true, None));
    assert_eq!(heard.silence_ms(T0 + 3_000), 2_000);
    assert!(is_silent(&heard, T0 + 6_001, TIMEOUT, None));
    assert!(!is_silent(&heard, T0 + 6_000, TIMEOUT, None));
}

#[tokio::test]
async fn an_agent_whose_seconds_keep_pace_is_alive() {
    let mut heard = Heard::new(T0);
    heard.message(T0, T0);
    heard.second(T0 / 1000 + 9);
    // Silent by send time, but its frames are within the timeout of the run's newest second.
    assert!(!is_silent(
        &heard,
        T0 + 8_000,
        TIMEOUT,
        Some(T0 / 1000 + 12)
    ));
    // The others moved on by more than the timeout: it is silent.
    assert!(is_silent(&heard, T0 + 8_000, TIMEOUT, Some(T0 / 1000 + 15)));
}

#[tokio::test]
async fn a_late_tick_widens_the_timeout_for_a_while() {
    tokio::time::pause();
    let mut lag = Lag::new(Duration::from_millis(100));
    let start = Instant::now();
    lag.tick(start);
    tokio::time::advance(Duration::from_millis(100)).await;
    lag.tick(Instant::now());
    assert_eq!(lag.timeout(TIMEOUT, Instant::now()), TIMEOUT);
    // The coordinator stalled 2.1 s between two ticks.
    tokio::time::advance(Duration::from_millis(2_100)).await;
    lag.tick(Instant::now());
    assert_eq!(lag.behind(Instant::now()), Duration::from_millis(2_000));
    assert_eq!(
        lag.timeout(TIMEOUT, Instant::now()),
        TIMEOUT + Duration::from_secs(4)
    );
    // Ten seconds of punctual ticks later it is forgotten.
    for _ in 0..110 {
        tokio::time::advance(Duration::from_millis(100)).await;
        lag.tick(Instant::now());
    }
    assert_eq!(lag.timeout(TIMEOUT, Instant::now()), TIMEOUT);
}

#[tokio::test]
async fn a_backlog_of_messages_widens_the_timeout_while_it_lasts() {
    tokio::time::pause();
    let mut lag = Lag::new(Duration::from_millis(100));
    // Every message of the last seconds waited at least 1.5 s: that is the coordinator's backlog.
    for extra in [1_500, 2_200, 1_800] {
        lag.delivered(Instant::now(), extra);
    }
    assert_eq!(lag.behind(Instant::now()), Duration::from_millis(1_500));
    // One agent's message waited long (its own delay), the others none: no backlog.
    lag.delivered(Instant::now(), 0);
    assert_eq!(lag.behind(Instant::now()), Duration::ZERO);
    tokio::time::advance(Duration::from_secs(4)).await;
    lag.delivered(Instant::now(), 700);
    assert_eq!(lag.behind(Instant::now()), Duration::from_millis(700));
}

#[tokio::test]
async fn status_numbers_tell_news_from_repeats() {
    let mut heard = Heard::new(T0);
    assert!(heard.status_seq(1));
    assert!(heard.status_seq(3));
    assert!(!heard.status_seq(2));
    assert!(
        heard.status_seq(0),
        "an unnumbered message is taken as news"
    );
    heard.restart(T0 + 50_000);
    assert_eq!(heard.silence_ms(T0 + 51_000), 1_000);
    assert!(!heard.status_seq(3), "numbers survive a restart");
}
