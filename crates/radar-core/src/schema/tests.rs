use super::*;

fn example(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn build(text: &str) -> Result<StreamSchema, String> {
    let streams = parse_streams(text)?;
    let (name, config) = streams.into_iter().next().ok_or("no stream")?;
    config.build(&name).map_err(|e| e.to_string())
}

#[test]
fn shipped_examples_build() {
    let tx = build(&example("transactions.toml")).unwrap();
    assert_eq!(tx.entity.as_deref(), Some("card_id"));
    assert_eq!(tx.labels().count(), 2);
    assert_eq!(
        tx.columns,
        [
            "log_amount",
            "hour_sin",
            "hour_cos",
            "amount_z",
            "hour_surprise",
            "tx_10m",
            "kmh_from_last",
            "category_surprise",
            "new_device"
        ]
    );
    let raw = build(&example("transactions-raw.toml")).unwrap();
    assert_eq!(raw.columns, ["raw_amount", "hour_sin", "hour_cos"]);
    let metrics = build(&example("metrics.toml")).unwrap();
    assert_eq!(metrics.columns.len(), 1 + 7 + 1);
    let tabular = build(&example("tabular.toml")).unwrap();
    assert_eq!(tabular.columns.len(), 9);
    assert!(tabular.timestamp.is_none());
}

#[test]
fn unknown_keys_are_named() {
    let err = build("[streams.s]\ntimestamp = \"t\"\ncolour = \"red\"\n").unwrap_err();
    assert!(err.contains("unknown field `colour`"), "{err}");
    let err = build("[streams.s.fields]\nx = { type = \"float\", minimum = 1 }\n").unwrap_err();
    assert!(err.contains("unknown field `minimum`"), "{err}");
    let err = build("[streams.s.fields]\nx = { type = \"float\" }\n[[streams.s.features]]\nkind = \"raw\"\nfield = \"x\"\nwindow = 3\n")
        .unwrap_err();
    assert!(err.contains("unknown field `window`"), "{err}");
    let err = build("[streams.s.fields]\nx = { type = \"decimal\" }\n").unwrap_err();
    assert!(err.contains("unknown variant `decimal`"), "{err}");
    let err = build("[streams.s]\n[[streams.s.features]]\nkind = \"median\"\n").unwrap_err();
    assert!(err.contains("unknown variant `median`"), "{err}");
}

#[test]
fn defaults_apply() {
    let s = build("[streams.s.fields]\nx = { type = \"float\" }\n[[streams.s.features]]\nkind = \"zscore\"\nfield = \"x\"\n").unwrap();
    assert_eq!(s.max_event_bytes, 65_536);
    assert_eq!(s.max_entities, 1_000_000);
    assert_eq!(s.history, 8);
    assert_eq!(s.timestamp_format, TimestampFormat::Auto);
    assert!(s.fields[0].required);
    assert_eq!(
        s.features[0],
        Feature::Zscore {
            field: 0,
            alpha: DEFAULT_ALPHA,
            log1p: false,
            min_events: DEFAULT_MIN_EVENTS
        }
    );
    assert_eq!(s.columns, ["zscore_x"]);
}

#[test]
fn declaration_mistakes_are_explained() {
    let cases: &[(&str, &str)] = &[
        (
            "[streams.s.fields]\nx = { type = \"float\" }\n[[streams.s.features]]\nkind = \"count\"\nfield = \"x\"\nwindow_seconds = 60\n",
            "option `field` does not apply to kind `count` (it takes: window_seconds, key)",
        ),
        (
            "[streams.s]\n[[streams.s.features]]\nkind = \"raw\"\nfield = \"y\"\n",
            "names field `y`, which is not declared",
        ),
        (
            "[streams.s.fields]\ny = { type = \"bool\", label = true }\n[[streams.s.features]]\nkind = \"raw\"\nfield = \"y\"\n",
            "is a label and cannot feed a feature",
        ),
        (
            "[streams.s.fields]\nc = { type = \"category\" }\n[[streams.s.features]]\nkind = \"log1p\"\nfield = \"c\"\n",
            "is a category; this feature needs a number",
        ),
        (
            "[streams.s.fields]\nx = { type = \"float\", required = false }\n[[streams.s.features]]\nkind = \"raw\"\nfield = \"x\"\n",
            "optional without a `default`",
        ),
        (
            "[streams.s]\n[[streams.s.features]]\nkind = \"count\"\n",
            "needs `window_seconds`",
        ),
        (
            "[streams.s.fields]\nx = { type = \"float\" }\n[[streams.s.features]]\nkind = \"ewma_mean\"\nfield = \"x\"\nalpha = 1.5\n",
            "alpha must be in (0, 1]",
        ),
        (
            "[streams.s.fields]\nx = { type = \"float\" }\n[[streams.s.features]]\nkind = \"lag\"\nfield = \"x\"\n",
            "needs `k` between 1 and 64",
        ),
        (
            "[streams.s.fields]\nx = { type = \"float\", min = 5, max = 1 }\n",
            "min 5 is above max 1",
        ),
        (
            "[streams.s.fields]\nc = { type = \"category\", min = 1 }\n",
            "is a category: min, max and default apply to numbers",
        ),
        (
            "[streams.s.fields]\nx = { type = \"float\", allowed = [\"a\"] }\n",
            "`allowed` applies to category fields",
        ),
        (
            "[streams.s.fields]\nl = { type = \"bool\", label = true, required = true }\n",
            "label field `l` cannot be required",
        ),
        (
            "[streams.s]\ntimestamp = \"t\"\n[streams.s.fields]\nt = { type = \"int\" }\n",
            "declare it only there",
        ),
        (
            "[streams.s.fields]\nx = { type = \"float\" }\n[[streams.s.features]]\nkind = \"raw\"\nfield = \"x\"\n[[streams.s.features]]\nkind = \"raw\"\nfield = \"x\"\n",
            "column `raw_x` is produced twice",
        ),
        (
            "[streams.s]\nhistory = 0\n",
            "history must be between 1 and 255",
        ),
        (
            "[streams.s.fields]\nx = { type = \"float\" }\n[[streams.s.features]]\nkind = \"novelty\"\nfield = \"x\"\n",
            "is a float; novelty and frequency need",
        ),
    ];
    for (text, expected) in cases {
        let err = build(text).unwrap_err();
        assert!(
            err.contains(expected),
            "{text}\n=> {err}\n(expected `{expected}`)"
        );
        assert!(
            err.starts_with("stream `s`") || err.contains("unknown"),
            "{err}"
        );
    }
}

#[test]
fn hour_is_a_virtual_category_field() {
    let s = build("[streams.s]\nentity = \"u\"\n[[streams.s.features]]\nkind = \"frequency\"\nfield = \"@hour\"\n").unwrap();
    assert_eq!(
        s.features[0],
        Feature::Frequency {
            source: CategorySource::Hour,
            max_categories: DEFAULT_MAX_CATEGORIES,
            surprise: false,
        }
    );
    assert_eq!(s.columns, ["frequency_hour"]);
}

#[test]
fn detector_declarations_are_checked() {
    let base = "[streams.m]\n[streams.m.fields]\nv = { type = \"float\" }\n[[streams.m.features]]\nkind = \"raw\"\nfield = \"v\"\n";
    let with = |detector: &str| build(&format!("{base}[streams.m.detector]\n{detector}\n"));
    let champion = build(base).unwrap().detector;
    assert!(matches!(champion.kind, DetectorKind::IsolationForest(_)));
    assert_eq!(champion.serve(), Serve::Registry);
    let hst =
        with("kind = \"half_space_trees\"\nn_trees = 10\nlimits = { raw_v = [0.0, 5.0] }").unwrap();
    let DetectorKind::HalfSpaceTrees(options) = &hst.detector.kind else {
        panic!("{:?}", hst.detector.kind)
    };
    assert_eq!(options.n_trees, Some(10));
    assert_eq!(hst.detector.serve(), Serve::Online);
    let rcf =
        with("kind = \"random_cut_forest\"\nlearn = \"unflagged\"\nshingle_size = 8").unwrap();
    assert_eq!(rcf.detector.learn, Some(LearnMode::Unflagged));
    for (decl, message) in [
        ("kind = \"svm\"", "unknown variant `svm`"),
        (
            "kind = \"half_space_trees\"\nnum_trees = 3",
            "`num_trees` does not apply to half_space_trees",
        ),
        (
            "kind = \"random_cut_forest\"\nheight = 3",
            "`height` does not apply to random_cut_forest",
        ),
        (
            "threshold = 0.5",
            "`threshold` does not apply to the champion",
        ),
        (
            "kind = \"random_cut_forest\"\nthreshold = 1.5",
            "threshold must be in (0, 1)",
        ),
        (
            "kind = \"half_space_trees\"\nlimits = { other = [0.0, 1.0] }",
            "no range for column `raw_v`",
        ),
        (
            "kind = \"half_space_trees\"\nlimits = { raw_v = [2.0, 1.0] }",
            "need finite low < high",
        ),
        (
            "kind = \"half_space_trees\"\ntrees = 3",
            "unknown field `trees`",
        ),
        (
            "kind = \"isolation_forest\"\nmax_samples = \"many\"",
            "expected `auto` or a number, got `many`",
        ),
        ("model = \"a b\"", "model name `a b`"),
    ] {
        let e = with(decl).unwrap_err();
        assert!(e.contains(message), "{decl}: {e}");
    }
}

#[test]
fn detectors_name_their_model_and_how_they_are_served() {
    let base = "[streams.m]\n[streams.m.fields]\nv = { type = \"float\" }\n[[streams.m.features]]\nkind = \"raw\"\nfield = \"v\"\n";
    let with = |detector: &str| build(&format!("{base}[streams.m.detector]\n{detector}\n"));
    assert_eq!(build(base).unwrap().detector.model_name("m"), "m-iforest");
    let old = with("kind = \"champion\"").unwrap().detector;
    assert!(matches!(old.kind, DetectorKind::IsolationForest(_)));
    let rcf = with(
        "kind = \"random_cut_forest\"\nserve = \"registry\"\nmodel = \"custom\"\nnum_trees = 20",
    )
    .unwrap()
    .detector;
    assert_eq!(rcf.serve(), Serve::Registry);
    assert_eq!(rcf.model_name("m"), "custom");
    let iforest = with("n_estimators = 50\nmax_samples = \"auto\"\ncontamination = 0.02\nseed = 3")
        .unwrap()
        .detector;
    let DetectorKind::IsolationForest(o) = &iforest.kind else {
        panic!()
    };
    assert_eq!(o.n_estimators, Some(50));
    assert_eq!(o.contamination, Some(NumberOrAuto::Number(0.02)));
    assert_eq!(iforest.seed, Some(3));
    let e =
        with("kind = \"random_cut_forest\"\nserve = \"registry\"\nlearn = \"all\"").unwrap_err();
    assert!(e.contains("`learn` does not apply to the champion"), "{e}");
}
