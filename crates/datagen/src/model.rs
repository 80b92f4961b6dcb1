//! The clean signal: cities with seasonal weather, and buildings whose daily consumption
//! follows their type, the day of the week and the temperature.

use std::f64::consts::PI;

use chrono::{Datelike, NaiveDate};
use rand::RngExt;
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::StandardNormal;

/// The providers a building is billed by.
const PROVIDERS: [&str; 5] = ["provider_a", "provider_b", "provider_c", "provider_d", "provider_e"];

/// One building type: weekday, Saturday and Sunday load factors, base-load median (kWh/day)
/// and the share of buildings of this type.
struct BuildingType {
    weekday: f64,
    saturday: f64,
    sunday: f64,
    median: f64,
    weight: f64,
}

/// Office, residential, retail, school, hospital.
const BUILDING_TYPES: [BuildingType; 5] = [
    BuildingType { weekday: 1.00, saturday: 0.45, sunday: 0.35, median: 900.0, weight: 0.30 },
    BuildingType { weekday: 1.00, saturday: 1.12, sunday: 1.15, median: 60.0, weight: 0.40 },
    BuildingType { weekday: 1.00, saturday: 1.10, sunday: 0.55, median: 700.0, weight: 0.15 },
    BuildingType { weekday: 1.00, saturday: 0.25, sunday: 0.20, median: 500.0, weight: 0.10 },
    BuildingType { weekday: 1.00, saturday: 0.97, sunday: 0.95, median: 4000.0, weight: 0.05 },
];

/// Day-to-day persistence of the weather noise.
const WEATHER_PHI: f64 = 0.7;
/// Below this daily mean temperature (°C) a building heats.
const HEATING_BASE: f64 = 15.5;
/// Above this daily mean temperature (°C) a building cools.
const COOLING_BASE: f64 = 22.0;
/// Clean temperatures stay within this range, well inside the quality rules.
const CLEAN_TEMPERATURE: (f64, f64) = (-15.0, 45.0);
/// Clean consumption stays at or below this, so a x10 spike stays below 1e6.
const CLEAN_CONSUMPTION_MAX: f64 = 90_000.0;
/// Cap on a building's base load (kWh/day).
const BASE_LOAD_MAX: f64 = 20_000.0;

fn gauss(rng: &mut Xoshiro256PlusPlus, sd: f64) -> f64 {
    sd * rng.sample::<f64, _>(StandardNormal)
}

/// A city: a seasonal temperature curve plus AR(1) weather noise, advanced one day at a time.
struct City {
    mean: f64,
    amplitude: f64,
    noise_sd: f64,
    noise: f64,
    today: f64,
}

/// A building's fixed parameters.
pub(crate) struct Building {
    /// `B00001`, ...
    pub(crate) id: String,
    /// The provider of every reading of this building.
    pub(crate) provider: &'static str,
    city: usize,
    base: f64,
    /// Load factor by weekday, Monday first.
    day_factor: [f64; 7],
    heating: f64,
    cooling: f64,
}

/// The clean signal of a whole dataset, generated day by day.
pub(crate) struct Model {
    rng: Xoshiro256PlusPlus,
    cities: Vec<City>,
    pub(crate) buildings: Vec<Building>,
}

