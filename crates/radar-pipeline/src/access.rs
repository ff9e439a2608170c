//! API keys and roles: who may do what through the HTTP API.
//!
//! A key reads `rk_<id>_<secret>`: 8 hex characters that find it, 64 that
//! prove it (32 bytes from the operating system's random source). The
//! store keeps each key's id, name, role, creation, expiry and revocation
//! and the SHA-256 of its secret — never the secret, which is shown once,
//! when the key is made. A presented key is found by its id and its
//! secret's hash compared in constant time, so timing does not tell how
//! much of a guess was right.
//!
//! Roles: `ingest` (send events), `score` (score events, see scores and
//! explanations), `read` (alerts, models, runs, labels, drift), `label`
//! (record verdicts) and `admin`, which may do all of it.
//!
//! Also the deployment's entity secret ([`entity_hasher`]): the key of the
//! hash that places each entity's feature state.

use radar_registry::meta::{MetaDb, MetaError, Migration, Target};
use radar_registry::meta_params;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;

use crate::error::{PipelineError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Ingest,
    Score,
    Read,
    Label,
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Ingest,
        Role::Score,
        Role::Read,
        Role::Label,
        Role::Admin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Score => "score",
            Role::Read => "read",
            Role::Label => "label",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| {
                PipelineError::input(format!(
                    "role `{s}`: expected one of ingest, score, read, label, admin"
                ))
            })
    }

    /// Whether a key of this role may do what needs `needed`.
    pub fn allows(self, needed: Role) -> bool {
        self == Role::Admin || self == needed
    }
}

/// A key as listed (without its secret).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// UTC µs.
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A key just made: the only time its whole text is known.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub key: String,
    pub info: KeyInfo,
}

/// Why a presented key does not open the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    Missing,
    Malformed,
    /// Unknown, revoked, or its secret is wrong: told apart by nobody.
    Invalid,
    Expired,
}

impl Denied {
    pub fn message(self) -> &'static str {
        match self {
            Denied::Missing => "this endpoint needs an API key: send `Authorization: Bearer <key>`",
            Denied::Malformed => "the API key is malformed: expected `rk_<id>_<secret>`",
            Denied::Invalid => "the API key is not valid (unknown or revoked)",
            Denied::Expired => "the API key has expired",
        }
    }
}

/// The active keys, for checking requests without touching the store.
#[derive(Debug, Default, Clone)]
pub struct Keys {
    by_id: HashMap<String, ActiveKey>,
}

#[derive(Debug, Clone)]
struct ActiveKey {
    digest: [u8; 32],
    role: Role,
    expires_at: Option<i64>,
}

impl Keys {
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The id and role of `presented` at `now` (UTC µs), or why not.
    pub fn check<'k>(
        &self,
        presented: Option<&'k str>,
        now: i64,
    ) -> std::result::Result<(&'k str, Role), Denied> {
        let presented = presented.ok_or(Denied::Missing)?;
        let (id, secret) = split_key(presented).ok_or(Denied::Malformed)?;
        let key = self.by_id.get(id).ok_or(Denied::Invalid)?;
        if !same_digest(&digest(secret), &key.digest) {
            return Err(Denied::Invalid);
        }
        if key.expires_at.is_some_and(|e| now >= e) {
            return Err(Denied::Expired);
        }
        Ok((id, key.role))
    }
}

fn split_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("rk_")?;
    let (id, secret) = rest.split_once('_')?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(id, 8) && hex(secret, 64)).then_some((id, secret))
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Equal digests, in time that does not depend on where they differ.
fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The environment variable that gives every worker of a deployment the
/// same entity secret (32 hex characters).
pub const ENTITY_SECRET_ENV: &str = "RADAR_ENTITY_SECRET";

/// The deployment's entity hasher: the secret from [`ENTITY_SECRET_ENV`],
/// else from `file`, made on first use (random, readable by the owner
/// only). Feature state checkpoints are tied to it.
pub fn entity_hasher(file: &Path) -> Result<radar_core::hash::EntityHasher> {
    entity_hasher_from(std::env::var(ENTITY_SECRET_ENV).ok(), file)
}

