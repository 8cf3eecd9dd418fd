// Line charts on a canvas, no library: percentile plots (latency against
// percentile on HdrHistogram's log axis) and time series.

export const COLORS = ['#4fb3ff', '#ff9f43', '#2ed573', '#ff6b81', '#a29bfe', '#eccc68', '#70a1ff', '#7bed9f'];
export const MERGED_COLOR = '#f1f2f6';

const PAD = { left: 64, right: 26, top: 10, bottom: 28 };
const FONT = '11px system-ui, sans-serif';
const GRID = '#26303a';
const AXIS_TEXT = '#8a96a3';

/**
 * Draws `series` ([{label, color, width, points: [[x, y], …]}]) on
 * `canvas`. `x` = {min, max, ticks: [{v, label}]}; `y` = {format(v)};
 * the y range runs from 0 to a rounded-up maximum of the data.
 * Returns the number of points drawn.
 */
export function drawChart(canvas, { series, x, y, empty = 'no data yet' }) {
  const ctx = canvas.getContext('2d');
  const dpr = window.devicePixelRatio || 1;
  const cssW = canvas.clientWidth || 400;
  const cssH = canvas.clientHeight || 220;
  if (canvas.width !== Math.round(cssW * dpr) || canvas.height !== Math.round(cssH * dpr)) {
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
  }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssW, cssH);
  ctx.font = FONT;

  const w = cssW - PAD.left - PAD.right;
  const h = cssH - PAD.top - PAD.bottom;
  let yMaxData = 0;
  let drawn = 0;
  for (const s of series) for (const [, v] of s.points) yMaxData = Math.max(yMaxData, v);
  const yTicks = niceTicks(yMaxData || 1);
  const yMax = yTicks[yTicks.length - 1];
  const px = (v) => PAD.left + ((v - x.min) / (x.max - x.min || 1)) * w;
  const py = (v) => PAD.top + h - (v / yMax) * h;

  // Grid and axes.
  ctx.strokeStyle = GRID;
  ctx.fillStyle = AXIS_TEXT;
  ctx.lineWidth = 1;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const t of yTicks) {
    ctx.beginPath();
    ctx.moveTo(PAD.left, py(t));
    ctx.lineTo(PAD.left + w, py(t));
    ctx.stroke();
    ctx.fillText(y.format(t), PAD.left - 6, py(t));
  }
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  for (const t of x.ticks) {
    ctx.beginPath();
    ctx.moveTo(px(t.v), PAD.top);
    ctx.lineTo(px(t.v), PAD.top + h);
    ctx.stroke();
    ctx.fillText(t.label, px(t.v), PAD.top + h + 6);
  }

  // Lines.
  for (const s of series) {
    if (s.points.length === 0) continue;
    ctx.strokeStyle = s.color;
    ctx.lineWidth = s.width ?? 1.5;
    ctx.beginPath();
    s.points.forEach(([vx, vy], i) => {
      if (i === 0) ctx.moveTo(px(vx), py(vy));
      else ctx.lineTo(px(vx), py(vy));
    });
    ctx.stroke();
    drawn += s.points.length;
  }

  // Legend (top left, inside the plot).
  ctx.textAlign = 'left';
  ctx.textBaseline = 'middle';
  let ly = PAD.top + 8;
  for (const s of series) {
    ctx.fillStyle = s.color;
    ctx.fillRect(PAD.left + 8, ly - 1.5, 14, 3);
    ctx.fillStyle = s.points.length ? '#d8dee6' : AXIS_TEXT;
    ctx.fillText(s.points.length ? s.label : `${s.label} (no data)`, PAD.left + 28, ly);
    ly += 14;
  }
  if (drawn === 0) {
    ctx.fillStyle = AXIS_TEXT;
    ctx.textAlign = 'center';
    ctx.fillText(empty, PAD.left + w / 2, PAD.top + h / 2);
  }
  return drawn;
}

/** 0 and 4–6 round steps up to at least `max`. */
export function niceTicks(max) {
  const raw = max / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const ticks = [];
  for (let v = 0; v < max + step * 0.999; v += step) ticks.push(Math.round(v * 1e6) / 1e6);
  if (ticks.length < 2) ticks.push(step);
  return ticks;
}

/** HdrHistogram's percentile axis: x = log10(1/(1-p)). */
export function percentileAxis(xMax) {
  const labels = ['0%', '90%', '99%', '99.9%', '99.99%', '99.999%', '99.9999%'];
  const max = Math.max(1, Math.ceil(xMax));
  return { min: 0, max, ticks: labels.slice(0, max + 1).map((label, v) => ({ v, label })) };
}

/** Microseconds, in the unit that reads best. */
export function formatUs(us) {
  if (us >= 1e6) return `${+(us / 1e6).toPrecision(3)} s`;
  if (us >= 1e3) return `${+(us / 1e3).toPrecision(3)} ms`;
  return `${Math.round(us)} µs`;
}

export function formatCount(n) {
  if (n >= 1e6) return `${+(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${+(n / 1e3).toFixed(1)}k`;
  return `${+n.toFixed(n < 10 && n % 1 ? 1 : 0)}`;
}
