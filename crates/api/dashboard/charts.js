// Charts on uPlot (vendored, global `uPlot`). Colours are the Okabe-Ito colour-blind-safe
// palette; every chart also has a legend with text and the pages show the numbers in tables.

export const COLORS = {
  VALID: '#0072B2',
  INCOMPLETE: '#E69F00',
  INCONSISTENT: '#CC79A7',
  consumption: '#0072B2',
  temperature: '#D55E00',
  anomaly: '#000000',
  baseline: '#009E73',
};

/** 'YYYY-MM-DD' to uPlot's x (seconds since the epoch, UTC midnight). */
export const dayToX = (day) => Date.parse(`${day}T00:00:00Z`) / 1000;

const utc = (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC');

function mount(container, options, data) {
  container.replaceChildren();
  const width = () => Math.max(260, container.clientWidth || 600);
  const plot = new uPlot({ ...options, width: width() }, data, container);
  const observer = new ResizeObserver(() => plot.setSize({ width: width(), height: options.height }));
  observer.observe(container);
  plot.cleanup = () => observer.disconnect();
  return plot;
}

/** A stacked area chart of records per status per day (`days`: {key, valid, incomplete, inconsistent}). */
export function stackedDaily(container, days) {
  const xs = days.map((d) => dayToX(d.key));
  const valid = days.map((d) => d.valid);
  const incomplete = days.map((d) => d.incomplete);
  const inconsistent = days.map((d) => d.inconsistent);
  const raw = [null, inconsistent, incomplete, valid];
  // Cumulative tops, drawn from the highest down so each band covers the one below.
  const top3 = days.map((d) => d.valid + d.incomplete + d.inconsistent);
  const top2 = days.map((d) => d.valid + d.incomplete);
  const series = (label, color, si) => ({
    label,
    stroke: color,
    fill: `${color}cc`,
    width: 1,
    points: { show: false },
    value: (u, v, _s, idx) => (idx === null || idx === undefined ? '—' : raw[si][idx].toLocaleString('en-US')),
  });
  return mount(
    container,
    {
      height: 260,
      tzDate: utc,
      series: [
        { label: 'Day', value: (u, ts) => (ts === null ? '—' : new Date(ts * 1000).toISOString().slice(0, 10)) },
        series('✕ INCONSISTENT', COLORS.INCONSISTENT, 1),
        series('◐ INCOMPLETE', COLORS.INCOMPLETE, 2),
        series('✓ VALID', COLORS.VALID, 3),
      ],
      axes: [{}, { label: 'records', size: 60 }],
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max) * 1.05] } },
    },
    [xs, top3, top2, valid],
  );
}

/** Consumption and temperature per day, anomalies marked (`anomalies`: [{date, actual}]). */
export function consumptionChart(container, points, anomalies) {
  const xs = points.map((p) => dayToX(p.period_start));
  const byDay = new Map(anomalies.map((a) => [a.date, a.actual]));
  const marks = points.map((p) => (byDay.has(p.period_start) ? p.consumption : null));
  return mount(
    container,
    {
      height: 280,
      tzDate: utc,
      series: [
        { label: 'Day', value: (u, ts) => (ts === null ? '—' : new Date(ts * 1000).toISOString().slice(0, 10)) },
        { label: 'Consumption', stroke: COLORS.consumption, width: 1, scale: 'kwh', spanGaps: false, points: { show: false } },
        { label: 'Mean temperature (°C)', stroke: COLORS.temperature, width: 1, scale: 'c', dash: [4, 3], points: { show: false } },
        {
          label: '◆ Anomaly',
          stroke: COLORS.anomaly,
          scale: 'kwh',
          paths: () => null,
          points: { show: true, size: 9, stroke: COLORS.anomaly, fill: '#ffffff', width: 2 },
        },
      ],
      axes: [{}, { scale: 'kwh', label: 'consumption', size: 70 }, { scale: 'c', side: 1, label: '°C', grid: { show: false }, size: 50 }],
      scales: { x: { time: true } },
    },
    [xs, points.map((p) => p.consumption), points.map((p) => p.mean_temperature), marks],
  );
}

/** The baseline's prediction at mean temperature `t`. */
export function predict(model, t) {
  let y = model.intercept || 0;
  if (model.heating_slope && model.heating_balance_point !== null) y += model.heating_slope * Math.max(0, model.heating_balance_point - t);
  if (model.cooling_slope && model.cooling_balance_point !== null) y += model.cooling_slope * Math.max(0, t - model.cooling_balance_point);
  return y;
}

/** Consumption against temperature (points) with the fitted baseline curve. */
export function scatterChart(container, points, model) {
  const pairs = points
    .filter((p) => p.consumption !== null && p.mean_temperature !== null)
    .map((p) => [p.mean_temperature, p.consumption])
    .sort((a, b) => a[0] - b[0]);
  const xs = pairs.map((p) => p[0]);
  const ys = pairs.map((p) => p[1]);
  const fit = model ? xs.map((t) => predict(model, t)) : xs.map(() => null);
  return mount(
    container,
    {
      height: 280,
      mode: 1,
      series: [
        { label: 'Mean temperature (°C)' },
        { label: '● Daily consumption', stroke: COLORS.consumption, paths: () => null, points: { show: true, size: 4, fill: COLORS.consumption } },
        { label: '— Baseline', stroke: COLORS.baseline, width: 2, points: { show: false } },
      ],
      axes: [{ label: '°C' }, { label: 'consumption', size: 70 }],
      scales: { x: { time: false } },
      cursor: { drag: { x: false, y: false } },
    },
    [xs, ys, fit],
  );
}
