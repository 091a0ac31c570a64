//! Authentication: JWT bearer tokens, verified with an HS256 secret or an Ed25519 public key
//! from the configuration. The algorithm is fixed by the configuration, never taken from the
//! token. `sub` names the user; `exp` is required.
//!
//! Development mode (`--dev-auth`, loopback only) can also mint HS256 tokens for a named local
//! user; the secret is the configured one or one generated once into the data directory.

use std::path::Path;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// An authenticated user (the token's `sub`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User(pub String);

/// The claims Cairn reads and, in development mode, writes.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
}

/// Why a token was refused. Shown to the client in general terms only.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid or expired token")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    #[error("the token's subject is not a valid user id")]
    BadSubject,
    #[error("this server cannot mint tokens (development mode is off)")]
    CannotMint,
    #[error("bad key configuration: {0}")]
    Config(String),
}

/// Verifies (and in development mode mints) tokens.
pub struct Authenticator {
    decoding: DecodingKey,
    validation: Validation,
    encoding: Option<EncodingKey>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("algorithms", &self.validation.algorithms)
            .field("can_mint", &self.encoding.is_some())
            .finish()
    }
}

impl Authenticator {
    /// HS256 with a shared secret; `mint` enables [`Authenticator::mint`].
    pub fn hs256(secret: &[u8], mint: bool) -> Result<Self, AuthError> {
        if secret.len() < 32 {
            return Err(AuthError::Config(
                "the HS256 secret must be at least 32 bytes".into(),
            ));
        }
        Ok(Self {
            decoding: DecodingKey::from_secret(secret),
            validation: validation(Algorithm::HS256),
            encoding: mint.then(|| EncodingKey::from_secret(secret)),
        })
    }

    /// EdDSA (Ed25519) with a PEM public key; cannot mint.
    pub fn ed25519(public_key_pem: &[u8]) -> Result<Self, AuthError> {
        let decoding = DecodingKey::from_ed_pem(public_key_pem)
            .map_err(|e| AuthError::Config(format!("Ed25519 public key: {e}")))?;
        Ok(Self {
            decoding,
            validation: validation(Algorithm::EdDSA),
            encoding: None,
        })
    }

    /// Also require these issuers / audiences.
    /// (jsonwebtoken only checks a claim that is present, so a configured one is also made
    /// required: a token without it is refused.)
    pub fn require(mut self, issuer: Option<&str>, audience: Option<&str>) -> Self {
        if let Some(iss) = issuer {
            self.validation.set_issuer(&[iss]);
            self.validation
                .required_spec_claims
                .insert("iss".to_owned());
        }
        if let Some(aud) = audience {
            self.validation.set_audience(&[aud]);
            self.validation.validate_aud = true;
            self.validation
                .required_spec_claims
                .insert("aud".to_owned());
        }
        self
    }

    /// The user a bearer token stands for.
    pub fn verify(&self, token: &str) -> Result<User, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(AuthError::Invalid)?;
        valid_user(&data.claims.sub)
            .then_some(User(data.claims.sub))
            .ok_or(AuthError::BadSubject)
    }

    /// A token for `user`, valid for `ttl` (development mode only).
    pub fn mint(&self, user: &str, ttl: Duration) -> Result<String, AuthError> {
        let key = self.encoding.as_ref().ok_or(AuthError::CannotMint)?;
        if !valid_user(user) {
            return Err(AuthError::BadSubject);
        }
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user.to_owned(),
            exp: now + ttl.as_secs(),
            iat: Some(now),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key)
            .map_err(AuthError::Invalid)
    }

    pub fn can_mint(&self) -> bool {
        self.encoding.is_some()
    }
}

fn validation(algorithm: Algorithm) -> Validation {
    let mut v = Validation::new(algorithm);
    v.set_required_spec_claims(&["exp", "sub"]);
    v.validate_aud = false;
    v.leeway = 30;
    v
}

/// User ids: 1–128 printable characters, no whitespace or control characters.
pub fn valid_user(user: &str) -> bool {
    (1..=128).contains(&user.chars().count())
        && user.chars().all(|c| !c.is_whitespace() && !c.is_control())
}

