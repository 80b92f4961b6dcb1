//! Throughput of `validate` over an in-memory CSV of generated (dirty) data: the CSV reader,
//! parsing, the quality rules and duplicate detection, without file I/O or process start.
//!
//! `cargo bench -p emdp-formats --bench validate`

use std::hint::black_box;

use chrono::NaiveDate;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use emdp_app::usecases::validate::{summarize, validate};
use emdp_datagen::{GeneratorConfig, generate};
use emdp_domain::RuleSet;
use emdp_formats::CsvSource;

/// 100 buildings x 1000 days: 100,000 rows, about 4 MB.
fn dataset() -> (Vec<u8>, u64) {
    let config = GeneratorConfig { buildings: 100, days: 1000, ..GeneratorConfig::default() };
    let mut bytes = Vec::new();
    let manifest = generate(&config, &mut bytes).expect("the default configuration generates");
    (bytes, manifest.expected.total)
}

fn bench_validate(c: &mut Criterion) {
    let (bytes, rows) = dataset();
    let rules = RuleSet::default();
    let today = NaiveDate::from_ymd_opt(2026, 1, 1).expect("a real day");
    let mut group = c.benchmark_group("validate_csv_100k");
    group.throughput(Throughput::Elements(rows));
    group.bench_function("summarize (two threads)", |b| {
        b.iter(|| {
            let mut source = CsvSource::new(black_box(bytes.as_slice()));
            summarize(&mut source, &rules, today).expect("valid CSV")
        });
    });
    group.bench_function("validate (one thread, no-op sink)", |b| {
        b.iter(|| {
            let mut source = CsvSource::new(black_box(bytes.as_slice()));
            validate(&mut source, &rules, today, &mut ()).expect("valid CSV")
        });
    });
    group.finish();
}

criterion_group!(benches, bench_validate);
criterion_main!(benches);
