//! How evaluation reports look to people.

use radar_pipeline::evaluate::{Judged, StreamReport, Summary, SupervisedReport, TableReport};

pub fn table(r: &TableReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let pct = 100.0 * r.anomalies as f64 / r.rows as f64;
    let _ = writeln!(s, "data      {}", r.data);
    let _ = writeln!(
        s,
        "          {} rows × {} features, {} labelled anomalies ({pct:.2}%)",
        r.rows, r.features, r.anomalies
    );
    let _ = writeln!(
        s,
        "model     isolation forest: {} trees, max_samples {}, max_features {}, bootstrap {}, contamination {}",
        r.n_estimators, r.max_samples, r.max_features, r.bootstrap, r.contamination
    );
    let _ = writeln!(
        s,
        "seeds     {} ({}..={}), {} threads\n",
        r.seeds.len(),
        r.seeds[0],
        r.seeds[r.seeds.len() - 1],
        r.threads
    );
    let _ = writeln!(s, "{:<28} {:>10} {:>10}", "metric", "mean", "std");
    let rows: [(&str, &Summary); 7] = [
        ("ROC-AUC", &r.roc_auc),
        ("average precision", &r.average_precision),
        ("precision@k (k = anomalies)", &r.precision_at_k),
        ("precision at threshold", &r.precision),
        ("recall at threshold", &r.recall),
        ("F1 at threshold", &r.f1),
        ("threshold", &r.threshold),
    ];
    for (name, m) in rows {
        let _ = writeln!(s, "{name:<28} {:>10.4} {:>10.4}", m.mean, m.std);
    }
    let _ = writeln!(
        s,
        "{:<28} {:>10.1} {:>10.1}",
        "rows flagged", r.flagged.mean, r.flagged.std
    );
    let _ = writeln!(
        s,
        "{:<28} {:>10.2} {:>10.2}",
        "fit time (ms)",
        r.fit_seconds.mean * 1e3,
        r.fit_seconds.std * 1e3
    );
    let _ = writeln!(
        s,
        "{:<28} {:>10.0} {:>10.0}",
        "scoring (rows/s)", r.score_rows_per_second.mean, r.score_rows_per_second.std
    );
    s
}

pub fn stream(r: &StreamReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "data      {} (stream `{}`)", r.data, r.stream);
    let _ = writeln!(
        s,
        "          {} events ({} dead letters); trained on {} rows before {}, tested on {} rows ({} anomalies)",
        r.events, r.dead_letters, r.train_rows, r.train_until, r.test_rows, r.test_anomalies
    );
    let _ = writeln!(s, "features  {}", r.features.join(", "));
    let _ = writeln!(
        s,
        "model     {}; trained on entities with {}+ earlier events; {} seeds\n",
        r.detector,
        r.min_history,
        r.seeds.len()
    );
    let _ = writeln!(
        s,
        "{:<34} {:>10} {:>10}",
        "metric (test part)", "mean", "std"
    );
    for (name, m) in [
        ("ROC-AUC", &r.roc_auc),
        ("average precision", &r.average_precision),
        ("precision at fitted threshold", &r.precision),
        ("recall at fitted threshold", &r.recall),
        ("F1 at fitted threshold", &r.f1),
        ("recall at precision >= 0.85", &r.recall_at_precision_085),
    ] {
        let _ = writeln!(s, "{name:<34} {:>10.4} {:>10.4}", m.mean, m.std);
    }
    let _ = writeln!(
        s,
        "{:<34} {:>10.1} {:>10.1}",
        "rows flagged", r.flagged.mean, r.flagged.std
    );
    let _ = writeln!(s, "\nrecall by kind (fitted threshold)");
    for (k, v) in &r.recall_by_kind {
        let _ = writeln!(
            s,
            "  {k:<32} {:>10.4} {:>10.4}   ({} anomalies)",
            v.recall.mean, v.recall.std, v.anomalies
        );
    }
    let _ = writeln!(
        s,
        "\nfeatures computed in {:.2} s; fit {:.1} ms",
        r.feature_seconds,
        r.fit_seconds.mean * 1e3
    );
    s
}

pub fn supervised(r: &SupervisedReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "data      {} with labels {}", r.data, r.labels);
    let _ = writeln!(
        s,
        "          {} events; learned from {} rows before {} ({} more set the threshold); judged {} rows ({} frauds)",
        r.events, r.train_rows, r.train_until, r.threshold_rows, r.test_rows, r.test_frauds
    );
    let _ = writeln!(
        s,
        "labels    {} in the file; {} frauds known when training ended; budget {} alerts per 1,000 events\n",
        r.labels_total, r.labelled_fraud_known_at_training, r.budget_per_thousand
    );
    let row = |s: &mut String, name: &str, f: fn(&Judged) -> f64| {
        let h = r
            .hybrid
            .as_ref()
            .map_or("-".into(), |j| format!("{:.4}", f(j)));
        let _ = writeln!(s, "{name:<26} {:>12.4} {h:>12}", f(&r.unsupervised));
    };
    let _ = writeln!(
        s,
        "{:<26} {:>12} {:>12}",
        "metric (judged part)", "forest", "hybrid"
    );
    row(&mut s, "precision at the budget", |j| j.precision);
    row(&mut s, "recall at the budget", |j| j.recall);
    row(&mut s, "F1 at the budget", |j| j.f1);
    row(&mut s, "average precision", |j| j.average_precision);
    row(&mut s, "ROC-AUC", |j| j.roc_auc);
    row(&mut s, "card precision@k per day", |j| {
        j.card_precision_at_k
    });
    row(&mut s, "alerts", |j| j.flagged as f64);
    let _ = writeln!(s, "\nrecall by kind at the budget");
    for (k, (n, rec)) in &r.unsupervised.recall_by_kind {
        let h = r
            .hybrid
            .as_ref()
            .and_then(|j| j.recall_by_kind.get(k))
            .map_or("-".into(), |(_, v)| format!("{v:.4}"));
        let _ = writeln!(s, "  {k:<24} {rec:>12.4} {h:>12}   ({n} frauds)");
    }
    if let Some(why) = &r.hybrid_skipped {
        let _ = writeln!(s, "\nno supervised part: {why}");
    }
    s
}
