//! What a meter measures: its [`Fuel`], the [`Unit`] its readings arrive in, and how a reading
//! becomes kWh, the one unit aggregates, analysis, alerts and charts use.
//!
//! A reading keeps the value it arrived with; [`Conversion::kwh_per_unit`] gives the factor that
//! turns it into site energy in kWh. Energy units convert by their definition (1 therm =
//! 29.3071 kWh, 1 kBtu = 0.293071 kWh); volumes of a fuel convert by that fuel's heat content
//! (natural gas by a configurable calorific value, fuel oil and propane by the ENERGY STAR
//! Portfolio Manager factors); water has no energy content, so its readings stay in their volume.

use serde::{Deserialize, Serialize};

/// kWh in one kBtu (1 Btu = 1,055.056 J).
pub const KWH_PER_KBTU: f64 = 0.293_071;

/// m³ in one cubic foot.
const M3_PER_FT3: f64 = 0.028_316_846_592;

/// Litres in one US gallon.
const L_PER_GAL: f64 = 3.785_411_784;

/// A closed set of names (fuels, units, use types): one spelling out (`as_str`, serde), the
/// common spellings in (`parse`, case-insensitive), and an error listing the accepted ones.
pub trait Named: Copy + strum::VariantArray + Into<&'static str> + std::str::FromStr + 'static {
    /// What the names name, for errors (`fuel`, `unit`, ...).
    const KIND: &'static str;

    /// The one spelling every surface uses (`natural_gas`, `kWh`, ...).
    fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses a name, trimmed and case-insensitive, with its common spellings (`gas`, `m³`).
    fn parse(text: &str) -> Result<Self, UnknownName> {
        text.trim().parse().map_err(|_| UnknownName::new(Self::KIND, text, Self::names()))
    }

    /// Every accepted name, for error messages and documentation.
    fn names() -> Vec<&'static str> {
        Self::VARIANTS.iter().map(|name| (*name).into()).collect()
    }
}

/// What a meter measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::VariantArray)]
#[strum(serialize_all = "snake_case", ascii_case_insensitive)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Fuel {
    /// Grid or on-site electricity.
    Electricity,
    /// Natural gas (pipeline methane).
    #[strum(to_string = "natural_gas", serialize = "gas")]
    NaturalGas,
    /// Heat bought from a district network (hot water).
    DistrictHeating,
    /// Chilled water bought from a district network.
    DistrictCooling,
    /// Heating oil (No. 2).
    #[strum(to_string = "fuel_oil", serialize = "oil")]
    FuelOil,
    /// Propane / LPG.
    Propane,
    /// District or purchased steam.
    Steam,
    /// Water: a volume, not energy.
    Water,
    /// Anything else, in energy units only.
    Other,
}

impl Named for Fuel {
    const KIND: &'static str = "fuel";
}

impl Fuel {
    /// Whether the fuel's readings carry energy (all but water).
    pub fn is_energy(self) -> bool {
        self != Fuel::Water
    }
}

/// The unit a meter's readings arrive in.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[strum(ascii_case_insensitive)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Unit {
    /// Watt-hour.
    #[serde(rename = "Wh")]
    #[strum(serialize = "Wh")]
    Wh,
    /// Kilowatt-hour.
    #[serde(rename = "kWh")]
    #[strum(serialize = "kWh")]
    Kwh,
    /// Megawatt-hour.
    #[serde(rename = "MWh")]
    #[strum(serialize = "MWh")]
    Mwh,
    /// Thousand Btu.
    #[serde(rename = "kBtu")]
    #[strum(serialize = "kBtu")]
    Kbtu,
    /// Million Btu.
    #[serde(rename = "MMBtu")]
    #[strum(serialize = "MMBtu")]
    Mmbtu,
    /// Therm (100 kBtu).
    #[serde(rename = "therm")]
    #[strum(to_string = "therm", serialize = "therms", serialize = "thm")]
    Therm,
    /// Megajoule.
    #[serde(rename = "MJ")]
    #[strum(serialize = "MJ")]
    Mj,
    /// Gigajoule.
    #[serde(rename = "GJ")]
    #[strum(serialize = "GJ")]
    Gj,
    /// Ton-hour of cooling (12 kBtu).
    #[serde(rename = "ton_hour")]
    #[strum(to_string = "ton_hour", serialize = "ton-hour", serialize = "ton_hours")]
    TonHour,
    /// Cubic metre (of gas or water).
    #[serde(rename = "m3")]
    #[strum(to_string = "m3", serialize = "m³")]
    M3,
    /// Cubic foot.
    #[serde(rename = "ft3")]
    #[strum(to_string = "ft3", serialize = "ft³", serialize = "cf")]
    Ft3,
    /// Hundred cubic feet.
    #[serde(rename = "ccf")]
    #[strum(serialize = "ccf")]
    Ccf,
    /// Litre.
    #[serde(rename = "L")]
    #[strum(to_string = "L", serialize = "litre", serialize = "liter")]
    L,
    /// US gallon.
    #[serde(rename = "gal")]
    #[strum(to_string = "gal", serialize = "gallon")]
    Gal,
}

