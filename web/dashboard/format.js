// Formatting numbers, shares, rates and times for display, and datetime-local values.

const numberFormat = new Intl.NumberFormat();
const rateFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export const fmt = (n) => numberFormat.format(n);
export const pct = (x) => (x <= 0 ? "0%" : x >= 1 ? "100%" : `${(x * 100).toFixed(x < 0.001 ? 2 : 1)}%`);
export const share = (part, whole) => (whole > 0 ? part / whole : 0);
/** Messages per second: one decimal under 10/s, whole numbers above. */
export const rate = (perSecond) => (perSecond < 10 ? rateFormat.format(perSecond) : fmt(Math.round(perSecond)));
export const when = (iso) => (iso ? dateTime.format(new Date(iso)) : "—");
export const timeWithSeconds = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
export const shortDate = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });

const pad = (n) => String(n).padStart(2, "0");

/** The value of a datetime-local input ("2030-01-01T09:00", local time) as ISO 8601 with its offset. */
export function localToIso(value) {
  const d = new Date(value);
  if (!value || Number.isNaN(d.getTime())) return null;
  const offset = -d.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const abs = Math.abs(offset);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:` +
    `${pad(d.getSeconds())}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  );
}

/** A Date as the value of a datetime-local input, in local time. */
export function isoToLocalInput(date) {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}
