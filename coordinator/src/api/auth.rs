//! Who is calling, and what they may do.
//!
//! Two kinds of credential arrive as `Authorization: Bearer …`:
//! - **API tokens** (local mode): created by `herd token create --role … [--expires-in 30d]`,
//!   shown once, stored only as their SHA-256. A token is looked up by its hash on every request,
//!   so one revoked (`herd token revoke ID`) or past its expiry is refused at once (401).
//! - **JWTs** (Cognito in AWS mode): RS256, verified against the keys of a JWKS URL — signature,
//!   issuer, audience and expiry. Keys are cached; an unknown `kid` refetches the set (at most
//!   every [`REFETCH_AFTER`]), which is how key rotation is picked up. The role comes from the
//!   `cognito:groups` claim: a group named `operator` (or `herd-operator`) gives operator,
//!   anything else viewer.
//!
//! Viewers read; operators also write. 401 means "who are you?", 403 "not allowed".
//!
//! A browser signing in through Cognito's Hosted UI needs to know where it is: [`HostedUi`] is
//! what `GET /api/v1/auth/config` tells it (public values only: a domain and a client id).

use super::jwks::JwksClient;
use crate::store::{Role, Store, TokenRecord};
use herd_protocol::clock::Clock;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use ring::rand::SecureRandom;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How soon an unknown key id may trigger another JWKS fetch. Short, so that a token signed by a
/// freshly rotated key is accepted at once; but a flood of tokens with made-up key ids still
/// costs the JWKS host at most one fetch a second.
pub const REFETCH_AFTER: Duration = Duration::from_secs(1);

/// A refused credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Denied {
    /// `unauthenticated` (401) or `forbidden` (403).
    pub forbidden: bool,
    /// What is wrong, without echoing the credential.
    pub message: String,
}

fn unauthenticated(message: impl Into<String>) -> Denied {
    Denied {
        forbidden: false,
        message: message.into(),
    }
}

/// Where JWTs come from.
#[derive(Clone)]
pub struct JwtConfig {
    /// The JWKS URL (`https://…` or `http://…`; Cognito's is `{issuer}/.well-known/jwks.json`).
    pub jwks_url: String,
    /// What fetches it.
    pub client: JwksClient,
    /// The expected `iss`.
    pub issuer: String,
    /// The expected `aud`.
    pub audience: String,
}

/// Where a browser signs in with Cognito (authorization code + PKCE): published, unauthenticated,
/// by `GET /api/v1/auth/config`. Neither value is a secret (a public app client has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedUi {
    /// `https://DOMAIN.auth.REGION.amazoncognito.com` (or a custom domain).
    pub domain: String,
    /// The app client id: the `aud` of its ID tokens.
    pub client_id: String,
}

/// Who a credential is: its role and a name for it (a token's id, a JWT's `sub`), never the
/// credential itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// What it may do.
    pub role: Role,
    /// `tok-…` for an API token; the `cognito:username`, else `sub`, of a JWT.
    pub subject: String,
}

/// Checks credentials.
pub struct Auth {
    store: Arc<dyn Store>,
    jwt: Option<JwtConfig>,
    hosted_ui: Option<HostedUi>,
    clock: Clock,
    keys: Mutex<(HashMap<String, DecodingKey>, Option<Instant>)>,
}

impl Auth {
    /// Tokens from `store`, and JWTs when `jwt` is configured.
    pub fn new(store: Arc<dyn Store>, jwt: Option<JwtConfig>) -> Self {
        Self {
            store,
            jwt,
            hosted_ui: None,
            clock: Clock::new(),
            keys: Mutex::new((HashMap::new(), None)),
        }
    }

    /// Also tells browsers where Cognito's Hosted UI is.
    pub fn with_hosted_ui(mut self, hosted_ui: Option<HostedUi>) -> Self {
        self.hosted_ui = hosted_ui;
        self
    }

    /// The Hosted UI settings, when configured.
    pub fn hosted_ui(&self) -> Option<&HostedUi> {
        self.hosted_ui.as_ref()
    }

    /// The role of the caller, from the `Authorization` header's value.
    pub async fn role(&self, header: Option<&str>) -> Result<Role, Denied> {
        self.identify(header).await.map(|i| i.role)
    }

