//! `herd token create | list | revoke`: API tokens in the store of the `herd up` that accepts
//! them (its data directory, or the store `herd.toml` names: DynamoDB in AWS mode).
//!
//! A token is printed once by `create` and only its hash is kept; `list` shows ids, roles and
//! times, never a token. `revoke ID` refuses the token from the next request on: the API looks
//! tokens up on every request, so there is no cache to wait for. Each change is written to the
//! audit log with the actor `cli:$USER`.

use super::config;
use super::exit::Code;
use herd::adapters::{open_store, sdk_for};
use herd::local::coordinator_id;
use herd_coordinator::api::auth;
use herd_coordinator::store::{AuditEntry, Role, Store};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where the tokens are: the options every `herd token` command takes.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// The store of the `herd up` that will accept it: its data directory…
    #[arg(long, env = "HERD_DATA_DIR", default_value = ".herd")]
    data_dir: PathBuf,
    /// …and its configuration file, when its `[store]` is DynamoDB (else `HERD_CONFIG`, else
    /// `HERD_CONFIG_TOML`, as `herd up` reads them).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Arguments of `herd token create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// What the token may do: viewer (read) or operator (read and write).
    #[arg(long)]
    role: String,
    /// How long it is accepted (`30d`, `12h`, `90m`); without it, until revoked.
    #[arg(long)]
    expires_in: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
}

/// Arguments of `herd token revoke`.
#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    /// The token's id (`tok-…`, as `create` and `list` print it).
    id: String,
    #[command(flatten)]
    store: StoreArgs,
}

/// A lifetime: a plan duration (`90s`, `12h`) or whole days (`30d`).
fn lifetime(text: &str) -> Result<Duration, String> {
    if let Some(days) = text.strip_suffix('d') {
        return days
            .parse::<u64>()
            .ok()
            .filter(|d| *d > 0)
            .map(|d| Duration::from_secs(d * 86_400))
            .ok_or_else(|| format!("{text:?} is not a number of days like 30d"));
    }
    match herd_protocol::duration::parse(text) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("must be longer than zero".into()),
        Err(e) => Err(e),
    }
}

/// Runs `op` on the store `args` names.
fn with_store<T>(
    args: &StoreArgs,
    op: impl AsyncFnOnce(Arc<dyn Store>) -> anyhow::Result<T>,
) -> anyhow::Result<Result<T, Code>> {
    let config = match config::load(config::source(args.config.as_deref()).as_ref())? {
        Ok(config) => config,
        Err(code) => return Ok(Err(code)),
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let sdk = sdk_for(&config).await?;
            let owner = coordinator_id(&args.data_dir);
            let store = open_store(&config, sdk.as_ref(), &args.data_dir, &owner).await?;
            op(store).await.map(Ok)
        })
}

/// Records a token change in the audit log.
async fn audit(store: &dyn Store, now: u64, action: String) -> anyhow::Result<()> {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let entry = AuditEntry {
        id: format!("cli-{now}-{}", std::process::id()),
        at_ms: now,
        actor: format!("cli:{user}"),
        action,
        status: 200,
    };
    store.append_audit(entry).await?;
    Ok(())
}

/// `herd token create`.
pub fn create(args: CreateArgs) -> anyhow::Result<Code> {
    let role: Role = match args.role.parse() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("herd: --role: {e}");
            return Ok(Code::Invalid);
        }
    };
    let expires_in = match args.expires_in.as_deref().map(lifetime).transpose() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("herd: --expires-in: {e}");
            return Ok(Code::Invalid);
        }
    };
    let now = herd_protocol::clock::Clock::new().unix_ms();
    let expires_at_ms = expires_in.map(|d| now.saturating_add(d.as_millis() as u64));
    let (token, record) = auth::new_token(role, now, expires_at_ms).map_err(anyhow::Error::msg)?;
    let id = record.id.clone();
    let created = with_store(&args.store, async |store| {
        store.create_token(record).await?;
        audit(&*store, now, format!("token.create {id} ({role})")).await
    })?;
    if let Err(code) = created {
        return Ok(code);
    }
    let until = expires_at_ms.map_or(String::new(), |at| format!(", expires at {at} ms"));
    eprintln!("herd: created {role} token {id}{until} (shown once; only its hash is stored)");
    println!("{token}");
    Ok(Code::Passed)
}

/// `herd token revoke ID`.
pub fn revoke(args: RevokeArgs) -> anyhow::Result<Code> {
    let now = herd_protocol::clock::Clock::new().unix_ms();
    let id = args.id.clone();
    let found = with_store(&args.store, async |store| {
        let found = store.revoke_token(&id, now).await?;
        if found {
            audit(&*store, now, format!("token.revoke {id}")).await?;
        }
        anyhow::Ok(found)
    })?;
    match found {
        Err(code) => Ok(code),
        Ok(true) => {
            eprintln!("herd: revoked token {}", args.id);
            Ok(Code::Passed)
        }
        Ok(false) => {
            eprintln!("herd: no token {} (herd token list shows them)", args.id);
            Ok(Code::Invalid)
        }
    }
}

/// `herd token list`: one line per token, `ID ROLE STATE`.
pub fn list(args: StoreArgs) -> anyhow::Result<Code> {
    let now = herd_protocol::clock::Clock::new().unix_ms();
    let tokens = match with_store(&args, async |store| Ok(store.list_tokens().await?))? {
        Ok(t) => t,
        Err(code) => return Ok(code),
    };
    for t in tokens {
        let state = match (t.refusal(now), t.expires_at_ms) {
            (Some(why), _) => why.trim_start_matches("the token ").to_string(),
            (None, Some(at)) => format!("active until {at} ms"),
            (None, None) => "active".to_string(),
        };
        println!("{}\t{}\t{state}", t.id, t.role);
    }
    Ok(Code::Passed)
}
