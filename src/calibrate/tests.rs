use super::*;

/// Samples whose true confidence is known: the gold queue is drawn with probability
/// softmax(scores / t_true), deterministically spread over the cumulative distribution.
fn synthetic(t_true: f64, n: usize) -> Vec<Sample> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let strength = 1.0 + (i % 7) as f64;
        let scores = vec![strength, strength * 0.4, 0.0, 0.0];
        let p = crate::engine::score::softmax(&scores, t_true);
        // A low-discrepancy draw (golden ratio sequence) instead of a random generator.
        let u = (i as f64 * 0.618_033_988_75).fract();
        let mut acc = 0.0;
        let gold = p.iter().position(|&pi| {
            acc += pi;
            u < acc
        });
        out.push(Sample {
            scores,
            gold: gold.unwrap_or(3),
            chosen: 0,
            features: Default::default(),
        });
    }
    out
}

#[test]
fn the_fitted_temperature_recovers_the_true_one() {
    let samples = synthetic(2.5, 4000);
    let t = fit_temperature(&samples, 1.0);
    assert!((t - 2.5).abs() < 0.25, "fitted {t}");
}

#[test]
fn a_perfectly_separable_set_does_not_drive_the_temperature_to_zero() {
    let samples: Vec<Sample> = (0..50)
        .map(|_| Sample {
            scores: vec![4.0, 0.0, 0.0],
            gold: 0,
            chosen: 0,
            features: Default::default(),
        })
        .collect();
    let t = fit_temperature(&samples, 1.5);
    assert!(t > T_MIN * 2.0, "fitted {t}");
    assert!(t < 1.5, "all right: confidence should rise, fitted {t}");
}

#[test]
fn cross_validated_calibration_on_well_specified_data_is_low() {
    let samples = synthetic(2.0, 3000);
    let cv = cross_validate(&samples, 5, 1.0, false, &[]);
    let ece = Reliability::from_pairs(
        cv.confidences
            .iter()
            .zip(&samples)
            .map(|(&c, s)| (c, s.correct())),
    )
    .ece()
    .unwrap();
    assert!(ece < 0.03, "ece {ece}");
    let miscalibrated = Reliability::from_pairs(samples.iter().map(|s| (s.confidence(0.5), s.correct())))
        .ece()
        .unwrap();
    assert!(miscalibrated > ece * 3.0, "{miscalibrated} vs {ece}");
}

#[test]
fn cross_validation_never_trains_on_its_test_fold() {
    for (test, train) in folds(1000, 5) {
        assert!(!test.is_empty() && !train.is_empty());
        assert!(test.iter().all(|i| !train.contains(i)));
        assert_eq!(test.len() + train.len(), 1000);
    }
    let mut seen = vec![0; 1000];
    for (test, _) in folds(1000, 5) {
        for i in test {
            seen[i] += 1;
        }
    }
    assert!(
        seen.iter().all(|&n| n == 1),
        "every sample is tested exactly once"
    );
}

#[test]
fn proposed_thresholds_reach_the_requested_precision() {
    // Queue 0: right above 0.8, wrong below; queue 1: never reaches 95%.
    let mut samples = Vec::new();
    let mut confidences = Vec::new();
    for i in 0..100 {
        let c = i as f64 / 100.0;
        samples.push(Sample {
            scores: vec![],
            gold: if c >= 0.8 { 0 } else { 1 },
            chosen: 0,
            features: Default::default(),
        });
        confidences.push(c);
        samples.push(Sample {
            scores: vec![],
            gold: if i % 2 == 0 { 1 } else { 0 },
            chosen: 1,
            features: Default::default(),
        });
        confidences.push(c);
    }
    let queues = [("a".to_string(), 0.7), ("b".to_string(), 0.7)];
    let p = propose_thresholds(&samples, &confidences, &queues, 0.95);
    assert!((p[0].threshold - 0.8).abs() < 0.02, "{p:?}");
    assert!(p[0].precision.unwrap() >= 0.95);
    assert!((p[0].coverage - 0.2).abs() < 0.02);
    assert_eq!(p[1].threshold, 1.0);
    assert_eq!(p[1].coverage, 0.0);
}

#[test]
fn ece_is_the_weighted_gap_between_confidence_and_accuracy() {
    let r = Reliability::from_pairs([(0.9, true), (0.9, false), (0.2, false), (0.2, false)]);
    // Bin 9: confidence 0.9, accuracy 0.5 → gap 0.4 × 2/4; bin 2: 0.2 vs 0 → 0.2 × 2/4.
    assert!((r.ece().unwrap() - 0.3).abs() < 1e-9);
    assert_eq!(r.bins()[9].count, 2);
}

#[test]
fn the_confidence_model_learns_that_a_small_margin_is_less_sure() {
    // Same softmax, but the chosen queue is right only when the margin is large.
    let samples: Vec<Sample> = (0..400)
        .map(|i| {
            let margin = if i % 2 == 0 { 6.0 } else { 0.5 };
            Sample {
                scores: vec![6.0, 6.0 - margin],
                gold: if i % 2 == 0 || i % 10 == 1 { 0 } else { 1 },
                chosen: 0,
                features: crate::engine::score::Features {
                    margin,
                    ..Default::default()
                },
            }
        })
        .collect();
    let model = fit_model(&samples, 1.0, &[]);
    let wide = samples[0].model_confidence(1.0, &model);
    let narrow = samples[1].model_confidence(1.0, &model);
    assert!(wide > 0.9, "{wide}");
    assert!(narrow < 0.4, "{narrow}");
}

