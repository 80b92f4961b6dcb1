//! The CalTRACK 2 daily baseline model: consumption per day as a piecewise-linear function of
//! the daily mean temperature, selected by grid search over balance points.
//!
//! Candidates (CalTRACK 2 §3.4.3.1, names as in this crate; eemeter calls them
//! `intercept_only`, `hdd_only`, `cdd_only`, `hdd_cdd`):
//!
//! - `intercept_only`: `E = a`
//! - `heating_only`: `E = a + b_h · max(0, T_h - T)`
//! - `cooling_only`: `E = a + b_c · max(0, T - T_c)`
//! - `heating_cooling`: both terms, with `T_h <= T_c`
//!
//! `E` is kWh per day, `T` the daily mean in °C, `a` kWh/day and the slopes kWh per °C·day.
//! Each candidate is fitted by ordinary least squares; see [`BaselineConfig`] for the grid and
//! the qualification rules. The qualified candidate with the highest adjusted R² wins
//! (CalTRACK 2 §3.4.3.3); the intercept-only model always qualifies (adjusted R² 0).
//! Qualification constrains the slopes only (positive, significant, enough degree days);
//! the intercept is left free, although CalTRACK 2 §3.4.3.2 also lists `a > 0`.
//!
//! As in CalTRACK, many candidates are tried, so on consumption that does not depend on
//! temperature at all a weak temperature term (small slope, adjusted R² just above 0) can
//! pass the p-value test by chance; callers wanting a stricter screen can lower
//! [`BaselineConfig::max_slope_p_value`].
//!
//! Speed: observations are sorted by temperature once and prefix sums of `T`, `T²`, `E` and
//! `T·E` are taken, so every candidate's normal equations come from O(1) arithmetic, without
//! allocation. Heating and cooling terms never overlap when `T_h <= T_c`, so their cross
//! product is zero. The winning model's metrics are then computed from its residuals.

use serde::{Deserialize, Serialize};

use super::degree_days::{cooling_degree_days, heating_degree_days};
use super::distribution::student_t_quantile;
use super::metrics::{Guideline14Thresholds, Guideline14Verdict, daily_lag1_autocorrelation, fit_metrics};
use super::{AnalysisError, DailyObservation, DatePeriod, ensure_finite};

/// Fewest observations a fit accepts (the intercept-only model then has two degrees of
/// freedom left).
pub const MIN_OBSERVATIONS: usize = 3;

/// Most balance points a grid may hold, which bounds the pair search to about half a million
/// heating/cooling combinations.
pub const MAX_GRID_POINTS: usize = 1001;

/// Slots of the typical year in [`NormalYear`]: one per day of a leap year.
const YEAR_SLOTS: usize = 366;

/// Slot of February 29 in [`NormalYear::typical_temperature`].
const FEB_29_SLOT: usize = 59;

/// Relative size below which a centered sum of squares counts as zero (collinear design).
const DEGENERATE: f64 = 1e-10;

/// Which candidate form a [`BaselineModel`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[derive(strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum ModelType {
    /// Constant consumption per day.
    InterceptOnly,
    /// Base load plus a heating term below the heating balance point.
    HeatingOnly,
    /// Base load plus a cooling term above the cooling balance point.
    CoolingOnly,
    /// Base load plus heating and cooling terms.
    HeatingCooling,
}

impl ModelType {
    /// Number of fitted coefficients `p`, intercept included (balance points are not counted,
    /// as in CalTRACK and eemeter).
    pub fn parameters(self) -> usize {
        match self {
            Self::InterceptOnly => 1,
            Self::HeatingOnly | Self::CoolingOnly => 2,
            Self::HeatingCooling => 3,
        }
    }

    /// The serialized name: `intercept_only`, `heating_only`, `cooling_only` or
    /// `heating_cooling`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Something a user of a [`BaselineModel`] should know before trusting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ModelWarning {
    /// Fewer days of the baseline period were observed than
    /// [`BaselineConfig::min_data_sufficiency`] asks (CalTRACK: 90 %).
    InsufficientData,
    /// CV(RMSE) is undefined or above the Guideline 14 limit.
    CvRmseAboveGuideline14,
    /// NMBE is undefined or outside the Guideline 14 limit.
    NmbeAboveGuideline14,
}