fn entity_hasher_from(env: Option<String>, file: &Path) -> Result<radar_core::hash::EntityHasher> {
    let parse = |text: &str, from: &str| -> Result<radar_core::hash::EntityHasher> {
        let text = text.trim();
        let bytes: Option<Vec<u8>> = (text.len() == 32 && text.is_ascii())
            .then(|| {
                (0..16)
                    .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
                    .collect()
            })
            .flatten();
        let secret: [u8; 16] = bytes.and_then(|b| b.try_into().ok()).ok_or_else(|| {
            PipelineError::input(format!(
                "{from}: the entity secret must be 32 hexadecimal characters"
            ))
        })?;
        Ok(radar_core::hash::EntityHasher::new(secret))
    };
    if let Some(text) = env {
        return parse(&text, ENTITY_SECRET_ENV);
    }
    match std::fs::read_to_string(file) {
        Ok(text) => return parse(&text, &file.display().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(PipelineError::io(file.display())(e)),
    }
    let mut secret = [0u8; 16];
    getrandom::fill(&mut secret).map_err(|e| {
        PipelineError::Internal(format!("the operating system gave no random bytes: {e}"))
    })?;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(PipelineError::io(dir.display()))?;
    }
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    match open.open(file) {
        Ok(mut f) => {
            use std::io::Write;
            f.write_all(format!("{}\n", hex(&secret)).as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(PipelineError::io(file.display()))?;
            Ok(radar_core::hash::EntityHasher::new(secret))
        }
        // Another process of this deployment made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(file).map_err(PipelineError::io(file.display()))?;
            parse(&text, &file.display().to_string())
        }
        Err(e) => Err(PipelineError::io(file.display())(e)),
    }
}

fn meta_err(e: MetaError) -> PipelineError {
    PipelineError::Registry(radar_registry::RegistryError::Db(e))
}

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sqlite: "
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    digest BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER
);
",
    postgres: "
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    digest BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);
",
}];

/// API keys (their SHA-256 digests, never the keys) in the metadata store.
#[derive(Clone)]
pub struct KeyStore {
    db: MetaDb,
}

impl KeyStore {
    pub fn open(target: impl Into<Target>) -> Result<KeyStore> {
        Ok(KeyStore {
            db: MetaDb::open(&target.into(), "keys", MIGRATIONS).map_err(meta_err)?,
        })
    }