#[test]
fn out_of_scope_samples_count_as_wrong_for_the_model_and_are_left_out_of_the_temperature() {
    let s = Sample {
        scores: vec![3.0, 0.0],
        gold: NO_QUEUE,
        chosen: 0,
        features: Default::default(),
    };
    assert!(!s.correct());
    assert!(objective(std::slice::from_ref(&s), 1.0, 1.0).is_finite());
}

#[test]
fn the_confidence_model_learns_that_mail_mostly_about_something_else_is_not_certain() {
    // Same scores throughout; out-of-scope mail (no queue right) is long and mostly without
    // evidence, and not addressed to us; requests are about their topic and name us.
    let samples: Vec<Sample> = (0..400)
        .map(|i| {
            let out_of_scope = i % 4 == 0;
            Sample {
                scores: vec![5.0, 0.0],
                gold: if out_of_scope { NO_QUEUE } else { 0 },
                chosen: 0,
                features: crate::engine::score::Features {
                    margin: 5.0,
                    addressed: if out_of_scope { 0.0 } else { 1.0 },
                    unexplained: if out_of_scope { 0.9 } else { 0.2 },
                    ..Default::default()
                },
            }
        })
        .collect();
    let model = fit_model(&samples, 1.0, &[]);
    assert!(model.weights[4] > 0.0, "addressed {model:?}");
    assert!(model.weights[5] < 0.0, "unexplained {model:?}");
    let request = samples[1].model_confidence(1.0, &model);
    let stranger = samples[0].model_confidence(1.0, &model);
    assert!(request > 0.9, "{request}");
    assert!(stranger < 0.5, "{stranger}");
}

#[test]
fn the_confidence_model_learns_that_an_unknown_standing_is_less_certain() {
    // Same scores throughout; a fifth of the verdicts whose standing is unknown are wrong (a
    // prospect taken for a member), none of the others.
    let samples: Vec<Sample> = (0..500)
        .map(|i| {
            let unknown = i % 2 == 0;
            let wrong = unknown && i % 10 == 0;
            Sample {
                scores: vec![5.0, 0.0],
                gold: if wrong { 1 } else { 0 },
                chosen: 0,
                features: crate::engine::score::Features {
                    margin: 5.0,
                    standing_unknown: if unknown { 1.0 } else { 0.0 },
                    ..Default::default()
                },
            }
        })
        .collect();
    let model = fit_model(&samples, 1.0, &[]);
    assert!(model.weights[6] < 0.0, "standing_unknown {model:?}");
    let known = samples[1].model_confidence(1.0, &model);
    let unknown = samples[2].model_confidence(1.0, &model);
    assert!(unknown < known, "{unknown} vs {known}");
}

/// A verdict for the first of two queues with `score` for it (and its margin), right when
/// `gold` is 0, whose writer's standing is contested when `contested`.
fn verdict(score: f64, gold: usize, contested: bool) -> Sample {
    let flag = if contested { 1.0 } else { 0.0 };
    Sample {
        scores: vec![score, 0.0],
        gold,
        chosen: 0,
        features: crate::engine::score::Features {
            margin: score,
            standing_unknown: flag,
            standing_contested: flag,
            ..Default::default()
        },
    }
}

#[test]
fn contested_verdicts_are_bounded_by_their_accuracy_whatever_their_margin() {
    // Large margins throughout; a fifth of the contested verdicts are wrong, none of the others.
    let samples: Vec<Sample> = (0..500)
        .map(|i| verdict(12.0, usize::from(i % 25 == 0), i % 5 == 0))
        .collect();
    let model = fit_model(&samples, 1.0, &[]);
    // 100 contested, 80 right: (80 + 1) / (100 + 2).
    let ceiling = model.contested_ceiling.expect("a ceiling");
    assert!((ceiling - 81.0 / 102.0).abs() < 1e-12, "{ceiling}");
    let contested = samples[5].model_confidence(1.0, &model);
    let plain = samples[1].model_confidence(1.0, &model);
    assert!(contested <= ceiling, "{contested}");
    assert!(plain > 0.95, "{plain}");
}

#[test]
fn out_of_scope_mail_does_not_lower_the_ceiling() {
    let mut samples: Vec<Sample> = (0..8).map(|_| verdict(5.0, 0, true)).collect();
    samples.extend((0..8).map(|_| verdict(5.0, NO_QUEUE, true)));
    assert_eq!(fit_contested_ceiling(&samples), Some(0.9));
}

#[test]
fn further_requests_count_for_the_ceiling_but_not_for_the_logistic_model() {
    let samples: Vec<Sample> = (0..40)
        .map(|i| verdict(5.0, usize::from(i % 10 == 0), true))
        .collect();
    // Eight contested requests more, half of them wrong.
    let extra: Vec<Sample> = (0..8).map(|i| verdict(5.0, i % 2, true)).collect();
    let alone = fit_model(&samples, 1.0, &[]);
    let with_extra = fit_model(&samples, 1.0, &extra);
    assert_eq!(alone.contested_ceiling, Some(37.0 / 42.0));
    assert_eq!(with_extra.contested_ceiling, Some(41.0 / 50.0));
    assert_eq!(alone.weights, with_extra.weights);
    assert_eq!(alone.intercept, with_extra.intercept);
}

#[test]
fn no_contested_verdict_in_the_data_leaves_no_ceiling() {
    let samples: Vec<Sample> = (0..20)
        .map(|i| verdict(5.0, usize::from(i % 4 == 0), false))
        .collect();
    assert_eq!(fit_model(&samples, 1.0, &[]).contested_ceiling, None);
}