/// How [`BaselineModel::fit`] searches and qualifies candidates. The defaults follow CalTRACK
/// 2 (daily methods), converted to °C.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BaselineConfig {
    /// Lowest balance point tried, °C. Default -1 °C (CalTRACK's 30 °F, rounded).
    pub min_balance_point: f64,
    /// Highest balance point tried, °C. Default 32 °C (CalTRACK's 90 °F, rounded).
    pub max_balance_point: f64,
    /// Grid spacing, °C; must be in (0, 0.5]. Default 0.5 °C (CalTRACK allows at most 3 °F).
    pub balance_point_step: f64,
    /// Whether cooling candidates are tried; CalTRACK leaves them out for natural gas.
    /// Default true.
    pub include_cooling: bool,
    /// Days with non-zero degree days each slope term needs in the baseline. Default 10
    /// (CalTRACK 2 §3.2.2.2.1). Like this and the next limit, CalTRACK states it per year;
    /// here it applies to the whole baseline period (CalTRACK baselines are one year).
    pub min_nonzero_degree_days: usize,
    /// Total degree days each slope term needs in the baseline, °C·day. Default 20 °F·day =
    /// 11.1 °C·day (CalTRACK 2 §3.2.2.2.2).
    pub min_total_degree_days: f64,
    /// Largest two-sided p-value a slope may have, tested with the t statistic of OLS; `None`
    /// skips the test. Default 0.1, eemeter's `beta_*_maximum_p_value`.
    pub max_slope_p_value: Option<f64>,
    /// Share of the baseline period's days that must be observed before the model is trusted
    /// without a [`ModelWarning::InsufficientData`]. Default 0.9 (CalTRACK 2 §2.2).
    pub min_data_sufficiency: f64,
    /// Calibration limits the model is judged against.
    pub guideline14: Guideline14Thresholds,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        Self {
            min_balance_point: -1.0,
            max_balance_point: 32.0,
            balance_point_step: 0.5,
            include_cooling: true,
            min_nonzero_degree_days: 10,
            min_total_degree_days: 20.0 / 1.8,
            max_slope_p_value: Some(0.1),
            min_data_sufficiency: 0.9,
            guideline14: Guideline14Thresholds::default(),
        }
    }
}

impl BaselineConfig {
    /// The balance points the search tries, from the minimum in steps up to the maximum.
    pub fn balance_points(&self) -> Result<Vec<f64>, AnalysisError> {
        let (min, max, step) = (self.min_balance_point, self.max_balance_point, self.balance_point_step);
        if !(min.is_finite() && max.is_finite() && min <= max) {
            return Err(AnalysisError::InvalidParameter("balance point range must be finite with min <= max"));
        }
        if !(step > 0.0 && step <= 0.5) {
            return Err(AnalysisError::InvalidParameter("balance point step must be in (0, 0.5] °C"));
        }
        let intervals = ((max - min) / step + 1e-9).floor();
        if !intervals.is_finite() || intervals >= MAX_GRID_POINTS as f64 {
            return Err(AnalysisError::InvalidParameter("balance point grid holds more than MAX_GRID_POINTS points"));
        }
        let count = intervals as usize + 1;
        Ok((0..count).map(|i| min + i as f64 * step).collect())
    }

    fn validate(&self) -> Result<(), AnalysisError> {
        if !(self.min_total_degree_days >= 0.0 && self.min_total_degree_days.is_finite()) {
            return Err(AnalysisError::InvalidParameter("min_total_degree_days must be finite and non-negative"));
        }
        if self.max_slope_p_value.is_some_and(|p| !(p > 0.0 && p < 1.0)) {
            return Err(AnalysisError::InvalidParameter("max_slope_p_value must be in (0, 1)"));
        }
        if !(0.0..=1.0).contains(&self.min_data_sufficiency) {
            return Err(AnalysisError::InvalidParameter("min_data_sufficiency must be in [0, 1]"));
        }
        Ok(())
    }
}

/// A fitted baseline: the selected candidate, its coefficients, fit statistics and warnings.
///
/// Metrics follow [`crate::analysis::metrics`]: `rmse` uses `n - p` degrees of freedom,
/// `cv_rmse` and `nmbe` are fractions of mean consumption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BaselineModel {
    /// The selected candidate form.
    pub model_type: ModelType,
    /// Heating balance point `T_h`, °C, for heating models.
    pub heating_balance_point: Option<f64>,
    /// Cooling balance point `T_c`, °C, for cooling models.
    pub cooling_balance_point: Option<f64>,
    /// Base load `a`, kWh/day.
    pub intercept: f64,
    /// Heating slope `b_h`, kWh per °C·day, for heating models.
    pub heating_slope: Option<f64>,
    /// Cooling slope `b_c`, kWh per °C·day, for cooling models.
    pub cooling_slope: Option<f64>,
    /// Observations the model was fitted to.
    pub n: usize,
    /// Coefficient of determination.
    pub r2: f64,
    /// Adjusted R², the selection criterion.
    pub adj_r2: f64,
    /// Root mean squared error, kWh/day, with `n - p` degrees of freedom.
    pub rmse: f64,
    /// CV(RMSE) as a fraction; `None` when mean consumption is not positive.
    pub cv_rmse: Option<f64>,
    /// Normalized mean bias error as a fraction; `None` when mean consumption is not positive.
    pub nmbe: Option<f64>,
    /// Lag-1 autocorrelation of the residuals over consecutive days, used for the effective
    /// sample size in savings uncertainty.
    pub residual_autocorrelation: f64,
    /// The baseline period the observations were taken from.
    pub period: DatePeriod,
    /// Share of the period's days with an observation (0..=1).
    pub data_sufficiency: f64,
    /// The ASHRAE Guideline 14 calibration verdict.
    pub guideline14: Guideline14Verdict,
    /// What to be wary of; empty for a sufficient, calibrated model.
    pub warnings: Vec<ModelWarning>,
}