impl Model {
    /// Draws the cities and the buildings.
    pub(crate) fn new(rng: Xoshiro256PlusPlus, buildings: u32) -> Self {
        let mut rng = rng;
        let city_count = (buildings / 50).max(1) as usize;
        let cities = (0..city_count)
            .map(|_| City {
                mean: rng.random_range(6.0..20.0),
                amplitude: rng.random_range(5.0..12.0),
                noise_sd: rng.random_range(1.5..3.0),
                noise: 0.0,
                today: 0.0,
            })
            .collect();
        let buildings = (1..=buildings)
            .map(|number| {
                let kind = pick_type(rng.random());
                let base = (kind.median * gauss(&mut rng, 0.5).exp()).min(BASE_LOAD_MAX);
                let heating = base * rng.random_range(0.02..0.08);
                let cooling = base * rng.random_range(0.02..0.10);
                let provider = PROVIDERS[rng.random_range(0..PROVIDERS.len())];
                let city = rng.random_range(0..city_count);
                let (wk, sat, sun) = (kind.weekday, kind.saturday, kind.sunday);
                Building {
                    id: format!("B{number:05}"),
                    provider,
                    city,
                    base,
                    day_factor: [wk, wk, wk, wk, wk, sat, sun],
                    heating,
                    cooling,
                }
            })
            .collect();
        Model { rng, cities, buildings }
    }

    /// Advances every city's weather to `date`; call once per day, in date order.
    pub(crate) fn start_day(&mut self, date: NaiveDate) {
        let season = (2.0 * PI * (f64::from(date.ordinal()) - 20.0) / 365.25).cos();
        for city in &mut self.cities {
            city.noise = WEATHER_PHI * city.noise + gauss(&mut self.rng, city.noise_sd);
            city.today = city.mean - city.amplitude * season + city.noise;
        }
    }

    /// The clean reading of one building on `date` (the day of the last
    /// [`start_day`](Self::start_day)): consumption rounded to 3 decimals (kWh, within
    /// `[1, 90000]`) and temperature rounded to 1 decimal (°C, within `[-15, 45]`).
    pub(crate) fn reading(&mut self, building: usize, date: NaiveDate) -> (f64, f64) {
        let b = &self.buildings[building];
        let raw_temperature = self.cities[b.city].today + gauss(&mut self.rng, 0.3);
        let temperature = round_to(raw_temperature.clamp(CLEAN_TEMPERATURE.0, CLEAN_TEMPERATURE.1), 10.0);
        let weekday = date.weekday().num_days_from_monday() as usize;
        let load = b.base * b.day_factor[weekday]
            + b.heating * (HEATING_BASE - temperature).max(0.0)
            + b.cooling * (temperature - COOLING_BASE).max(0.0);
        let noisy = load * gauss(&mut self.rng, 0.08).exp();
        let consumption = round_to(noisy.max(0.05 * b.base).clamp(1.0, CLEAN_CONSUMPTION_MAX), 1000.0);
        (consumption, temperature)
    }
}

/// Picks a building type for a uniform draw `x` in `[0, 1)` by the type weights.
fn pick_type(x: f64) -> &'static BuildingType {
    let mut acc = 0.0;
    for kind in &BUILDING_TYPES {
        acc += kind.weight;
        if x < acc {
            return kind;
        }
    }
    &BUILDING_TYPES[BUILDING_TYPES.len() - 1]
}

fn round_to(value: f64, scale: f64) -> f64 {
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn type_weights_cover_the_unit_interval() {
        let total: f64 = BUILDING_TYPES.iter().map(|kind| kind.weight).sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert_eq!(pick_type(0.0).median, 900.0);
        assert_eq!(pick_type(0.5).median, 60.0);
        assert_eq!(pick_type(0.999_999_999).median, 4000.0);
    }

    #[test]
    fn clean_readings_stay_in_their_ranges() {
        let mut model = Model::new(Xoshiro256PlusPlus::seed_from_u64(3), 120);
        assert_eq!(model.cities.len(), 2);
        assert_eq!(model.buildings[0].id, "B00001");
        assert_eq!(model.buildings[119].id, "B00120");
        let first = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        for date in first.iter_days().take(400) {
            model.start_day(date);
            for building in 0..model.buildings.len() {
                let (consumption, temperature) = model.reading(building, date);
                assert!((1.0..=CLEAN_CONSUMPTION_MAX).contains(&consumption), "{consumption}");
                assert!((-15.0..=45.0).contains(&temperature), "{temperature}");
            }
        }
    }
}
