//! The storage root: a local path or an object-store URL.

use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::LakeError;

/// The directory of a local storage root (`None` for object stores), so
/// writers can make their files durable: object_store's local backend
/// renames finished files into place but does not `fsync` them.
pub fn local_dir(root: &str) -> Option<std::path::PathBuf> {
    (!root.contains("://") || root.starts_with("file://"))
        .then(|| std::path::PathBuf::from(root.strip_prefix("file://").unwrap_or(root)))
}

/// Makes `path` (relative to the local root `dir`) and its directory
/// durable.
pub fn sync_local(dir: &std::path::Path, path: &Path) -> std::io::Result<()> {
    let file = dir.join(path.as_ref());
    std::fs::File::open(&file)?.sync_all()?;
    match file.parent() {
        Some(parent) => std::fs::File::open(parent)?.sync_all(),
        None => Ok(()),
    }
}

/// Opens the storage root `root`: a local directory (`./radar-data`,
/// `/var/lib/radar`, `file:///…`), or `s3://bucket/prefix`,
/// `az://container/prefix` (also `abfss://`, `azure://`), `gs://bucket/prefix`.
/// Object stores read credentials from the environment (`AWS_*`,
/// `AZURE_*`, `GOOGLE_*`); `options` adds or overrides keys (e.g.
/// `aws_endpoint`, `aws_allow_http`, `azure_storage_use_emulator`).
pub fn open(
    root: &str,
    options: &[(String, String)],
) -> Result<(Arc<dyn ObjectStore>, Path), LakeError> {
    let is_url = root.contains("://") && !root.starts_with("file://");
    if !is_url {
        let dir = root.strip_prefix("file://").unwrap_or(root);
        std::fs::create_dir_all(dir).map_err(|source| LakeError::Local {
            path: dir.to_owned(),
            source,
        })?;
        let store = LocalFileSystem::new_with_prefix(dir)?.with_automatic_cleanup(true);
        return Ok((Arc::new(store), Path::default()));
    }
    let url = url::Url::parse(root).map_err(|e| LakeError::Root {
        root: root.to_owned(),
        detail: format!("not a storage URL: {e}"),
    })?;
    let mut opts: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("AWS_") || k.starts_with("AZURE_") || k.starts_with("GOOGLE_")
        })
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    opts.extend(options.iter().cloned());
    let (store, prefix) =
        object_store::parse_url_opts(&url, opts).map_err(|e| LakeError::Root {
            root: root.to_owned(),
            detail: e.to_string(),
        })?;
    Ok((Arc::from(store), prefix))
}

/// Small whole files under a folder of the storage root (the scorer's
/// per-partition checkpoints): written whole (object stores replace an
/// object atomically; locally the file is renamed into place and made
/// durable), read whole, a missing one is `None`.
#[derive(Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    local: Option<std::path::PathBuf>,
    timeout: std::time::Duration,
}

impl Blobs {
    /// The folder `folder` (slash-separated) of the storage root `root`.
    pub fn open(
        root: &str,
        options: &[(String, String)],
        folder: &str,
    ) -> Result<Blobs, LakeError> {
        let (store, mut prefix) = open(root, options)?;
        for part in folder.split('/').filter(|p| !p.is_empty()) {
            prefix = prefix.join(part);
        }
        Ok(Blobs {
            store,
            prefix,
            local: local_dir(root),
            timeout: std::time::Duration::from_secs(30),
        })
    }

    /// Where `name` is kept, for messages.
    pub fn describe(&self, name: &str) -> String {
        self.prefix.clone().join(name).to_string()
    }

    /// Replaces `name` with `bytes`, durably; the new version's tag (see
    /// [`Blobs::tag`]).
    pub async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<Option<String>, LakeError> {
        let path = self.prefix.clone().join(name);
        let put = timed(
            self.timeout,
            "writing a file",
            self.store.put(&path, object_store::PutPayload::from(bytes)),
        )
        .await?;
        if let Some(dir) = &self.local {
            sync_local(dir, &path).map_err(|source| LakeError::Local {
                path: dir.join(path.as_ref()).display().to_string(),
                source,
            })?;
        }
        Ok(put.e_tag)
    }

    /// The bytes of `name` and their version's tag, `None` when there is
    /// no such file.
    pub async fn get(&self, name: &str) -> Result<Option<(Vec<u8>, Option<String>)>, LakeError> {
        let path = self.prefix.clone().join(name);
        let got = tokio::time::timeout(self.timeout, async {
            match self.store.get(&path).await {
                Ok(r) => {
                    let tag = r.meta.e_tag.clone();
                    r.bytes().await.map(|b| Some((b.to_vec(), tag)))
                }
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await
        .map_err(|_| LakeError::TimedOut {
            what: "reading a file",
            after: self.timeout,
        })??;
        Ok(got)
    }

    /// Which version of `name` is stored (its entity tag: it changes with
    /// every write), without reading it: `None` when there is no such
    /// file, `Some(None)` when the store keeps no tags.
    pub async fn tag(&self, name: &str) -> Result<Option<Option<String>>, LakeError> {
        let path = self.prefix.clone().join(name);
        match timed(
            self.timeout,
            "reading a file's metadata",
            self.store.head(&path),
        )
        .await
        {
            Ok(meta) => Ok(Some(meta.e_tag)),
            Err(LakeError::Storage(object_store::Error::NotFound { .. })) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// `call`, failed as a storage error when it takes longer than `timeout`
/// (a store that accepts connections and never answers must not stall a
/// caller for good).
pub(crate) async fn timed<T>(
    timeout: std::time::Duration,
    what: &'static str,
    call: impl std::future::Future<Output = Result<T, object_store::Error>>,
) -> Result<T, LakeError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(LakeError::TimedOut {
            what,
            after: timeout,
        }),
    }
}
