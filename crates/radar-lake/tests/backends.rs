//! The lake suite on object storage: S3 (a local S3-compatible server) and
//! Azure Blob (Azurite), both started by `scripts/test`.

use radar_lake::{Lake, testing};

fn unique() -> String {
    format!(
        "run-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

fn endpoint(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) => Some(v),
        Err(_) if std::env::var_os("RADAR_SKIP_OBJECT_STORES").is_some() => {
            eprintln!("{var} not set: this backend was NOT checked (RADAR_SKIP_OBJECT_STORES set)");
            None
        }
        Err(_) => {
            panic!("set {var} (scripts/test starts the emulators), or RADAR_SKIP_OBJECT_STORES=1")
        }
    }
}

#[tokio::test]
async fn lake_suite_on_s3() {
    let Some(endpoint) = endpoint("RADAR_S3_ENDPOINT") else {
        return;
    };
    let opts: Vec<(String, String)> = [
        ("aws_endpoint", endpoint.as_str()),
        ("aws_allow_http", "true"),
        ("aws_region", "us-east-1"),
        ("aws_access_key_id", "radar"),
        ("aws_secret_access_key", "radar"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let lake = Lake::open(&format!("s3://radar/{}", unique()), &opts).unwrap();
    testing::suite(&lake).await;
}

#[tokio::test]
async fn lake_suite_on_azure_blob() {
    if endpoint("RADAR_AZURITE_ENDPOINT").is_none() {
        return;
    }
    let opts = vec![("azure_storage_use_emulator".to_string(), "true".to_string())];
    let lake = Lake::open(&format!("az://radar/{}", unique()), &opts).unwrap();
    testing::suite(&lake).await;
}