/// The development-mode secret: `<data_dir>/dev-jwt-secret`, created (random, 0600) if needed.
pub fn dev_secret(data_dir: &Path) -> std::io::Result<Vec<u8>> {
    let path = data_dir.join("dev-jwt-secret");
    if let Ok(hex_secret) = std::fs::read_to_string(&path)
        && let Ok(secret) = hex::decode(hex_secret.trim())
        && secret.len() >= 32
    {
        return Ok(secret);
    }
    std::fs::create_dir_all(data_dir)?;
    let mut secret = vec![0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| std::io::Error::other(e.to_string()))?;
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(hex::encode(&secret).as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn minted_tokens_verify_and_forged_ones_do_not() {
        let auth = Authenticator::hs256(SECRET, true).unwrap();
        let token = auth.mint("alice", Duration::from_secs(60)).unwrap();
        assert_eq!(auth.verify(&token).unwrap(), User("alice".into()));
        let other = Authenticator::hs256(b"another secret, also 32 bytes long!", true).unwrap();
        let forged = other.mint("alice", Duration::from_secs(60)).unwrap();
        assert!(matches!(auth.verify(&forged), Err(AuthError::Invalid(_))));
        assert!(auth.verify("not.a.token").is_err());
    }

    #[test]
    fn expired_tokens_and_bad_subjects_are_refused() {
        let auth = Authenticator::hs256(SECRET, true).unwrap();
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: "alice".into(),
            exp: now - 3600,
            iat: None,
        };
        let expired = jsonwebtoken::encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert!(matches!(auth.verify(&expired), Err(AuthError::Invalid(_))));
        assert!(matches!(
            auth.mint("has space", Duration::from_secs(1)),
            Err(AuthError::BadSubject)
        ));
    }

    #[test]
    fn the_algorithm_comes_from_the_configuration() {
        // An HS256 token must not pass an Ed25519 verifier (no algorithm confusion).
        let pem = b"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
        let ed = Authenticator::ed25519(pem).unwrap();
        let hs = Authenticator::hs256(SECRET, true).unwrap();
        assert!(
            ed.verify(&hs.mint("alice", Duration::from_secs(60)).unwrap())
                .is_err()
        );
        assert!(!ed.can_mint());
    }

    /// A test key pair (generated with `openssl genpkey -algorithm ed25519`).
    const ED_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAk95Pa8bEbZKFw1APmUuEtVQ/4MBPzPvWNjo9fu5w8v\n-----END PRIVATE KEY-----\n";
    const ED_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAomG97JB2O6kYmrM4lIDpG9Q8iQi2Qxvktc5SRS1Fmx4=\n-----END PUBLIC KEY-----\n";

    #[test]
    fn ed25519_tokens_from_the_identity_provider_verify() {
        let auth = Authenticator::ed25519(ED_PUBLIC.as_bytes()).unwrap();
        let key = EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap();
        let exp = jsonwebtoken::get_current_timestamp() + 600;
        let claims = Claims {
            sub: "carol".into(),
            exp,
            iat: None,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &key).unwrap();
        assert_eq!(auth.verify(&token).unwrap(), User("carol".into()));
        // Same claims signed with another key: refused.
        let other = Authenticator::ed25519(
            b"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n",
        )
        .unwrap();
        assert!(other.verify(&token).is_err());
    }

    #[test]
    fn issuer_and_audience_are_enforced_when_configured() {
        let auth = Authenticator::hs256(SECRET, true)
            .unwrap()
            .require(Some("https://idp"), Some("cairn"));
        let exp = jsonwebtoken::get_current_timestamp() + 600;
        let sign = |claims: serde_json::Value| {
            jsonwebtoken::encode(
                &Header::default(),
                &claims,
                &EncodingKey::from_secret(SECRET),
            )
            .unwrap()
        };
        let good = sign(
            serde_json::json!({ "sub": "a", "exp": exp, "iss": "https://idp", "aud": "cairn" }),
        );
        assert!(auth.verify(&good).is_ok());
        let wrong_aud = sign(
            serde_json::json!({ "sub": "a", "exp": exp, "iss": "https://idp", "aud": "other" }),
        );
        assert!(auth.verify(&wrong_aud).is_err());
        let no_iss = sign(serde_json::json!({ "sub": "a", "exp": exp, "aud": "cairn" }));
        assert!(auth.verify(&no_iss).is_err());
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(matches!(
            Authenticator::hs256(b"short", false),
            Err(AuthError::Config(_))
        ));
    }
}
