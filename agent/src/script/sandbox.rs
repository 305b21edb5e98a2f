//! The Rhai engine scripts run in: what exists for them, and the per-call time limit.
//!
//! Rhai has no file, network or process functions unless the host registers them; this engine
//! registers none (and is built without `import`, which reads files), and `eval` is switched off
//! so a script cannot compile text it builds at run time. What scripts get beyond the language's
//! own string, array, map, math and blob functions are the helpers realistic auth needs
//! (`hmac_sha256`, `sha256`, `hex`, `base64_encode`/`base64_decode`, `now_ms`, `uuid`, `random`)
//! and `request`, which goes through herd's client (see `bridge`). `print` and `debug` go to the
//! agent's log at debug level, not to its standard output.
//!
//! The time limit: a call runs on a thread of its own (tokio's blocking pool); its deadline is
//! kept in a thread-local, checked by the engine's progress hook every [`CHECK_EVERY`]
//! operations, and pushed back by the time the call spent waiting for its HTTP requests, so only
//! computing counts. Sizes are capped too, so one script cannot take the agent's memory.

use base64::Engine as _;
use rhai::{Blob, Dynamic, Engine, EvalAltResult, ImmutableString};
use std::cell::Cell;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How many operations run between two looks at the clock (a look costs about as much as a
/// few dozen operations).
const CHECK_EVERY: u64 = 256;

thread_local! {
    /// When the call running on this thread must stop computing (`None`: no call here).
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// State of this thread's random numbers (xorshift64*), seeded from the clock and the thread.
    static RANDOM: Cell<u64> = Cell::new(seed());
}

/// The value the progress hook stops a call with; the caller turns it into the message.
pub(super) const TIMED_OUT: &str = "herd:call_timeout";

/// Sets (or clears) the deadline of the call on this thread.
pub(super) fn set_deadline(deadline: Option<Instant>) {
    DEADLINE.with(|d| d.set(deadline));
}

/// Pushes this thread's deadline back by `waited` (time spent on an HTTP request).
pub(super) fn extend_deadline(waited: Duration) {
    DEADLINE.with(|d| d.set(d.get().map(|t| t + waited)));
}

/// The engine every call of an agent shares, without `request` (the bridge adds it).
pub(super) fn engine() -> Engine {
    let mut engine = Engine::new();
    engine.disable_symbol("eval");
    engine.set_max_call_levels(64);
    engine.set_max_expr_depths(128, 64);
    engine.set_max_string_size(4 << 20);
    engine.set_max_array_size(100_000);
    engine.set_max_map_size(100_000);
    engine.on_print(|text| tracing::debug!(script = true, "{text}"));
    engine.on_debug(|text, _, at| tracing::debug!(script = true, %at, "{text}"));
    engine.on_progress(|ops| {
        if ops % CHECK_EVERY != 0 {
            return None;
        }
        let late = DEADLINE.with(|d| d.get().is_some_and(|t| Instant::now() > t));
        late.then(|| Dynamic::from(TIMED_OUT))
    });
    register_helpers(&mut engine);
    engine
}

fn register_helpers(engine: &mut Engine) {
    // Rhai's own `sleep` would block the call's thread outside the time limit's sight: a VU
    // waits with a `think` step instead. A registered function hides the package's.
    let no_sleep = || -> Result<(), Box<EvalAltResult>> {
        Err("sleep: scripts may not sleep; use a `think` step after the script step".into())
    };
    engine.register_fn("sleep", move |_: i64| no_sleep());
    engine.register_fn("sleep", move |_: f64| no_sleep());
    engine.register_fn("sha256", |data: ImmutableString| sha256(data.as_bytes()));
    engine.register_fn("sha256", |data: Blob| sha256(&data));
    engine.register_fn("hmac_sha256", |k: ImmutableString, m: ImmutableString| {
        hmac(k.as_bytes(), m.as_bytes())
    });
    engine.register_fn("hmac_sha256", |k: Blob, m: ImmutableString| {
        hmac(&k, m.as_bytes())
    });
    engine.register_fn("hmac_sha256", |k: ImmutableString, m: Blob| {
        hmac(k.as_bytes(), &m)
    });
    engine.register_fn("hmac_sha256", |k: Blob, m: Blob| hmac(&k, &m));
    engine.register_fn("hex", |data: Blob| hex(&data));
    engine.register_fn("hex", |data: ImmutableString| hex(data.as_bytes()));
    engine.register_fn("base64_encode", |data: Blob| b64().encode(data));
    engine.register_fn("base64_encode", |data: ImmutableString| {
        b64().encode(data.as_bytes())
    });
    engine.register_fn(
        "base64_decode",
        |text: ImmutableString| -> Result<Blob, Box<EvalAltResult>> {
            b64()
                .decode(text.as_bytes())
                .map_err(|e| format!("base64_decode: not valid base64: {e}").into())
        },
    );
    engine.register_fn("text", |data: Blob| -> Result<String, Box<EvalAltResult>> {
        String::from_utf8(data).map_err(|_| "text: the bytes are not UTF-8".into())
    });
    engine.register_fn("now_ms", || -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    });
    engine.register_fn("uuid", uuid);
    engine.register_fn("random", || -> f64 {
        // 53 random bits: every double in [0, 1) with equal spacing.
        (next_random() >> 11) as f64 / (1u64 << 53) as f64
    });
    engine.register_fn("random", |low: i64, high: i64| -> i64 {
        if high <= low {
            return low;
        }
        let span = high.abs_diff(low);
        low.wrapping_add_unsigned(next_random() % span)
    });
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn sha256(data: &[u8]) -> Blob {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

fn hmac(key: &[u8], message: &[u8]) -> Blob {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::sign(&key, message).as_ref().to_vec()
}

fn hex(data: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(data.len() * 2);
    for b in data {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// A random (version 4) UUID.
fn uuid() -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&next_random().to_le_bytes());
    bytes[8..].copy_from_slice(&next_random().to_le_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h = hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn seed() -> u64 {
    let mut x = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0x9E37_79B9_7F4A_7C15, |d| d.as_nanos() as u64);
    // Threads seeded in the same nanosecond still differ: mix in this thread-local's address.
    let here = std::ptr::addr_of!(x) as u64;
    x ^= here.rotate_left(32);
    x | 1
}

fn next_random() -> u64 {
    RANDOM.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}
