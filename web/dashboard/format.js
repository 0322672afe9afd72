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

const zoneFormats = new Map();

/** An instant as the wall-clock time of an IANA zone ("Dec 3, 09:00 CET"); in the viewer's own time where the browser does not know the zone. */
export function inZone(iso, zone) {
  if (!zone) return when(iso);
  if (!zoneFormats.has(zone)) {
    let format = null;
    try {
      format = new Intl.DateTimeFormat(undefined, { timeZone: zone, month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short" });
    } catch {
      // RangeError: a zone this browser's time-zone data lacks
    }
    zoneFormats.set(zone, format);
  }
  const format = zoneFormats.get(zone);
  return format ? format.format(new Date(iso)) : when(iso);
}

const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const DAY_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const listing = (items) => (items.length < 2 ? items.join("") : `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`);

/** A day-of-week cron value ("1", "mon", "7" = Sunday) as its index 0-6, or null. */
function weekday(value) {
  const named = DAY_NAMES.indexOf(value.toLowerCase());
  if (named >= 0) return named;
  return /^[0-7]$/.test(value) ? Number(value) % 7 : null;
}

/** A cron expression in words when it is a plain one ("every Monday at 09:00", "every day
 * at 08:30", "on day 1 of every month at 09:00", "every hour at :15"); null otherwise (the
 * caller shows the expression itself). Days and times are the schedule's own zone's. */
export function cronInWords(cron) {
  const fields = cron.trim().split(/\s+/);
  if (fields.length !== 5) return null;
  const [minute, hour, dom, month, dow] = fields;
  if (!/^\d{1,2}$/.test(minute) || Number(minute) > 59 || month !== "*") return null;
  if (hour === "*") return dom === "*" && dow === "*" ? `every hour at :${pad(Number(minute))}` : null;
  if (!/^\d{1,2}$/.test(hour) || Number(hour) > 23) return null;
  const at = `at ${pad(Number(hour))}:${pad(Number(minute))}`;
  if (dom !== "*") {
    return dow === "*" && /^\d{1,2}$/.test(dom) && Number(dom) >= 1 && Number(dom) <= 31 ? `on day ${Number(dom)} of every month ${at}` : null;
  }
  if (dow === "*") return `every day ${at}`;
  if (["1-5", "mon-fri"].includes(dow.toLowerCase())) return `every weekday (Monday to Friday) ${at}`;
  const days = dow.split(",").map(weekday);
  if (days.includes(null) || new Set(days).size !== days.length) return null;
  return `every ${listing(days.map((d) => DAYS[d]))} ${at}`;
}