    pub fn create(&self, name: &str, role: Role, expires_at: Option<i64>) -> Result<NewKey> {
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err(PipelineError::input(
                "a key's name must be 1 to 100 printable characters",
            ));
        }
        let mut bytes = [0u8; 36];
        getrandom::fill(&mut bytes).map_err(|e| {
            PipelineError::Internal(format!("the operating system gave no random bytes: {e}"))
        })?;
        let (id, secret) = (hex(&bytes[..4]), hex(&bytes[4..]));
        let info = KeyInfo {
            id: id.clone(),
            name: name.to_owned(),
            role,
            created_at: radar_core::time::now_micros(),
            expires_at,
            revoked_at: None,
        };
        self.db
            .execute(
                "INSERT INTO api_keys (id, name, role, digest, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                meta_params![
                    &id,
                    &info.name,
                    role.name(),
                    digest(&secret).to_vec(),
                    info.created_at,
                    expires_at
                ],
            )
            .map_err(meta_err)?;
        Ok(NewKey {
            key: format!("rk_{id}_{secret}"),
            info,
        })
    }

    pub fn list(&self) -> Result<Vec<KeyInfo>> {
        let rows = self
            .db
            .query(
                "SELECT id, name, role, created_at, expires_at, revoked_at FROM api_keys ORDER BY created_at, id",
                &[],
            )
            .map_err(meta_err)?;
        rows.iter()
            .map(|r| {
                let role: String = r.get(2).map_err(meta_err)?;
                Ok(KeyInfo {
                    id: r.get(0).map_err(meta_err)?,
                    name: r.get(1).map_err(meta_err)?,
                    role: Role::parse(&role)?,
                    created_at: r.get(3).map_err(meta_err)?,
                    expires_at: r.get(4).map_err(meta_err)?,
                    revoked_at: r.get(5).map_err(meta_err)?,
                })
            })
            .collect()
    }

    pub fn revoke(&self, id: &str) -> Result<()> {
        let n = self
            .db
            .execute(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
                meta_params![id, radar_core::time::now_micros()],
            )
            .map_err(meta_err)?;
        if n == 0 {
            return Err(PipelineError::NotFound(format!(
                "no API key with id `{id}`"
            )));
        }
        Ok(())
    }

    pub fn active(&self) -> Result<Keys> {
        let rows = self
            .db
            .query(
                "SELECT id, role, digest, expires_at FROM api_keys WHERE revoked_at IS NULL",
                &[],
            )
            .map_err(meta_err)?;
        let mut by_id = HashMap::new();
        for r in rows {
            let id: String = r.get(0).map_err(meta_err)?;
            let role: String = r.get(1).map_err(meta_err)?;
            let d: Vec<u8> = r.get(2).map_err(meta_err)?;
            let digest: [u8; 32] = d.try_into().map_err(|_| {
                PipelineError::Internal(format!("API key `{id}`: a stored digest is not 32 bytes"))
            })?;
            by_id.insert(
                id,
                ActiveKey {
                    digest,
                    role: Role::parse(&role)?,
                    expires_at: r.get(3).map_err(meta_err)?,
                },
            );
        }
        Ok(Keys { by_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entity_secret_is_made_once_kept_private_and_overridable() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data/entity.secret");
        let first = entity_hasher_from(None, &file).unwrap();
        assert_eq!(entity_hasher_from(None, &file).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "readable by others: {mode:o}");
        }
        let given = "000102030405060708090a0b0c0d0e0f".to_owned();
        let from_env = entity_hasher_from(Some(given), &file).unwrap();
        assert_ne!(from_env, first);
        assert_eq!(
            from_env,
            radar_core::hash::EntityHasher::new(std::array::from_fn(|i| i as u8))
        );
        let e = entity_hasher_from(Some("xyz".into()), &file).unwrap_err();
        assert!(e.to_string().contains("32 hexadecimal"), "{e}");
        std::fs::write(&file, "short\n").unwrap();
        let e = entity_hasher_from(None, &file).unwrap_err();
        assert!(e.to_string().contains("entity.secret"), "{e}");
    }

    #[test]
    fn keys_open_by_role_until_revoked_or_expired() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path().join("keys.db")).unwrap();
        let now = radar_core::time::now_micros();
        let ingest = store.create("feeder", Role::Ingest, None).unwrap();
        let admin = store.create("ops", Role::Admin, None).unwrap();
        let brief = store.create("brief", Role::Read, Some(now + 1000)).unwrap();
        let keys = store.active().unwrap();
        assert_eq!(
            keys.check(Some(&ingest.key), now).map(|g| g.1),
            Ok(Role::Ingest)
        );
        assert!(Role::Ingest.allows(Role::Ingest) && !Role::Ingest.allows(Role::Score));
        assert!(Role::ALL.iter().all(|&r| Role::Admin.allows(r)));
        assert_eq!(
            keys.check(Some(&admin.key), now).map(|g| g.1),
            Ok(Role::Admin)
        );
        assert_eq!(
            keys.check(Some(&brief.key), now).map(|g| g.1),
            Ok(Role::Read)
        );
        assert_eq!(
            keys.check(Some(&brief.key), now + 1000),
            Err(Denied::Expired)
        );
        assert_eq!(keys.check(None, now), Err(Denied::Missing));
        assert_eq!(keys.check(Some("Bearer x"), now), Err(Denied::Malformed));
        // The right id with a wrong secret.
        let mut forged = ingest.key.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == '0' { '1' } else { '0' });
        assert_eq!(keys.check(Some(&forged), now), Err(Denied::Invalid));

        store.revoke(&ingest.info.id).unwrap();
        store.revoke(&ingest.info.id).unwrap();
        let keys = store.active().unwrap();
        assert_eq!(keys.check(Some(&ingest.key), now), Err(Denied::Invalid));
        assert!(matches!(
            store.revoke("ffffffff"),
            Err(PipelineError::NotFound(_))
        ));
        let listed = store.list().unwrap();
        assert_eq!(listed.len(), 3);
        assert!(listed[0].revoked_at.is_some() && listed[1].revoked_at.is_none());
        // The secret is nowhere in the store.
        let bytes = std::fs::read(dir.path().join("keys.db")).unwrap();
        let secret = admin.key.rsplit('_').next().unwrap();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
        assert!(store.create("", Role::Read, None).is_err());
        assert!(Role::parse("root").is_err());
    }
}
