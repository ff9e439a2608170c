//! The storage root: a local path or an object-store URL.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;

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