/// What a unit measures.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Dimension {
    /// Energy: converts to kWh by definition.
    Energy(f64),
    /// Volume, in m³ per unit: converts by the fuel's heat content.
    Volume(f64),
}

impl Named for Unit {
    const KIND: &'static str = "unit";
}

impl Unit {
    fn dimension(self) -> Dimension {
        match self {
            Unit::Wh => Dimension::Energy(0.001),
            Unit::Kwh => Dimension::Energy(1.0),
            Unit::Mwh => Dimension::Energy(1_000.0),
            Unit::Kbtu => Dimension::Energy(KWH_PER_KBTU),
            Unit::Mmbtu => Dimension::Energy(1_000.0 * KWH_PER_KBTU),
            Unit::Therm => Dimension::Energy(100.0 * KWH_PER_KBTU),
            Unit::Mj => Dimension::Energy(1.0 / 3.6),
            Unit::Gj => Dimension::Energy(1_000.0 / 3.6),
            Unit::TonHour => Dimension::Energy(12.0 * KWH_PER_KBTU),
            Unit::M3 => Dimension::Volume(1.0),
            Unit::Ft3 => Dimension::Volume(M3_PER_FT3),
            Unit::Ccf => Dimension::Volume(100.0 * M3_PER_FT3),
            Unit::L => Dimension::Volume(0.001),
            Unit::Gal => Dimension::Volume(L_PER_GAL / 1_000.0),
        }
    }
}

/// A name that is not one of the accepted ones: says which kind of name, the value and the
/// accepted names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{value}' is not a known {kind}; expected one of {}", .accepted.join(", "))]
pub struct UnknownName {
    /// What was named (`fuel`, `unit`, `use type`, ...).
    pub kind: &'static str,
    /// The value given.
    pub value: String,
    /// Every accepted name.
    pub accepted: Vec<&'static str>,
}

impl UnknownName {
    /// The error for `value`, not a known `kind`.
    pub fn new(kind: &'static str, value: &str, accepted: Vec<&'static str>) -> Self {
        Self { kind, value: value.to_owned(), accepted }
    }
}

/// A unit that does not fit a fuel (electricity in m³, gas in gallons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{} is not measured in {}", .fuel.as_str(), .unit.as_str())]
pub struct UnitMismatch {
    /// The meter's fuel.
    pub fuel: Fuel,
    /// The unit given.
    pub unit: Unit,
}

/// The factors that turn readings into kWh: the definitions of the energy units, and the heat
/// content of each fuel sold by volume.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conversion {
    /// kWh in one m³ of natural gas (its gross calorific value). Gas differs by region and
    /// supplier; the default is ENERGY STAR Portfolio Manager's 36.303 kBtu/m³.
    pub gas_kwh_per_m3: f64,
}

impl Default for Conversion {
    fn default() -> Self {
        Self { gas_kwh_per_m3: 36.303 * KWH_PER_KBTU }
    }
}

impl Conversion {
    /// kWh per unit of `fuel` read in `unit`: `Ok(None)` for water (a volume with no energy),
    /// an error when the unit does not measure that fuel.
    pub fn kwh_per_unit(&self, fuel: Fuel, unit: Unit) -> Result<Option<f64>, UnitMismatch> {
        let mismatch = UnitMismatch { fuel, unit };
        match (fuel, unit.dimension()) {
            (Fuel::Water, Dimension::Volume(_)) => Ok(None),
            (Fuel::Water, Dimension::Energy(_)) => Err(mismatch),
            (Fuel::Electricity, Dimension::Energy(_)) if matches!(unit, Unit::TonHour) => Err(mismatch),
            (_, Dimension::Energy(kwh)) => Ok(Some(kwh)),
            (Fuel::NaturalGas, Dimension::Volume(m3)) => Ok(Some(m3 * self.gas_kwh_per_m3)),
            // ENERGY STAR Portfolio Manager: fuel oil (No. 2) 138.6 kBtu/gal, propane 91.6 kBtu/gal.
            (Fuel::FuelOil, Dimension::Volume(m3)) => Ok(Some(m3 * 1_000.0 / L_PER_GAL * 138.6 * KWH_PER_KBTU)),
            (Fuel::Propane, Dimension::Volume(m3)) => Ok(Some(m3 * 1_000.0 / L_PER_GAL * 91.6 * KWH_PER_KBTU)),
            (_, Dimension::Volume(_)) => Err(mismatch),
        }
    }

