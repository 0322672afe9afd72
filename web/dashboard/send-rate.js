// The campaign view's sends per second: the number and the chart. Live values are the
// server's `sendRate` from campaignProgress; a finished or paused campaign's chart is
// seeded from its report's timeline.

import * as api from "./api.js";
import { RateChart } from "./chart.js";
import { TIMELINE } from "./documents.js";
import { setText } from "./dom.js";
import { rate as formatRate } from "./format.js";
import { ACTIVE, NOT_SENT_YET } from "./lifecycle.js";

/** After this long without a progress event nothing moved: the rate is shown as zero. */
const SILENCE_MS = 2500;
/** About this many points when a chart is seeded from the report's timeline. */
const SEED_POINTS = 120;

export class SendRate {
  constructor(valueEl, canvas) {
    this.valueEl = valueEl;
    this.chart = new RateChart(canvas);
    this.status = null;
    this.lastEventAt = 0;
    this.destroyed = false;
    this.ticker = setInterval(() => this.tick(), 1000);
  }

  destroy() {
    this.destroyed = true;
    clearInterval(this.ticker);
    this.chart.destroy();
  }

  /** The campaign's status: a sending one's time axis runs live. */
  setStatus(status) {
    this.status = status;
    this.chart.live = ACTIVE.has(status);
    this.chart.emptyText = NOT_SENT_YET.has(status) ? "Not sent yet" : "No sends while this page was open";
    this.chart.draw();
  }

  /** A campaignProgress event: shows and charts its `sendRate`. */
  onProgress(p) {
    const t = Date.parse(p.at);
    const now = Date.now();
    this.chart.clockSkew = t - now;
    this.lastEventAt = now;
    const rate = Math.max(0, p.sendRate);
    this.show(rate);
    const lastPoint = this.chart.lastPoint;
    if (ACTIVE.has(p.status) || rate > 0 || (lastPoint && lastPoint.v > 0)) this.chart.push(t, rate);
  }

  show(rate) {
    this.valueEl.dataset.value = String(rate);
    setText(this.valueEl, formatRate(rate));
  }

  /** Silence means nothing moved: the rate is zero (while sending, or to end the line). */
  tick() {
    if (!this.status) return;
    const lastPoint = this.chart.lastPoint;
    if (!this.chart.live && !(lastPoint && lastPoint.v > 0)) return;
    if (Date.now() - this.lastEventAt > SILENCE_MS) {
      this.show(0);
      this.chart.push(Date.now() + this.chart.clockSkew, 0);
    } else {
      this.chart.draw(); // the time axis moves on
    }
  }

  /** A campaign that sent and is not sending now: its sends per second from the report's timeline. */
  async seed(id, c) {
    if (!c.startedAt || ACTIVE.has(c.status)) return;
    const start = Date.parse(c.startedAt);
    const end = c.completedAt ? Date.parse(c.completedAt) : Date.now();
    const bucket = Math.max(1, Math.ceil((end - start) / 1000 / SEED_POINTS));
    try {
      const data = await api.gql(TIMELINE, { id, bucket });
      const points = data.campaign?.report.timeline || [];
      if (this.destroyed || !points.length || this.chart.points.length) return;
      const byTime = new Map(points.map((p) => [Date.parse(p.at), (p.sent + p.failed) / bucket]));
      const first = Math.min(...byTime.keys());
      const last = Math.max(...byTime.keys());
      const series = [];
      for (let t = first - bucket * 1000; t <= last + bucket * 1000; t += bucket * 1000) {
        series.push({ t: t + (bucket * 1000) / 2, v: byTime.get(t) || 0 });
      }
      this.chart.setPoints(series);
    } catch {
      /* the chart stays live-only */
    }
  }
}