/// Weather-normalized consumption: the model run over a typical year of the building's own
/// temperatures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NormalYear {
    /// Typical daily mean temperature, °C, for each day of a leap year (index 0 = January 1,
    /// 59 = February 29, 365 = December 31): the mean over all observations on that calendar
    /// day, with days never observed interpolated linearly (circularly) between the nearest
    /// observed days.
    pub typical_temperature: Vec<f64>,
    /// Calendar days (of 366) with at least one observation.
    pub observed_days: usize,
    /// Predicted consumption over a 365-day year (February 29 left out), kWh.
    pub annual_consumption: f64,
}

impl BaselineModel {
    /// Fits the CalTRACK 2 daily model to the observations within `period` (default: first to
    /// last observed date; observations outside it are ignored).
    ///
    /// The fit always runs when the data allow one; data insufficiency and calibration
    /// failures are reported in [`BaselineModel::warnings`]. Errors: fewer than
    /// [`MIN_OBSERVATIONS`] observations, constant consumption, an inverted period, non-finite
    /// values, or an invalid configuration.
    pub fn fit(
        observations: &[DailyObservation],
        period: Option<DatePeriod>,
        config: &BaselineConfig,
    ) -> Result<Self, AnalysisError> {
        config.validate()?;
        let grid = config.balance_points()?;
        ensure_finite(observations)?;
        let period = match period {
            Some(p) => DatePeriod::new(p.start, p.end)?,
            None => observed_span(observations)
                .ok_or(AnalysisError::TooFewObservations { found: 0, required: MIN_OBSERVATIONS })?,
        };
        let mut data: Vec<DailyObservation> =
            observations.iter().filter(|o| period.contains(o.date)).copied().collect();
        if data.len() < MIN_OBSERVATIONS {
            return Err(AnalysisError::TooFewObservations { found: data.len(), required: MIN_OBSERVATIONS });
        }
        data.sort_by_key(|o| o.date);
        let observed_days = 1 + data.windows(2).filter(|w| w[0].date != w[1].date).count();
        let data_sufficiency = observed_days as f64 / period.days() as f64;

        let search = Search::new(&data, config)?;
        let best = search.best(&grid, config);
        let model_type = best.model_type();
        let predict = |t: f64| best.predict(t);

        let actual: Vec<f64> = data.iter().map(|o| o.consumption).collect();
        let predicted: Vec<f64> = data.iter().map(|o| predict(o.temperature)).collect();
        let metrics = fit_metrics(&actual, &predicted, model_type.parameters()).ok_or(AnalysisError::NoVariance)?;
        let residuals: Vec<_> =
            data.iter().zip(actual.iter().zip(&predicted)).map(|(o, (y, yhat))| (o.date, y - yhat)).collect();
        let guideline14 = config.guideline14.assess(metrics.cv_rmse, metrics.nmbe);
        let mut warnings = Vec::new();
        if data_sufficiency < config.min_data_sufficiency {
            warnings.push(ModelWarning::InsufficientData);
        }
        if !guideline14.cv_rmse_ok {
            warnings.push(ModelWarning::CvRmseAboveGuideline14);
        }
        if !guideline14.nmbe_ok {
            warnings.push(ModelWarning::NmbeAboveGuideline14);
        }
        Ok(Self {
            model_type,
            heating_balance_point: best.heating.map(|(bp, _)| bp),
            cooling_balance_point: best.cooling.map(|(bp, _)| bp),
            intercept: best.intercept,
            heating_slope: best.heating.map(|(_, slope)| slope),
            cooling_slope: best.cooling.map(|(_, slope)| slope),
            n: metrics.n,
            r2: metrics.r2,
            adj_r2: metrics.adj_r2,
            rmse: metrics.rmse,
            cv_rmse: metrics.cv_rmse,
            nmbe: metrics.nmbe,
            residual_autocorrelation: daily_lag1_autocorrelation(&residuals),
            period,
            data_sufficiency,
            guideline14,
            warnings,
        })
    }

    /// Expected consumption, kWh, on a day with mean temperature `temperature` (°C).
    pub fn predict(&self, temperature: f64) -> f64 {
        let heating = match (self.heating_balance_point, self.heating_slope) {
            (Some(bp), Some(slope)) => slope * heating_degree_days(temperature, bp),
            _ => 0.0,
        };
        let cooling = match (self.cooling_balance_point, self.cooling_slope) {
            (Some(bp), Some(slope)) => slope * cooling_degree_days(temperature, bp),
            _ => 0.0,
        };
        self.intercept + heating + cooling
    }

    /// Expected consumption for each temperature of a series, in the same order.
    pub fn predict_series(&self, temperatures: &[f64]) -> Vec<f64> {
        temperatures.iter().map(|&t| self.predict(t)).collect()
    }

