// A maintenance-window resolver, in JavaScript: the switch to a new binary happens only inside
// the operator's window; outside it the resolver answers `not-before` with the window's next
// start, so the node stays halted until then (wasmvisor:plugin@0.2.0, world `resolver`).
//
// Settings (plugins.toml `config`), all in UTC:
//   days  = "mon,tue,wed,thu,fri"   the days a window opens (default: every day)
//   start = "14:00"                  when it opens
//   end   = "16:00"                  when it closes (before `start`: the window spans midnight)
//   calendar = "https://ops.example.com/window.json"
//                                    a team's shared calendar, read with fetch() at each ask
//                                    (allowlist its host): a JSON object whose `days`, `start`
//                                    and `end` replace the settings above, and whose optional
//                                    `freeze-until` (RFC 3339) holds every upgrade until then.
//                                    Unreadable, the upgrade waits 5 minutes and asks again.
//
// It keeps the decision in force (the binary chosen by the resolvers before it): put it after
// them. Asked again at the window's start, it lets the upgrade through.

const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

function setting(settings, key, fallback) {
  let value = fallback;
  for (const [k, v] of settings) {
    if (k === key) value = v;
  }
  return value;
}

function minutes(text, key) {
  const m = /^(\d{1,2}):(\d{2})$/.exec(text.trim());
  const total = m ? Number(m[1]) * 60 + Number(m[2]) : -1;
  if (!m || Number(m[2]) > 59 || total > 24 * 60) {
    throw new Error(`${key} ${JSON.stringify(text)} is not a time like 14:00`);
  }
  return total;
}

function parse(settings) {
  const days = setting(settings, "days", DAYS.join(","))
    .split(/[\s,]+/)
    .filter((d) => d.length > 0)
    .map((d) => {
      const i = DAYS.indexOf(d.toLowerCase().slice(0, 3));
      if (i < 0) throw new Error(`days: ${JSON.stringify(d)} is not a day (mon … sun)`);
      return i;
    });
  const start = minutes(setting(settings, "start", "00:00"), "start");
  const end = minutes(setting(settings, "end", "24:00"), "end");
  if (start === end) throw new Error("start and end are the same time: the window would be empty");
  return { days: new Set(days), start, end, text: describe(settings) };
}

function describe(settings) {
  return `${setting(settings, "days", "every day")} ${setting(settings, "start", "00:00")}–${setting(settings, "end", "24:00")} UTC`;
}

// Whether `t` (ms) is inside a window: one that opened on an allowed day at `start`.
function inside(w, t) {
  const d = new Date(t);
  const minute = d.getUTCHours() * 60 + d.getUTCMinutes();
  const day = d.getUTCDay();
  if (w.start <= w.end) {
    return w.days.has(day) && minute >= w.start && minute < w.end;
  }
  // Spans midnight: opened today after `start`, or yesterday and not yet closed.
  return (w.days.has(day) && minute >= w.start) || (w.days.has((day + 6) % 7) && minute < w.end);
}

// The next time a window opens, after `t` (ms).
function nextStart(w, t) {
  const d = new Date(t);
  for (let ahead = 0; ahead <= 7; ahead++) {
    const open = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + ahead, 0, w.start);
    if (open > t && w.days.has(new Date(open).getUTCDay())) return open;
  }
  return null;
}

const RETRY_SECONDS = 300;

// The settings with the shared calendar's in place of them, and its freeze (ms, or null).
async function withCalendar(settings) {
  const url = setting(settings, "calendar", "");
  if (url === "") return { settings, freeze: null };
  const response = await fetch(url, { headers: { accept: "application/json" } });
  if (response.status !== 200) throw new Error(`${url}: HTTP ${response.status}`);
  const doc = await response.json();
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new Error(`${url}: not a JSON object`);
  }
  const merged = settings.filter(([k]) => !["days", "start", "end"].includes(k) || !(k in doc));
  for (const key of ["days", "start", "end"]) {
    if (key in doc) merged.push([key, String(doc[key])]);
  }
  let freeze = null;
  if (doc["freeze-until"] !== undefined && doc["freeze-until"] !== null) {
    freeze = Date.parse(String(doc["freeze-until"]));
    if (Number.isNaN(freeze)) {
      throw new Error(`${url}: freeze-until ${JSON.stringify(doc["freeze-until"])} is not an RFC 3339 time`);
    }
  }
  return { settings: merged, freeze };
}

export const resolve = {
  async resolve(request, previous, settings) {
    const now = Date.now();
    let calendar;
    try {
      calendar = await withCalendar(settings);
    } catch (e) {
      // fetch() reports every failure alike (a refused host too): the log names the URL.
      console.error(`window: cannot read the calendar: ${e.message}`);
      return {
        tag: "not-before",
        val: {
          at: BigInt(Math.floor(now / 1000) + RETRY_SECONDS),
          reason: `the maintenance calendar ${setting(settings, "calendar", "")} cannot be read (${e.message}); asking again in 5 minutes`,
        },
      };
    }
    if (calendar.freeze !== null && calendar.freeze > now) {
      return {
        tag: "not-before",
        val: { at: BigInt(Math.ceil(calendar.freeze / 1000)), reason: "a change freeze is in force" },
      };
    }
    let w;
    try {
      w = parse(calendar.settings);
    } catch (e) {
      return { tag: "refuse", val: `window: ${e.message}` };
    }
    if (w.days.size === 0) return { tag: "refuse", val: "window: no day opens a window" };
    const inForce = previous ?? { tag: "unresolved", val: "window: no resolver before this one" };
    if (inside(w, now)) {
      console.log(`upgrade ${request.plan.name}: inside the window ${w.text}`);
      return inForce;
    }
    const open = nextStart(w, now);
    if (open === null) return { tag: "refuse", val: `window: ${w.text} never opens` };
    return {
      tag: "not-before",
      val: { at: BigInt(Math.floor(open / 1000)), reason: `outside the maintenance window ${w.text}` },
    };
  },
};