    /// `value` of `fuel` read in `unit`, in kWh (see [`Conversion::kwh_per_unit`]).
    pub fn to_kwh(&self, fuel: Fuel, unit: Unit, value: f64) -> Result<Option<f64>, UnitMismatch> {
        Ok(self.kwh_per_unit(fuel, unit)?.map(|factor| value * factor))
    }
}

/// What a building is used for (the ENERGY STAR Portfolio Manager broad property types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::VariantArray)]
#[strum(serialize_all = "snake_case", ascii_case_insensitive)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum UseType {
    /// Offices.
    Office,
    /// Schools, universities.
    School,
    /// Shops, supermarkets.
    Retail,
    /// Homes and multifamily housing.
    Residential,
    /// Hospitals and clinics.
    Hospital,
    /// Warehouses and distribution.
    Warehouse,
    /// Hotels.
    Hotel,
    /// Factories.
    Industrial,
    /// Data centres.
    DataCenter,
    /// Anything else.
    Other,
}

impl Named for UseType {
    const KIND: &'static str = "use type";
}

/// The unit of a floor area.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[strum(ascii_case_insensitive)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AreaUnit {
    /// Square metres.
    #[serde(rename = "m2")]
    #[strum(to_string = "m2", serialize = "m²", serialize = "sqm")]
    M2,
    /// Square feet.
    #[serde(rename = "ft2")]
    #[strum(to_string = "ft2", serialize = "ft²", serialize = "sqft", serialize = "sf")]
    Ft2,
}

impl Named for AreaUnit {
    const KIND: &'static str = "area unit";
}

/// m² in one square foot.
const M2_PER_FT2: f64 = 0.092_903_04;

/// A gross floor area: a positive, finite number and its unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FloorArea {
    /// The area as given.
    pub value: f64,
    /// Its unit.
    pub unit: AreaUnit,
}

/// A floor area that is not a positive, finite number.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("a floor area must be a positive number, not {0}")]
pub struct InvalidFloorArea(pub f64);

impl FloorArea {
    /// A floor area of `value` `unit`; zero, negative and non-finite areas are refused (an EUI
    /// divides by it).
    pub fn parse(value: f64, unit: AreaUnit) -> Result<Self, InvalidFloorArea> {
        if value.is_finite() && value > 0.0 { Ok(Self { value, unit }) } else { Err(InvalidFloorArea(value)) }
    }

    /// The area in m².
    pub fn m2(self) -> f64 {
        match self.unit {
            AreaUnit::M2 => self.value,
            AreaUnit::Ft2 => self.value * M2_PER_FT2,
        }
    }

    /// The area in ft².
    pub fn ft2(self) -> f64 {
        self.m2() / M2_PER_FT2
    }
}

/// Energy use intensity: site energy per floor area per year, in both conventions analysts use.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Eui {
    /// kWh per m² per year.
    pub kwh_per_m2_year: f64,
    /// kBtu per ft² per year (ENERGY STAR's unit).
    pub kbtu_per_ft2_year: f64,
}