    /// Weather-normalized annual consumption: the model applied to a typical year built from
    /// the mean temperature of each calendar day over `observations` (February 29 has its own
    /// slot but is left out of the 365-day total). Errors when `observations` is empty or holds
    /// non-finite values.
    pub fn normal_year(&self, observations: &[DailyObservation]) -> Result<NormalYear, AnalysisError> {
        ensure_finite(observations)?;
        let mut sums = [(0.0, 0u32); YEAR_SLOTS];
        for o in observations {
            let slot = &mut sums[leap_year_slot(o.date)];
            slot.0 += o.temperature;
            slot.1 += 1;
        }
        let observed: Vec<usize> = (0..YEAR_SLOTS).filter(|&s| sums[s].1 > 0).collect();
        if observed.is_empty() {
            return Err(AnalysisError::TooFewObservations { found: 0, required: 1 });
        }
        let mean = |s: usize| sums[s].0 / f64::from(sums[s].1);
        let mut typical = vec![0.0; YEAR_SLOTS];
        for (i, &from) in observed.iter().enumerate() {
            let to = observed[(i + 1) % observed.len()];
            let gap = (to + YEAR_SLOTS - from - 1) % YEAR_SLOTS + 1;
            let (start, end) = (mean(from), mean(to));
            for step in 0..gap {
                let fraction = step as f64 / gap as f64;
                typical[(from + step) % YEAR_SLOTS] = start + (end - start) * fraction;
            }
        }
        let annual_consumption =
            typical.iter().enumerate().filter(|&(slot, _)| slot != FEB_29_SLOT).map(|(_, &t)| self.predict(t)).sum();
        Ok(NormalYear { typical_temperature: typical, observed_days: observed.len(), annual_consumption })
    }
}

/// Index of `date`'s calendar day within a leap year (January 1 = 0, February 29 = 59).
fn leap_year_slot(date: chrono::NaiveDate) -> usize {
    use chrono::Datelike;
    let ordinal = date.ordinal0() as usize;
    if date.leap_year() || ordinal < FEB_29_SLOT { ordinal } else { ordinal + 1 }
}

/// First to last observed date.
fn observed_span(observations: &[DailyObservation]) -> Option<DatePeriod> {
    let start = observations.iter().map(|o| o.date).min()?;
    let end = observations.iter().map(|o| o.date).max()?;
    Some(DatePeriod { start, end })
}

/// The sums one slope term contributes to the normal equations, with `x` its degree days and
/// `y` the consumption centered on its mean.
#[derive(Debug, Clone, Copy)]
struct Term {
    balance_point: f64,
    /// Days with `x > 0`.
    days: usize,
    /// `Σx`.
    sum: f64,
    /// `Σx²`.
    sum_sq: f64,
    /// `Σx·y`.
    sum_xy: f64,
}

impl Term {
    /// Centered sum of squares `Σ(x - x̄)²`, or `None` when `x` is (nearly) constant.
    fn centered_sq(&self, n: f64) -> Option<f64> {
        let s = self.sum_sq - self.sum * self.sum / n;
        (s > DEGENERATE * self.sum_sq).then_some(s)
    }
}

/// The selected candidate while searching.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    intercept: f64,
    /// Balance point and slope of the heating term.
    heating: Option<(f64, f64)>,
    /// Balance point and slope of the cooling term.
    cooling: Option<(f64, f64)>,
    adj_r2: f64,
}

impl Candidate {
    fn model_type(&self) -> ModelType {
        match (self.heating.is_some(), self.cooling.is_some()) {
            (false, false) => ModelType::InterceptOnly,
            (true, false) => ModelType::HeatingOnly,
            (false, true) => ModelType::CoolingOnly,
            (true, true) => ModelType::HeatingCooling,
        }
    }

    fn predict(&self, t: f64) -> f64 {
        let heating = self.heating.map_or(0.0, |(bp, slope)| slope * heating_degree_days(t, bp));
        let cooling = self.cooling.map_or(0.0, |(bp, slope)| slope * cooling_degree_days(t, bp));
        self.intercept + heating + cooling
    }
}

/// Temperature-sorted observations with prefix sums, from which every candidate's OLS fit is
/// O(1).
struct Search {
    n: usize,
    mean_y: f64,
    /// `Σ(y - ȳ)²`.
    syy: f64,
    /// Reference temperature (the mean) subtracted before summing, for accuracy.
    shift: f64,
    /// Temperatures, ascending.
    temperatures: Vec<f64>,
    /// `prefix[k]` = sums over the `k` coldest days of `[u, u², y, u·y]`, with `u = T - shift`
    /// and `y` centered consumption.
    prefix: Vec<[f64; 4]>,
    /// Critical |t| a slope must exceed, for one and for two slope terms (0 without a test).
    critical_t: [f64; 2],
}

impl Search {
    fn new(data: &[DailyObservation], config: &BaselineConfig) -> Result<Self, AnalysisError> {
        let n = data.len();
        let nf = n as f64;
        let mean_y = data.iter().map(|o| o.consumption).sum::<f64>() / nf;
        let syy: f64 = data.iter().map(|o| (o.consumption - mean_y) * (o.consumption - mean_y)).sum();
        if syy.is_nan() || syy <= 0.0 {
            return Err(AnalysisError::NoVariance);
        }
        let shift = data.iter().map(|o| o.temperature).sum::<f64>() / nf;
        let mut sorted: Vec<(f64, f64)> = data.iter().map(|o| (o.temperature, o.consumption - mean_y)).collect();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut prefix = Vec::with_capacity(n + 1);
        let mut acc = [0.0; 4];
        prefix.push(acc);
        for &(t, y) in &sorted {
            let u = t - shift;
            acc = [acc[0] + u, acc[1] + u * u, acc[2] + y, acc[3] + u * y];
            prefix.push(acc);
        }
        let critical = |slopes: usize| match config.max_slope_p_value {
            None => 0.0,
            Some(p) => {
                let df = nf - 1.0 - slopes as f64;
                if df >= 1.0 { student_t_quantile(1.0 - p / 2.0, df).unwrap_or(f64::INFINITY) } else { f64::INFINITY }
            }
        };
        Ok(Self {
            n,
            mean_y,
            syy,
            shift,
            temperatures: sorted.iter().map(|&(t, _)| t).collect(),
            prefix,
            critical_t: [critical(1), critical(2)],
        })
    }

