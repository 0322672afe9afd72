// Messages per second over time, drawn on a <canvas>: an area line with a few grid
// lines and labels. Points are {t: epoch ms, v: messages/s}.

const MAX_POINTS = 1200;
const MIN_SPAN_MS = 10_000;
const MAX_LIVE_SPAN_MS = 15 * 60_000;

function niceStep(max, ticks) {
  const raw = max / ticks;
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = raw / power;
  const step = unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 2.5 ? 2.5 : unit <= 5 ? 5 : 10;
  return step * power;
}

const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

export class RateChart {
  constructor(canvas) {
    this.canvas = canvas;
    this.points = [];
    this.live = false; // while live, the time axis runs up to now
    this.emptyText = "";
    this.clockSkew = 0; // server time - local time, so `now` matches the points' times
    this.observer = new ResizeObserver(() => this.draw());
    this.observer.observe(canvas);
  }

  destroy() {
    this.observer.disconnect();
  }

  setPoints(points) {
    this.points = points.slice(-MAX_POINTS);
    this.draw();
  }

  push(t, v) {
    const last = this.points[this.points.length - 1];
    if (last && t < last.t) return; // out of order: the axis only moves forward
    this.points.push({ t, v: Math.max(0, v) });
    if (this.points.length > MAX_POINTS) this.points.splice(0, this.points.length - MAX_POINTS);
    this.draw();
  }

  get lastPoint() {
    return this.points[this.points.length - 1];
  }

  draw() {
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (!width || !height) return;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const style = getComputedStyle(canvas);
    const ink = style.getPropertyValue("--chart-ink").trim() || "#6b7280";
    const grid = style.getPropertyValue("--chart-grid").trim() || "#e5e7eb";
    const line = style.getPropertyValue("--chart-line").trim() || "#4f46e5";
    const fill = style.getPropertyValue("--chart-fill").trim() || "rgba(79, 70, 229, 0.15)";
    ctx.font = "11px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";

    const pad = { left: 44, right: 12, top: 10, bottom: 22 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    const points = this.points;

    if (points.length < 2) {
      ctx.fillStyle = ink;
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText(points.length ? "Waiting for more data…" : this.emptyText, width / 2, height / 2);
      return;
    }

    const now = Date.now() + this.clockSkew;
    const end = this.live ? Math.max(now, points[points.length - 1].t) : points[points.length - 1].t;
    let start = points[0].t;
    if (this.live && end - start > MAX_LIVE_SPAN_MS) start = end - MAX_LIVE_SPAN_MS;
    const span = Math.max(end - start, MIN_SPAN_MS);
    const visible = points.filter((p) => p.t >= start);
    const peak = Math.max(10, ...visible.map((p) => p.v));
    const step = niceStep(peak, 4);
    const top = Math.ceil(peak / step) * step;
    const x = (t) => pad.left + ((t - start) / span) * plotW;
    const y = (v) => pad.top + plotH - (v / top) * plotH;

    // grid and y labels
    ctx.strokeStyle = grid;
    ctx.lineWidth = 1;
    ctx.fillStyle = ink;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let v = 0; v <= top + step / 2; v += step) {
      const yy = Math.round(y(v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(pad.left, yy);
      ctx.lineTo(width - pad.right, yy);
      ctx.stroke();
      ctx.fillText(v >= 1000 ? `${(v / 1000).toFixed(v % 1000 ? 1 : 0)}k` : String(v), pad.left - 6, yy);
    }
    // x labels
    ctx.textBaseline = "top";
    const labels = Math.max(2, Math.min(6, Math.floor(plotW / 90)));
    for (let i = 0; i < labels; i++) {
      const t = start + (span * i) / (labels - 1);
      ctx.textAlign = i === 0 ? "left" : i === labels - 1 ? "right" : "center";
      ctx.fillText(clock.format(new Date(t)), x(t), height - pad.bottom + 6);
    }

    if (!visible.length) return;
    // area and line
    ctx.beginPath();
    visible.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p.v)) : ctx.moveTo(x(p.t), y(p.v))));
    const lastX = x(visible[visible.length - 1].t);
    ctx.lineWidth = 2;
    ctx.lineJoin = "round";
    ctx.strokeStyle = line;
    ctx.stroke();
    ctx.lineTo(lastX, y(0));
    ctx.lineTo(x(visible[0].t), y(0));
    ctx.closePath();
    ctx.fillStyle = fill;
    ctx.fill();
    const last = visible[visible.length - 1];
    ctx.beginPath();
    ctx.arc(lastX, y(last.v), 3.5, 0, Math.PI * 2);
    ctx.fillStyle = line;
    ctx.fill();
  }
}