impl Eui {
    /// The EUI of `kwh` used over `days` days in `area`: scaled to a 365-day year. `None` for
    /// an empty period.
    pub fn of(kwh: f64, days: u32, area: FloorArea) -> Option<Self> {
        (days > 0).then(|| {
            let annual_kwh = kwh * 365.0 / f64::from(days);
            Self { kwh_per_m2_year: annual_kwh / area.m2(), kbtu_per_ft2_year: annual_kwh / KWH_PER_KBTU / area.ft2() }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-6 * b.abs().max(1.0)
    }

    #[test]
    fn names_parse_case_insensitively_with_their_common_spellings() {
        assert_eq!(Fuel::parse("Natural_Gas"), Ok(Fuel::NaturalGas));
        assert_eq!(Fuel::parse(" gas "), Ok(Fuel::NaturalGas));
        assert_eq!(Unit::parse("KWH"), Ok(Unit::Kwh));
        assert_eq!(Unit::parse("m³"), Ok(Unit::M3));
        assert_eq!(Unit::parse("therms"), Ok(Unit::Therm));
        assert_eq!(UseType::parse("DATA_CENTER"), Ok(UseType::DataCenter));
        assert_eq!(AreaUnit::parse("sqft"), Ok(AreaUnit::Ft2));
        for unit in <Unit as strum::VariantArray>::VARIANTS {
            assert_eq!(Unit::parse(unit.as_str()), Ok(*unit), "a unit's own symbol parses back");
        }
    }

    #[test]
    fn an_unknown_name_lists_the_accepted_ones() {
        let err = Unit::parse("kwhh").unwrap_err();
        assert_eq!(err.kind, "unit");
        let text = err.to_string();
        assert!(text.starts_with("'kwhh' is not a known unit; expected one of Wh, kWh, MWh"), "{text}");
        assert!(Fuel::parse("coal").unwrap_err().to_string().contains("natural_gas"));
    }

    #[test]
    fn energy_units_convert_by_definition() {
        let conversion = Conversion::default();
        let kwh = |unit| conversion.kwh_per_unit(Fuel::NaturalGas, unit).unwrap().unwrap();
        assert!(close(kwh(Unit::Therm), 29.3071));
        assert!(close(kwh(Unit::Kbtu), 0.293071));
        assert!(close(kwh(Unit::Mmbtu), 293.071));
        assert!(close(kwh(Unit::Gj), 277.777_777_8));
        assert!(close(conversion.to_kwh(Fuel::Electricity, Unit::Wh, 1500.0).unwrap().unwrap(), 1.5));
        assert!(close(conversion.to_kwh(Fuel::DistrictCooling, Unit::TonHour, 1.0).unwrap().unwrap(), 3.516852));
    }

    #[test]
    fn volumes_convert_by_the_fuel_s_heat_content() {
        let conversion = Conversion::default();
        let gas_m3 = conversion.kwh_per_unit(Fuel::NaturalGas, Unit::M3).unwrap().unwrap();
        assert!(close(gas_m3, 10.639_356));
        let ccf = conversion.kwh_per_unit(Fuel::NaturalGas, Unit::Ccf).unwrap().unwrap();
        assert!(close(ccf, gas_m3 * 2.831_684_659_2), "a ccf is 100 ft³ of the same gas");
        let oil = conversion.kwh_per_unit(Fuel::FuelOil, Unit::Gal).unwrap().unwrap();
        assert!(close(oil, 138.6 * KWH_PER_KBTU));
        let propane_l = conversion.kwh_per_unit(Fuel::Propane, Unit::L).unwrap().unwrap();
        assert!(close(propane_l, 91.6 * KWH_PER_KBTU / L_PER_GAL));
        let uk = Conversion { gas_kwh_per_m3: 11.2 };
        assert!(close(uk.to_kwh(Fuel::NaturalGas, Unit::M3, 2.0).unwrap().unwrap(), 22.4));
    }

    #[test]
    fn water_stays_a_volume_and_wrong_units_are_refused() {
        let conversion = Conversion::default();
        assert_eq!(conversion.kwh_per_unit(Fuel::Water, Unit::Gal), Ok(None));
        let err = conversion.kwh_per_unit(Fuel::Electricity, Unit::M3).unwrap_err();
        assert_eq!(err.to_string(), "electricity is not measured in m3");
        assert!(conversion.kwh_per_unit(Fuel::Water, Unit::Kwh).is_err());
        assert!(conversion.kwh_per_unit(Fuel::Electricity, Unit::TonHour).is_err());
        assert!(conversion.kwh_per_unit(Fuel::Steam, Unit::Gal).is_err());
    }

    #[test]
    fn floor_areas_are_positive_and_convert() {
        assert!(FloorArea::parse(0.0, AreaUnit::M2).is_err());
        assert!(FloorArea::parse(f64::NAN, AreaUnit::M2).is_err());
        let area = FloorArea::parse(10_000.0, AreaUnit::Ft2).unwrap();
        assert!(close(area.m2(), 929.0304));
        assert!(close(area.ft2(), 10_000.0));
    }

    #[test]
    fn eui_is_annualised_in_both_conventions() {
        let area = FloorArea::parse(1_000.0, AreaUnit::M2).unwrap();
        let eui = Eui::of(100_000.0, 365, area).unwrap();
        assert!(close(eui.kwh_per_m2_year, 100.0));
        // 100 kWh/m²·yr = 31.7 kBtu/ft²·yr.
        assert!(close(eui.kbtu_per_ft2_year, 100.0 / KWH_PER_KBTU * M2_PER_FT2));
        let half_year = Eui::of(50_000.0, 182, area).unwrap();
        assert!(close(half_year.kwh_per_m2_year, 50_000.0 * 365.0 / 182.0 / 1_000.0));
        assert_eq!(Eui::of(1.0, 0, area), None);
    }
}