    /// Heating term `max(0, bp - T)`: non-zero on the days colder than `bp`.
    fn heating_term(&self, bp: f64) -> Term {
        let k = self.temperatures.partition_point(|&t| t < bp);
        let [su, suu, sy, suy] = self.prefix[k];
        let d = bp - self.shift;
        let kf = k as f64;
        Term {
            balance_point: bp,
            days: k,
            sum: kf * d - su,
            sum_sq: kf * d * d - 2.0 * d * su + suu,
            sum_xy: d * sy - suy,
        }
    }

    /// Cooling term `max(0, T - bp)`: non-zero on the days warmer than `bp`.
    fn cooling_term(&self, bp: f64) -> Term {
        let j = self.temperatures.partition_point(|&t| t <= bp);
        let total = self.prefix[self.n];
        let below = self.prefix[j];
        let [su, suu, sy, suy] = std::array::from_fn(|i| total[i] - below[i]);
        let d = bp - self.shift;
        let count = (self.n - j) as f64;
        Term {
            balance_point: bp,
            days: self.n - j,
            sum: su - count * d,
            sum_sq: suu - 2.0 * d * su + count * d * d,
            sum_xy: suy - d * sy,
        }
    }

    fn enough_degree_days(term: &Term, config: &BaselineConfig) -> bool {
        term.days > 0 && term.days >= config.min_nonzero_degree_days && term.sum >= config.min_total_degree_days
    }

    fn adjusted_r2(&self, ssr: f64, parameters: usize) -> f64 {
        let n = self.n as f64;
        1.0 - (ssr / (n - parameters as f64)) / (self.syy / (n - 1.0))
    }

    /// OLS with one slope term, if the slope is positive and significant.
    fn fit_one(&self, term: &Term) -> Option<(f64, f64, f64)> {
        let n = self.n as f64;
        if n < 3.0 {
            return None;
        }
        let sxx = term.centered_sq(n)?;
        let slope = term.sum_xy / sxx;
        let ssr = (self.syy - slope * term.sum_xy).max(0.0);
        let variance = ssr / (n - 2.0) / sxx;
        let t = self.critical_t[0];
        if !(slope > 0.0 && slope * slope > t * t * variance) {
            return None;
        }
        let intercept = self.mean_y - slope * term.sum / n;
        Some((intercept, slope, self.adjusted_r2(ssr, 2)))
    }

    /// OLS with a heating and a cooling term (disjoint supports), if both slopes are positive
    /// and significant.
    fn fit_two(&self, h: &Term, c: &Term) -> Option<(f64, f64, f64, f64)> {
        let n = self.n as f64;
        if n < 4.0 {
            return None;
        }
        let shh = h.centered_sq(n)?;
        let scc = c.centered_sq(n)?;
        let shc = -h.sum * c.sum / n;
        let det = shh * scc - shc * shc;
        if det.is_nan() || det <= DEGENERATE * shh * scc {
            return None;
        }
        let bh = (scc * h.sum_xy - shc * c.sum_xy) / det;
        let bc = (shh * c.sum_xy - shc * h.sum_xy) / det;
        let ssr = (self.syy - bh * h.sum_xy - bc * c.sum_xy).max(0.0);
        let sigma2 = ssr / (n - 3.0);
        let t2 = self.critical_t[1] * self.critical_t[1];
        let significant = |b: f64, variance: f64| b > 0.0 && b * b > t2 * variance;
        if !(significant(bh, sigma2 * scc / det) && significant(bc, sigma2 * shh / det)) {
            return None;
        }
        let intercept = self.mean_y - (bh * h.sum + bc * c.sum) / n;
        Some((intercept, bh, bc, self.adjusted_r2(ssr, 3)))
    }

