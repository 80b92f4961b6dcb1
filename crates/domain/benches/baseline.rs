//! Fitting the CalTRACK daily baseline to 1,000 synthetic days (heating and cooling load with
//! noise) over the default balance-point grid.

use std::hint::black_box;

use chrono::{Days, NaiveDate};
use criterion::{Criterion, criterion_group, criterion_main};
use emdp_domain::analysis::{BaselineConfig, BaselineModel, DailyObservation};

/// 1,000 consecutive days: seasonal temperature with deterministic noise, and consumption
/// `50 + 3·HDD(12 °C) + 4·CDD(20 °C)` plus noise.
fn synthetic_days() -> Vec<DailyObservation> {
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let start = NaiveDate::from_ymd_opt(2022, 1, 1).expect("valid date");
    (0..1000u64)
        .map(|i| {
            let season = (std::f64::consts::TAU * (i as f64 - 105.0) / 365.25).sin();
            let temperature = 12.0 + 12.0 * season + 6.0 * noise();
            let load = 50.0 + 3.0 * (12.0 - temperature).max(0.0) + 4.0 * (temperature - 20.0).max(0.0);
            DailyObservation { date: start + Days::new(i), consumption: load + 8.0 * noise(), temperature }
        })
        .collect()
}

fn bench_fit(c: &mut Criterion) {
    let data = synthetic_days();
    let config = BaselineConfig::default();
    c.bench_function("fit_baseline_1000_days", |b| {
        b.iter(|| BaselineModel::fit(black_box(&data), None, black_box(&config)))
    });
}

criterion_group!(benches, bench_fit);
criterion_main!(benches);
