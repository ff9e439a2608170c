//! Training with labels, through the real log, lake and registry: the
//! point-in-time rule (a label known after T never reaches a model trained
//! as of T), and what happens with too few labels.

use radar_core::labels::Label;
use radar_core::synth::transactions::{LabelPolicy, TransactionSpec, Transactions, team_labels};
use radar_log::Record;
use radar_pipeline::Config;
use radar_pipeline::train::{self, TrainSpec};

pub(crate) const DECLARATION: &str = include_str!("../../../../examples/transactions.toml");
/// With windowed and label-derived (`label_rate`) features.
const WINDOWS: &str = include_str!("../../../../examples/transactions-windows.toml");

/// A stream with history captured to the lake and its team labels
/// recorded; returns the config, every event id and the labels.
pub(crate) fn stream(dir: &std::path::Path, declaration: &str) -> (Config, Vec<Label>) {
    let mut config: Config = toml::from_str(declaration).unwrap();
    config.storage.root = dir.to_str().unwrap().to_owned();
    let schema = config.stream(None).unwrap();
    let spec = TransactionSpec {
        cardholders: 800,
        days: 20.0,
        fraud_rate: 0.02,
        seed: 5,
        ..TransactionSpec::default()
    };
    let log = config.open_log().unwrap();
    log.create_topic(&schema.name, config.log.partitions)
        .unwrap();
    let mut records = Vec::new();
    let mut labels = Vec::new();
    let mut line = String::new();
    for tx in Transactions::new(spec) {
        line.clear();
        tx.write_json(&mut line);
        records.push(Record::new(
            Some(format!("card-{:07}", tx.card).as_bytes()),
            line.clone().into_bytes(),
            tx.ts,
        ));
        for l in team_labels(&tx, 5, &LabelPolicy::default()) {
            labels.push(Label {
                event_id: l.event_id,
                fraud: l.fraud,
                kind: l.kind.map(str::to_owned),
                source: l.source.into(),
                known_at: l.known_at,
                author: None,
            });
        }
    }
    log.append(&schema.name, &records).unwrap();
    drop(log);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let options = radar_lake::capture::CaptureOptions {
        until_caught_up: true,
        ..Default::default()
    };
    radar_pipeline::capture::run(&config, None, &options, None, stop).unwrap();
    (config, labels)
}

pub(crate) fn record(config: &Config, labels: &[Label]) {
    let store = config.open_labels().unwrap();
    let outcomes = store.record("transactions", labels).unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| !matches!(o, radar_pipeline::labels::Recorded::UnknownEvent)),
        "every labelled event was captured and indexed"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let lake = config.open_lake().unwrap();
    while store.export(&lake, rt.handle(), "transactions").unwrap() > 0 {}
}

/// The supervised part a spec trains, as bytes (run ids aside).
fn trained(config: &Config, as_of: i64, model: &str) -> (Vec<u8>, f64) {
    let schema = config.stream(None).unwrap();
    let mut spec = TrainSpec::for_stream(&schema);
    spec.model = model.into();
    spec.labels_as_of = Some(as_of);
    spec.holdout = 0.0;
    spec.gbdt.n_trees = 30;
    let report = train::train(config, &spec, &train::quiet).unwrap();
    assert!(
        report.detector.contains("gradient_boosted_trees"),
        "{report:?}"
    );
    let registry = config.open_registry().unwrap();
    let mv = registry.version(model, report.version).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bundle =
        radar_registry::Bundle::from_bytes(&rt.block_on(registry.artifact(&mv)).unwrap()).unwrap();
    (
        bundle.supervised.expect("a supervised part").to_bytes(),
        bundle.threshold,
    )
}

#[test]
fn a_label_known_after_t_never_reaches_a_model_trained_as_of_t() {
    label_known_after_t_never_reaches_a_model_trained_as_of_t(DECLARATION);
}

/// The same with label-derived features, which read labels for every
/// event's features too.
#[test]
fn a_label_known_after_t_never_reaches_label_features_of_a_model_trained_as_of_t() {
    label_known_after_t_never_reaches_a_model_trained_as_of_t(WINDOWS);
}

fn label_known_after_t_never_reaches_a_model_trained_as_of_t(declaration: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (config, labels) = stream(dir.path(), declaration);
    let mut known_at: Vec<i64> = labels.iter().map(|l| l.known_at).collect();
    known_at.sort();
    // T: when 60% of the labels were known.
    let t = known_at[known_at.len() * 6 / 10];
    let (early, late): (Vec<Label>, Vec<Label>) = labels.into_iter().partition(|l| l.known_at <= t);
    assert!(early.iter().filter(|l| l.fraud).count() >= 20);
    record(&config, &early);
    let before = trained(&config, t, "m-before");
    // Later labels arrive, and some turn what was known on its head: every
    // genuine verdict flipped to fraud, after T.
    let mut flipped: Vec<Label> = early
        .iter()
        .filter(|l| !l.fraud)
        .map(|l| Label {
            fraud: true,
            kind: Some("subtle".into()),
            source: "late-correction".into(),
            known_at: t + 1,
            ..l.clone()
        })
        .collect();
    flipped.extend(late);
    record(&config, &flipped);
    let again = trained(&config, t, "m-again");
    assert_eq!(
        before.0, again.0,
        "labels known after T changed the model trained as of T"
    );
    assert_eq!(before.1, again.1);
    // Trained later, the same labels do change it: the test can fail.
    let later = trained(&config, i64::MAX / 2, "m-later");
    assert_ne!(before.0, later.0);
}

#[test]
fn too_few_labels_train_the_detector_alone_and_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let (config, labels) = stream(dir.path(), DECLARATION);
    record(&config, &labels[..5]);
    let schema = config.stream(None).unwrap();
    let mut spec = TrainSpec::for_stream(&schema);
    spec.holdout = 0.0;
    let report = train::train(&config, &spec, &train::quiet).unwrap();
    assert_eq!(report.detector, "isolation_forest");
    let why = report.metrics["supervised"].as_str().unwrap();
    assert!(why.contains("needs at least 20"), "{why}");
}