    /// The qualified candidate with the highest adjusted R² (earliest on ties).
    fn best(&self, grid: &[f64], config: &BaselineConfig) -> Candidate {
        let mut best = Candidate { intercept: self.mean_y, heating: None, cooling: None, adj_r2: 0.0 };
        let mut consider = |candidate: Candidate| {
            if candidate.adj_r2 > best.adj_r2 {
                best = candidate;
            }
        };
        let heating: Vec<Term> =
            grid.iter().map(|&bp| self.heating_term(bp)).filter(|t| Self::enough_degree_days(t, config)).collect();
        let cooling: Vec<Term> = if config.include_cooling {
            grid.iter().map(|&bp| self.cooling_term(bp)).filter(|t| Self::enough_degree_days(t, config)).collect()
        } else {
            Vec::new()
        };
        for h in &heating {
            if let Some((intercept, slope, adj_r2)) = self.fit_one(h) {
                consider(Candidate { intercept, heating: Some((h.balance_point, slope)), cooling: None, adj_r2 });
            }
        }
        for c in &cooling {
            if let Some((intercept, slope, adj_r2)) = self.fit_one(c) {
                consider(Candidate { intercept, heating: None, cooling: Some((c.balance_point, slope)), adj_r2 });
            }
        }
        for h in &heating {
            for c in cooling.iter().filter(|c| c.balance_point >= h.balance_point) {
                if let Some((intercept, bh, bc, adj_r2)) = self.fit_two(h, c) {
                    consider(Candidate {
                        intercept,
                        heating: Some((h.balance_point, bh)),
                        cooling: Some((c.balance_point, bc)),
                        adj_r2,
                    });
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::test_support::{day, synthetic};
    use chrono::Days;

    fn assert_close(actual: f64, expected: f64, tolerance: f64, what: &str) {
        assert!((actual - expected).abs() <= tolerance, "{what}: {actual} not within {tolerance} of {expected}");
    }

    #[test]
    fn model_type_names_are_pinned() {
        crate::names::assert_names(&[
            (ModelType::InterceptOnly, "intercept_only"),
            (ModelType::HeatingOnly, "heating_only"),
            (ModelType::CoolingOnly, "cooling_only"),
            (ModelType::HeatingCooling, "heating_cooling"),
        ]);
    }

    #[test]
    fn recovers_heating_only_model() {
        let data = synthetic(730, 2.0, 1, |t| 100.0 + 5.0 * (14.0 - t).max(0.0));
        let model = BaselineModel::fit(&data, None, &BaselineConfig::default()).unwrap();
        assert_eq!(model.model_type, ModelType::HeatingOnly);
        assert_close(model.heating_balance_point.unwrap(), 14.0, 0.5, "T_h");
        assert_close(model.heating_slope.unwrap(), 5.0, 0.1, "b_h");
        assert_close(model.intercept, 100.0, 2.0, "a");
        assert_eq!(model.cooling_slope, None);
        assert_eq!(model.n, 730);
        assert!(model.r2 > 0.95, "{}", model.r2);
        assert!(model.warnings.is_empty(), "{:?}", model.warnings);
        assert!(model.guideline14.passes);
        assert_close(model.data_sufficiency, 1.0, 0.0, "sufficiency");
    }

    #[test]
    fn recovers_cooling_only_model() {
        let data = synthetic(365, 1.5, 2, |t| 40.0 + 6.0 * (t - 18.0).max(0.0));
        let model = BaselineModel::fit(&data, None, &BaselineConfig::default()).unwrap();
        assert_eq!(model.model_type, ModelType::CoolingOnly);
        assert_close(model.cooling_balance_point.unwrap(), 18.0, 0.5, "T_c");
        assert_close(model.cooling_slope.unwrap(), 6.0, 0.12, "b_c");
    }

    #[test]
    fn recovers_heating_cooling_model() {
        let load = |t: f64| 50.0 + 3.0 * (12.0 - t).max(0.0) + 4.0 * (t - 20.0).max(0.0);
        let data = synthetic(730, 1.5, 3, load);
        let model = BaselineModel::fit(&data, None, &BaselineConfig::default()).unwrap();
        assert_eq!(model.model_type, ModelType::HeatingCooling);
        assert_close(model.heating_balance_point.unwrap(), 12.0, 0.5, "T_h");
        assert_close(model.cooling_balance_point.unwrap(), 20.0, 0.5, "T_c");
        assert_close(model.heating_slope.unwrap(), 3.0, 0.06, "b_h");
        assert_close(model.cooling_slope.unwrap(), 4.0, 0.08, "b_c");
        assert_close(model.intercept, 50.0, 1.5, "a");
    }

    #[test]
    fn without_cooling_a_cooling_load_is_not_modelled() {
        let data = synthetic(365, 1.5, 2, |t| 40.0 + 6.0 * (t - 18.0).max(0.0));
        let config = BaselineConfig { include_cooling: false, ..BaselineConfig::default() };
        let model = BaselineModel::fit(&data, None, &config).unwrap();
        assert!(model.cooling_slope.is_none());
    }

    #[test]
    fn flat_consumption_gives_intercept_only() {
        // Smooth seasonal temperatures and day-to-day alternating consumption: no degree-day
        // term correlates with the load, so none has a significant slope.
        let start = day(2023, 1, 1);
        let data: Vec<_> = (0..365u64)
            .map(|i| DailyObservation {
                date: start + Days::new(i),
                consumption: if i % 2 == 0 { 77.0 } else { 83.0 },
                temperature: 12.0 + 12.0 * (std::f64::consts::TAU * i as f64 / 365.0).sin(),
            })
            .collect();
        let model = BaselineModel::fit(&data, None, &BaselineConfig::default()).unwrap();
        assert_eq!(model.model_type, ModelType::InterceptOnly);
        let mean = data.iter().map(|o| o.consumption).sum::<f64>() / 365.0;
        assert_close(model.intercept, mean, 1e-9, "a");
        assert_close(model.adj_r2, 0.0, 1e-12, "adj R²");
        assert_close(model.predict(-10.0), mean, 1e-9, "prediction");
        assert!(model.heating_balance_point.is_none() && model.cooling_balance_point.is_none());
    }

    #[test]
    fn prefix_sum_fit_matches_direct_least_squares() {
        let data = synthetic(400, 4.0, 5, |t| 70.0 + 2.5 * (15.0 - t).max(0.0));
        let model = BaselineModel::fit(&data, None, &BaselineConfig::default()).unwrap();
        let bp = model.heating_balance_point.unwrap();
        let x: Vec<f64> = data.iter().map(|o| heating_degree_days(o.temperature, bp)).collect();
        let y: Vec<f64> = data.iter().map(|o| o.consumption).collect();
        let n = x.len() as f64;
        let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
        let sxy: f64 = x.iter().zip(&y).map(|(a, b)| (a - mx) * (b - my)).sum();
        let sxx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
        let slope = sxy / sxx;
        assert_close(model.heating_slope.unwrap(), slope, 1e-9, "slope");
        assert_close(model.intercept, my - slope * mx, 1e-9, "intercept");
    }

    #[test]
    fn degree_day_minimum_rejects_rare_heating() {
        // Only 8 days fall below 5 °C: too few for a heating term at any balance point there.
        let start = day(2023, 1, 1);
        let data: Vec<_> = (0..200u64)
            .map(|i| {
                let temperature = if i < 8 { 0.0 } else { 20.0 + (i % 7) as f64 };
                let consumption = 50.0 + if i < 8 { 40.0 } else { (i % 3) as f64 };
                DailyObservation { date: start + Days::new(i), consumption, temperature }
            })
            .collect();
        let config = BaselineConfig { max_balance_point: 5.0, ..BaselineConfig::default() };
        let model = BaselineModel::fit(&data, None, &config).unwrap();
        assert_eq!(model.model_type, ModelType::InterceptOnly);
        let lenient = BaselineConfig { min_nonzero_degree_days: 5, ..config };
        let model = BaselineModel::fit(&data, None, &lenient).unwrap();
        assert_eq!(model.model_type, ModelType::HeatingOnly);
    }

    #[test]
    fn missing_days_lower_sufficiency_and_warn() {
        let data: Vec<_> = synthetic(365, 2.0, 6, |t| 100.0 + 5.0 * (14.0 - t).max(0.0))
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % 5 != 0)
            .map(|(_, o)| o)
            .collect();
        let period = DatePeriod::new(day(2023, 1, 1), day(2023, 12, 31)).unwrap();
        let model = BaselineModel::fit(&data, Some(period), &BaselineConfig::default()).unwrap();
        assert_close(model.data_sufficiency, 292.0 / 365.0, 1e-12, "sufficiency");
        assert_eq!(model.warnings, vec![ModelWarning::InsufficientData]);
        assert_eq!(model.model_type, ModelType::HeatingOnly);
    }

    #[test]
    fn noisy_model_fails_guideline14() {
        let data = synthetic(365, 40.0, 7, |t| 100.0 + 5.0 * (14.0 - t).max(0.0));
        let model = BaselineModel::fit(&data, None, &BaselineConfig::default()).unwrap();
        assert!(model.cv_rmse.unwrap() > 0.25);
        assert!(!model.guideline14.passes);
        assert!(model.warnings.contains(&ModelWarning::CvRmseAboveGuideline14));
    }

    #[test]
    fn period_filters_observations() {
        let data = synthetic(365, 2.0, 8, |t| 100.0 + 5.0 * (14.0 - t).max(0.0));
        let period = DatePeriod::new(day(2023, 1, 1), day(2023, 6, 30)).unwrap();
        let model = BaselineModel::fit(&data, Some(period), &BaselineConfig::default()).unwrap();
        assert_eq!(model.n, 181);
        assert_eq!(model.period, period);
    }

    #[test]
    fn degenerate_inputs_are_errors() {
        let config = BaselineConfig::default();
        assert_eq!(
            BaselineModel::fit(&[], None, &config),
            Err(AnalysisError::TooFewObservations { found: 0, required: 3 })
        );
        let two = synthetic(2, 1.0, 9, |_| 10.0);
        assert_eq!(
            BaselineModel::fit(&two, None, &config),
            Err(AnalysisError::TooFewObservations { found: 2, required: 3 })
        );
        let constant: Vec<_> = synthetic(50, 0.0, 9, |_| 10.0);
        assert_eq!(BaselineModel::fit(&constant, None, &config), Err(AnalysisError::NoVariance));
        let inverted = DatePeriod { start: day(2023, 2, 1), end: day(2023, 1, 1) };
        assert!(matches!(
            BaselineModel::fit(&constant, Some(inverted), &config),
            Err(AnalysisError::InvertedPeriod { .. })
        ));
        let mut with_nan = synthetic(50, 1.0, 9, |_| 10.0);
        with_nan[3].temperature = f64::NAN;
        assert_eq!(
            BaselineModel::fit(&with_nan, None, &config),
            Err(AnalysisError::NonFinite { date: with_nan[3].date })
        );
    }

    #[test]
    fn invalid_configs_are_errors() {
        let data = synthetic(50, 1.0, 10, |t| 10.0 + t);
        let bad = [
            BaselineConfig { balance_point_step: 0.6, ..BaselineConfig::default() },
            BaselineConfig { balance_point_step: 0.0, ..BaselineConfig::default() },
            BaselineConfig { min_balance_point: 5.0, max_balance_point: 4.0, ..BaselineConfig::default() },
            BaselineConfig { max_balance_point: 1e9, ..BaselineConfig::default() },
            BaselineConfig { max_slope_p_value: Some(1.5), ..BaselineConfig::default() },
            BaselineConfig { min_data_sufficiency: 2.0, ..BaselineConfig::default() },
        ];
        for config in bad {
            assert!(matches!(BaselineModel::fit(&data, None, &config), Err(AnalysisError::InvalidParameter(_))));
        }
    }

    #[test]
    fn default_grid_spans_minus_one_to_thirty_two() {
        let grid = BaselineConfig::default().balance_points().unwrap();
        assert_eq!(grid.len(), 67);
        assert_eq!(grid[0], -1.0);
        assert_eq!(grid[66], 32.0);
    }

    #[test]
    fn predicts_piecewise_linear_load() {
        let data = synthetic(730, 1.0, 11, |t| 50.0 + 3.0 * (12.0 - t).max(0.0) + 4.0 * (t - 20.0).max(0.0));
        let model = BaselineModel::fit(&data, None, &BaselineConfig::default()).unwrap();
        let (th, tc) = (model.heating_balance_point.unwrap(), model.cooling_balance_point.unwrap());
        let mid = (th + tc) / 2.0;
        assert_close(model.predict(mid), model.intercept, 0.0, "between balance points");
        let expected = model.intercept + model.heating_slope.unwrap() * (th + 5.0);
        assert_close(model.predict(-5.0), expected, 1e-12, "heating side");
        assert_eq!(model.predict_series(&[mid, -5.0]), vec![model.intercept, expected]);
    }

    #[test]
    fn normal_year_uses_mean_temperature_per_calendar_day() {
        let model = BaselineModel {
            model_type: ModelType::HeatingOnly,
            heating_balance_point: Some(15.0),
            cooling_balance_point: None,
            intercept: 10.0,
            heating_slope: Some(2.0),
            cooling_slope: None,
            ..BaselineModel::fit(&synthetic(30, 1.0, 12, |t| t + 20.0), None, &BaselineConfig::default()).unwrap()
        };
        // Two years, each calendar day at 5 °C one year and 15 °C the other: typical 10 °C.
        let start = day(2023, 1, 1);
        let data: Vec<_> = (0..731u64)
            .map(|i| DailyObservation {
                date: start + Days::new(i),
                consumption: 0.0,
                temperature: if i < 365 { 5.0 } else { 15.0 },
            })
            .collect();
        let year = model.normal_year(&data).unwrap();
        assert_eq!(year.observed_days, 366);
        assert_eq!(year.typical_temperature.len(), 366);
        assert_close(year.typical_temperature[0], 10.0, 1e-12, "Jan 1");
        assert_close(year.typical_temperature[59], 15.0, 1e-12, "Feb 29");
        assert_close(year.annual_consumption, 365.0 * 20.0, 1e-9, "annual");
    }

    #[test]
    fn normal_year_interpolates_unobserved_days() {
        let model =
            BaselineModel::fit(&synthetic(30, 1.0, 13, |t| t + 20.0), None, &BaselineConfig::default()).unwrap();
        let obs = |date, temperature| DailyObservation { date, consumption: 0.0, temperature };
        let data = [obs(day(2023, 1, 1), 0.0), obs(day(2023, 1, 11), 10.0)];
        let year = model.normal_year(&data).unwrap();
        assert_eq!(year.observed_days, 2);
        assert_close(year.typical_temperature[5], 5.0, 1e-12, "Jan 6");
        // From Jan 11 (slot 10) around the year end back to Jan 1: 356 steps from 10 to 0.
        assert_close(year.typical_temperature[188], 5.0, 1e-12, "mid-way round");
        assert!(model.normal_year(&[]).is_err());
    }

    #[test]
    fn model_round_trips_through_json() {
        let data = synthetic(365, 2.0, 14, |t| 100.0 + 5.0 * (14.0 - t).max(0.0));
        let model = BaselineModel::fit(&data, None, &BaselineConfig::default()).unwrap();
        let json = serde_json::to_string(&model).unwrap();
        assert!(json.contains("\"model_type\":\"heating_only\""), "{json}");
        assert_eq!(model.model_type.as_str(), "heating_only");
        let back: BaselineModel = serde_json::from_str(&json).unwrap();
        assert_eq!(back.model_type, model.model_type);
        assert_eq!(back.heating_balance_point, model.heating_balance_point);
        assert_eq!(back.period, model.period);
        assert_eq!(back.guideline14, model.guideline14);
        assert_close(back.intercept, model.intercept, 1e-12, "intercept");
        assert_close(back.cv_rmse.unwrap(), model.cv_rmse.unwrap(), 1e-15, "CV(RMSE)");
    }

    #[test]
    fn leap_year_slots() {
        assert_eq!(leap_year_slot(day(2023, 2, 28)), 58);
        assert_eq!(leap_year_slot(day(2024, 2, 29)), 59);
        assert_eq!(leap_year_slot(day(2023, 3, 1)), 60);
        assert_eq!(leap_year_slot(day(2024, 3, 1)), 60);
        assert_eq!(leap_year_slot(day(2023, 12, 31)), 365);
    }
}