    /// Who the caller is, from the `Authorization` header's value.
    pub async fn identify(&self, header: Option<&str>) -> Result<Identity, Denied> {
        let header = header.ok_or_else(|| {
            unauthenticated("missing credential: send Authorization: Bearer <token>")
        })?;
        let token = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthenticated("the Authorization header must be Bearer <token>"))?;
        if token.split('.').count() == 3 {
            return self.jwt_identity(token).await;
        }
        match self.store.find_token(&hash_token(token)).await {
            Ok(Some(record)) => match record.refusal(self.clock.unix_ms()) {
                Some(why) => Err(unauthenticated(format!("{why} (token {})", record.id))),
                None => Ok(Identity {
                    role: record.role,
                    subject: record.id,
                }),
            },
            Ok(None) => Err(unauthenticated("unknown token")),
            Err(e) => {
                tracing::error!(error = %e, "cannot look up a token");
                Err(unauthenticated("cannot check the token now"))
            }
        }
    }

    async fn jwt_identity(&self, token: &str) -> Result<Identity, Denied> {
        let config = self
            .jwt
            .as_ref()
            .ok_or_else(|| unauthenticated("JWTs are not accepted: no JWKS is configured"))?;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| unauthenticated(format!("malformed JWT: {e}")))?;
        if header.alg != Algorithm::RS256 {
            return Err(unauthenticated("the JWT must be signed with RS256"));
        }
        let kid = header
            .kid
            .ok_or_else(|| unauthenticated("the JWT header has no kid"))?;
        let key = match self.cached_key(&kid) {
            Some(key) => key,
            None => {
                self.refresh(config).await?;
                self.cached_key(&kid)
                    .ok_or_else(|| unauthenticated(format!("no key {kid:?} in the JWKS")))?
            }
        };
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .map_err(|e| unauthenticated(format!("invalid JWT: {e}")))?;
        let groups = data.claims.get("cognito:groups").and_then(|g| g.as_array());
        let operator = groups.is_some_and(|g| {
            g.iter()
                .any(|v| matches!(v.as_str(), Some("operator" | "herd-operator")))
        });
        let subject = ["cognito:username", "sub"]
            .iter()
            .find_map(|c| data.claims.get(*c).and_then(|v| v.as_str()))
            .unwrap_or("jwt")
            .to_string();
        Ok(Identity {
            role: if operator {
                Role::Operator
            } else {
                Role::Viewer
            },
            subject,
        })
    }

    fn cached_key(&self, kid: &str) -> Option<DecodingKey> {
        let keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        keys.0.get(kid).cloned()
    }

    async fn refresh(&self, config: &JwtConfig) -> Result<(), Denied> {
        {
            let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
            if keys.1.is_some_and(|at| at.elapsed() < REFETCH_AFTER) {
                return Ok(());
            }
            keys.1 = Some(Instant::now());
        }
        let set = config.client.fetch(&config.jwks_url).await.map_err(|e| {
            tracing::warn!(url = %config.jwks_url, error = %e, "cannot fetch the JWKS");
            unauthenticated("cannot fetch the signing keys now")
        })?;
        let mut fresh = HashMap::new();
        for jwk in &set.keys {
            if let (Some(kid), Ok(key)) = (&jwk.common.key_id, DecodingKey::from_jwk(jwk)) {
                fresh.insert(kid.clone(), key);
            }
        }
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        keys.0 = fresh;
        Ok(())
    }
}

/// Hex SHA-256 of a token: what the store keeps.
pub fn hash_token(token: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new random token (shown once) and its record (stored), accepted until `expires_at_ms` if
/// given.
pub fn new_token(
    role: Role,
    now_ms: u64,
    expires_at_ms: Option<u64>,
) -> Result<(String, TokenRecord), String> {
    let mut secret = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut secret)
        .map_err(|_| "the system random generator failed".to_string())?;
    let token = format!("herd_{}", hex(&secret));
    let hash = hash_token(&token);
    let record = TokenRecord {
        id: format!("tok-{}", &hash[..12]),
        hash,
        role,
        created_at_ms: now_ms,
        expires_at_ms,
        revoked_at_ms: None,
    };
    Ok((token, record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EmbeddedStore;

    #[tokio::test]
    async fn tokens_are_checked_by_hash_and_roles_kept() {
        let store = Arc::new(EmbeddedStore::in_memory().expect("store"));
        let (token, record) = new_token(Role::Viewer, 1, None).expect("token");
        assert_ne!(record.hash, token, "only the hash is stored");
        let record_id = record.id.clone();
        store.create_token(record).await.expect("stored");
        let auth = Auth::new(store, None);
        assert_eq!(
            auth.role(Some(&format!("Bearer {token}"))).await,
            Ok(Role::Viewer)
        );
        assert_eq!(
            auth.identify(Some(&format!("Bearer {token}"))).await,
            Ok(Identity {
                role: Role::Viewer,
                subject: record_id
            })
        );
        for bad in [
            None,
            Some("Bearer nope"),
            Some(token.as_str()),
            Some("Bearer a.b.c"),
        ] {
            let denied = auth.role(bad).await.expect_err("refused");
            assert!(!denied.forbidden);
        }
    }

    #[tokio::test]
    async fn revoked_and_expired_tokens_are_refused_naming_why() {
        let store = Arc::new(EmbeddedStore::in_memory().expect("store"));
        let now = Clock::new().unix_ms();
        let (expired, record) = new_token(Role::Operator, 1, Some(now - 1)).expect("token");
        store.create_token(record).await.expect("stored");
        let (revoked, record) = new_token(Role::Operator, 1, Some(now + 3_600_000)).expect("t");
        let revoked_id = record.id.clone();
        store.create_token(record).await.expect("stored");
        let auth = Auth::new(store.clone(), None);
        let bearer = |t: &str| format!("Bearer {t}");
        assert_eq!(
            auth.role(Some(&bearer(&revoked))).await,
            Ok(Role::Operator),
            "valid until revoked"
        );
        assert!(store.revoke_token(&revoked_id, now).await.expect("revoke"));
        let denied = auth
            .role(Some(&bearer(&revoked)))
            .await
            .expect_err("revoked");
        assert!(denied.message.contains("revoked"), "{}", denied.message);
        let denied = auth
            .role(Some(&bearer(&expired)))
            .await
            .expect_err("expired");
        assert!(denied.message.contains("expired"), "{}", denied.message);
        assert!(
            !denied.message.contains(&expired),
            "the token is not echoed"
        );
    }
}
