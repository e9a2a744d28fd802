// Vigil's reviewer page: a plain ES module, no dependencies, no build step (the deployment is
// offline). The API token lives in sessionStorage and goes out only as an Authorization header;
// media is played from the short-lived signed links the API hands out.

const API = "/api/v1";
const TOKEN_KEY = "vigil.api-token";

// The verdicts are the words of vigil_verify/verdicts.py (the README's "Verdicts").
const STATES = [
  ["verified", "verified: hashes recomputed and matching the signed log"],
  ["hashed", "hashed: fingerprinted at ingest, not yet re-verified"],
  ["pending", "pending: still being processed"],
  ["bytes altered", "bytes altered: bytes changed in place"],
  ["edited", "edited: the picture changed in places"],
  ["truncated", "truncated: the picture ends early"],
  ["re-encoded", "re-encoded: same picture, different bytes"],
  ["missing", "missing: not in the store, or none of its picture"],
  ["reordered", "reordered: holds another segment of the recording"],
  ["foreign", "foreign: holds another recording's segment"],
  ["catalogue altered", "catalogue altered: a row differs from the signed log"],
  ["unverifiable", "unverifiable: cannot be decided here"],
];
const KNOWN_STATES = new Set(STATES.map(([name]) => name));

const $ = (id) => document.getElementById(id);

const state = {
  gen: 0, // bumped on every navigation; late answers for an older page are dropped
  me: null,
  caseId: null,
  timeline: null,
  playing: null, // {recordingId, expiresAt, retries}
  pendingSeek: null,
  custody: [], // the custody log's events loaded so far
  custodyNext: null, // where its next page starts (null: none follows)
};

// -- helpers ------------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const seconds = (s) => `${Number(s).toFixed(1)} s`;
const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

function utc(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

function timeEl(iso) {
  return iso ? el("time", { datetime: iso, text: utc(iso) }) : "—";
}

function stateClass(integrity) {
  const name = String(integrity || "unknown").toLowerCase();
  return KNOWN_STATES.has(name) ? `state-${name.replace(/[^a-z-]+/g, "-")}` : "state-other";
}

function setStatus(id, text, kind = "") {
  const node = $(id);
  node.textContent = text;
  node.classList.toggle("error", kind === "error");
  node.classList.toggle("ok", kind === "ok");
  node.classList.toggle("warn", kind === "warn");
}

function showAlert(text) {
  const box = $("alert");
  box.textContent = text;
  box.hidden = !text;
}

// -- the API ------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function detailOf(body) {
  if (!body || body.detail === undefined) return "";
  if (typeof body.detail === "string") return body.detail.replace(/\.$/, "");
  if (Array.isArray(body.detail)) return body.detail.map((d) => d.msg || String(d)).join("; ");
  return String(body.detail);
}

function explain(status, body) {
  const detail = detailOf(body);
  if (status === 401) {
    return `Token not accepted${detail ? ` (${detail})` : ""}. Paste a valid API token above.`;
  }
  if (status === 403) return `Not allowed: ${detail || "the server refused this request"}.`;
  if (status === 404) return `Not found: ${detail || "no such item"}.`;
  return `The server answered ${status}${detail ? `: ${detail}` : ""}.`;
}

async function api(path, { method = "GET", body } = {}) {
  const bearer = token();
  if (!bearer) throw new ApiError(401, "No API token: paste your API token above.");
  const headers = { Authorization: `Bearer ${bearer}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(API + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
  } catch {
    throw new ApiError(0, "Cannot reach the Vigil server. Check the connection and try again.");
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) throw new ApiError(response.status, explain(response.status, data));
  return data;
}

/** Show an API failure in a section's status line; a rejected token also in the banner. */
function failed(statusId, error) {
  const message = error instanceof ApiError ? error.message : `Unexpected error: ${error}`;
  setStatus(statusId, message, "error");
  if (error instanceof ApiError && error.status === 401) showAlert(message);
}

const enc = encodeURIComponent;

// -- sign-in ------------------------------------------------------------------------------------

async function start() {
  showAlert("");
  state.me = null;
  $("whoami").textContent = "";
  if (!token()) {
    setStatus("cases-status", "Paste your API token to see your cases.");
    $("case-list").replaceChildren();
    showCaseList();
    return;
  }
  try {
    state.me = await api("/me");
  } catch (error) {
    failed("cases-status", error);
    showAlert(error.message);
    $("case-list").replaceChildren();
    showCaseList();
    return;
  }
  const me = state.me;
  $("whoami").textContent = `Signed in as ${me.display_name} (${me.id}, ${me.role})`;
  route();
}

function setupTokenForm() {
  const input = $("token");
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (!value) {
      showAlert("Paste your API token (it starts with vgl_) first.");
      input.focus();
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, value);
    input.value = "";
    input.placeholder = "token stored for this tab";
    start();
  });
  $("forget-token").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    input.value = "";
    input.placeholder = "vgl_…";
    resetPlayer();
    if (location.hash) history.replaceState(null, "", location.pathname);
    start();
    input.focus();
  });
  if (token()) input.placeholder = "token stored for this tab";
}

// -- navigation ---------------------------------------------------------------------------------

function route() {
  if (!state.me) return;
  const match = location.hash.match(/^#\/cases\/([^/]+)$/);
  if (match) openCase(decodeURIComponent(match[1]));
  else showCaseList(true);
}

function showCaseList(load = false) {
  state.gen += 1;
  state.caseId = null;
  resetPlayer();
  $("case").hidden = true;
  $("cases").hidden = false;
  document.title = "Cases — Vigil";
  if (load) loadCases();
}

async function loadCases() {
  const gen = state.gen;
  setStatus("cases-status", "Loading cases…");
  let cases;
  try {
    cases = await api("/cases");
  } catch (error) {
    if (gen === state.gen) failed("cases-status", error);
    return;
  }
  if (gen !== state.gen) return;
  const list = $("case-list");
  list.replaceChildren(
    ...cases.map((c) =>
      el(
        "li",
        {},
        el("a", { href: `#/cases/${enc(c.case_id)}`, class: "case-link" }, c.case_id),
        el("span", { class: "hint" }, ` ${plural(c.recordings, "recording")}`),
      ),
    ),
  );
  setStatus(
    "cases-status",
    cases.length ? `${plural(cases.length, "case")} you may see.` : "No cases are assigned to you.",
  );
}

async function openCase(caseId) {
  state.gen += 1;
  const gen = state.gen;
  state.caseId = caseId;
  state.timeline = null;
  resetPlayer();
  $("cases").hidden = true;
  $("case").hidden = false;
  const heading = $("case-heading");
  heading.textContent = `Case ${caseId}`;
  heading.setAttribute("tabindex", "-1");
  heading.focus();
  document.title = `Case ${caseId} — Vigil`;
  $("case-summary").textContent = "";
  $("player-section").hidden = false;
  $("verify-section").hidden = false;
  $("custody-wrap").hidden = true;
  $("timeline").replaceChildren();
  $("device-gaps").replaceChildren();
  $("verify-results").replaceChildren();
  setStatus("verify-status", "");
  $("custody").tBodies[0].replaceChildren();
  $("custody-more").hidden = true;
  $("custody-caption").textContent = "";
  setStatus("custody-status", "");

  const timeline = await loadTimeline(gen);
  if (gen !== state.gen) return;
  const first = timeline?.recordings.find((r) => r.status !== "unreadable") ?? timeline?.recordings[0];
  if (first) await loadRecording(first.id, null, gen);
  else if (timeline) setStatus("player-status", "This case has no footage.");
  if (gen !== state.gen) return;
  await loadCustody(gen);
}

// -- the timeline -------------------------------------------------------------------------------

async function loadTimeline(gen = state.gen) {
  setStatus("timeline-status", "Loading the timeline…");
  let timeline;
  try {
    timeline = await api(`/cases/${enc(state.caseId)}`);
  } catch (error) {
    if (gen === state.gen) {
      failed("timeline-status", error);
      // Without the case there is nothing to play or verify (the log may still be readable).
      $("player-section").hidden = true;
      $("verify-section").hidden = true;
    }
    return null;
  }
  if (gen !== state.gen) return null;
  state.timeline = timeline;
  $("verify").disabled = timeline.recordings.length === 0;
  renderTimeline(timeline);
  return timeline;
}

function niceStep(span) {
  for (const step of [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600]) {
    if (span / step <= 10) return step;
  }
  return 7200;
}

function recordingEnd(rec) {
  const ends = [rec.duration_s || 0];
  for (const s of rec.segments) ends.push(s.end_s);
  for (const g of rec.gaps) ends.push(g.start_s + g.seconds);
  return Math.max(...ends);
}

/** The gaps inside a segment, clipped to it, as [start, end] pairs in time order. */
function holesIn(seg, gaps) {
  return gaps
    .filter((g) => g.kind === "gap")
    .map((g) => [Math.max(seg.start_s, g.start_s), Math.min(seg.end_s, g.start_s + g.seconds)])
    .filter(([a, b]) => b - a > 1e-6)
    .sort((x, y) => x[0] - y[0]);
}

/** The longest stretch of a segment outside its holes. */
function longestFootage(seg, holes) {
  let best = [seg.start_s, seg.start_s];
  let cursor = seg.start_s;
  for (const [a, b] of [...holes, [seg.end_s, seg.end_s]]) {
    if (a - cursor > best[1] - best[0]) best = [cursor, a];
    cursor = Math.max(cursor, b);
  }
  return best[1] > best[0] ? best : [seg.start_s, seg.end_s];
}

function renderLegend() {
  $("legend").replaceChildren(
    ...STATES.map(([name, meaning]) =>
      el("li", {}, el("span", { class: `swatch state-${name}`, "aria-hidden": "true" }), meaning),
    ),
    el("li", {}, el("span", { class: "swatch gap", "aria-hidden": "true" }), "gap: no footage"),
  );
}

function renderTimeline(timeline) {
  const gapCount =
    timeline.recordings.reduce((n, r) => n + r.gaps.filter((g) => g.kind === "gap").length, 0) +
    timeline.device_gaps.length;
  const overlaps = timeline.recordings.reduce(
    (n, r) => n + r.gaps.filter((g) => g.kind !== "gap").length,
    0,
  );
  const summary = [plural(timeline.recordings.length, "recording")];
  if (timeline.continuous) summary.push("continuous: no gaps found");
  else {
    const parts = [];
    if (gapCount) parts.push(plural(gapCount, "gap"));
    if (overlaps) parts.push(plural(overlaps, "overlap"));
    summary.push(`not continuous: ${parts.join(", ") || "see the timeline"}`);
  }
  $("case-summary").textContent = summary.join(" · ");
  setStatus("timeline-status", timeline.recordings.length ? "" : "No footage is linked to this case.");

  const span = Math.max(1, ...timeline.recordings.map(recordingEnd));
  const pct = (s) => `${Math.min(100, Math.max(0, (s / span) * 100)).toFixed(4)}%`;
  const step = niceStep(span);
  const axis = el("div", { class: "axis", "aria-hidden": "true" });
  for (let t = 0; t <= span + 1e-9; t += step) {
    const label = span > 600 ? `${(t / 60).toFixed(t % 60 ? 1 : 0)} min` : `${t} s`;
    const tick = el("span", { class: span - t < step / 2 ? "tick end" : "tick" }, label);
    tick.style.left = pct(t);
    axis.append(tick);
  }

  const tracks = timeline.recordings.map((rec) => {
    const bar = el("div", {
      class: "bar",
      role: "group",
      "aria-label": `Segments of recording ${rec.id}`,
      "data-recording": rec.id,
    });
    for (const seg of rec.segments) {
      const holes = holesIn(seg, rec.gaps);
      const inside = holes.length
        ? `; ${holes.map(([a, b]) => `gap of ${seconds(b - a)} inside`).join(", ")}`
        : "";
      const label =
        `Segment ${seg.index}, ${seconds(seg.start_s)} to ${seconds(seg.end_s)}: ${seg.integrity}${inside}`;
      const text = el(
        "span",
        { class: "seg-text" },
        el("span", { class: "seg-name" }, `Segment ${seg.index}`),
        el("span", { class: "seg-state" }, seg.integrity),
      );
      const block = el(
        "button",
        {
          type: "button",
          class: `seg ${stateClass(seg.integrity)}`,
          "aria-label": `${label}. Play from ${seconds(seg.start_s)}`,
          title: `${label}\nSHA-256 ${seg.sha256}${seg.wall_start ? `\nDevice clock ${utc(seg.wall_start)}` : ""}`,
          "data-index": seg.index,
          onclick: () => seekTo(rec.id, seg.start_s),
        },
        text,
      );
      block.style.left = pct(seg.start_s);
      block.style.width = pct(seg.end_s - seg.start_s);
      // A hole inside the segment is drawn over it: put the label in the longest stretch
      // that has footage, so that it stays readable.
      const [from, to] = longestFootage(seg, holes);
      const length = Math.max(seg.end_s - seg.start_s, 1e-9);
      text.style.left = `${(((from - seg.start_s) / length) * 100).toFixed(4)}%`;
      text.style.width = `${(((to - from) / length) * 100).toFixed(4)}%`;
      bar.append(block);
    }
    for (const gap of rec.gaps) {
      const what = gap.kind === "gap" ? "gap" : gap.kind;
      const block = el(
        "div",
        {
          class: gap.kind === "gap" ? "gap" : "overlap",
          role: "img",
          "aria-label": `${what} ${seconds(gap.seconds)} from ${seconds(gap.start_s)} to ${seconds(gap.start_s + gap.seconds)}`,
          title: `${what} of ${seconds(gap.seconds)}: ${seconds(gap.start_s)} to ${seconds(gap.start_s + gap.seconds)}`,
        },
        el("span", { class: "gap-label" }, `${what} ${seconds(gap.seconds)}`),
      );
      block.style.left = pct(gap.start_s);
      block.style.width = pct(gap.seconds);
      bar.append(block);
    }
    const playhead = el("div", { class: "playhead", "aria-hidden": "true", hidden: true });
    bar.append(playhead);

    const facts = [
      `device ${rec.device_id}`,
      rec.officer_id ? `officer ${rec.officer_id}` : null,
      rec.device_start ? `started ${utc(rec.device_start)} (device clock)` : null,
      rec.duration_s !== null ? `length ${seconds(rec.duration_s)}` : null,
      plural(rec.segments.length, "segment"),
      rec.status !== "complete" ? `status ${rec.status}` : null,
    ].filter(Boolean);
    const notes = [];
    if (rec.window_from_s !== null || rec.window_to_s !== null) {
      const from = rec.window_from_s ?? 0;
      const to = rec.window_to_s ?? rec.duration_s;
      notes.push(el("p", { class: "hint" }, `Linked to this case for ${seconds(from)} to ${to === null ? "the end" : seconds(to)}.`));
    }
    if (rec.damage) notes.push(el("p", { class: "warn" }, `Damage: ${rec.damage}`));
    if (rec.clock_offset_s !== null && Math.abs(rec.clock_offset_s) >= 2) {
      notes.push(
        el("p", { class: "warn" }, `Device clock was ${seconds(rec.clock_offset_s)} off at handover.`),
      );
    }
    const gapList = rec.gaps.length
      ? el(
          "ul",
          { class: "gap-list", "aria-label": `Gaps in recording ${rec.id}` },
          ...rec.gaps.map((g) =>
            el(
              "li",
              {},
              g.kind === "gap"
                ? `No footage for ${seconds(g.seconds)}, from ${seconds(g.start_s)} to ${seconds(g.start_s + g.seconds)}.`
                : `Segments overlap by ${seconds(g.seconds)} at ${seconds(g.start_s)}.`,
            ),
          ),
        )
      : el("p", { class: "hint" }, "No gaps inside this recording.");

    return el(
      "section",
      { class: "track", "data-recording": rec.id, "aria-label": `Recording ${rec.id}` },
      el(
        "div",
        { class: "track-head" },
        el("h3", {}, `Recording ${rec.id}`),
        el(
          "button",
          { type: "button", class: "secondary play-rec", onclick: () => seekTo(rec.id, 0) },
          "Play this recording",
        ),
      ),
      el("p", { class: "facts" }, facts.join(" · ")),
      ...notes,
      el("div", { class: "bar-wrap" }, bar, axis.cloneNode(true)),
      gapList,
    );
  });
  $("timeline").replaceChildren(...tracks);

  const deviceGaps = $("device-gaps");
  deviceGaps.replaceChildren();
  if (timeline.device_gaps.length) {
    deviceGaps.append(
      el("h3", {}, "Between recordings"),
      el(
        "ul",
        { class: "gap-list" },
        ...timeline.device_gaps.map((g) =>
          el(
            "li",
            {},
            `${g.kind === "gap" ? "No footage" : "Overlap"} for ${seconds(g.seconds)} from ${utc(g.start)} (device clock), between ${g.after} and ${g.before}.`,
          ),
        ),
      ),
    );
  }
  markPlaying();
}

// -- the player ---------------------------------------------------------------------------------

function video() {
  return $("player");
}

function resetPlayer() {
  const player = video();
  state.playing = null;
  state.pendingSeek = null;
  if (player.getAttribute("src")) {
    player.pause();
    player.removeAttribute("src");
    player.load();
  }
  player.removeAttribute("aria-label");
  setStatus("player-status", "No recording loaded.");
  $("player-position").textContent = "";
}

async function loadRecording(recordingId, seekAt = null, gen = state.gen, resume = false) {
  if (!resume) setStatus("player-status", `Requesting a playback link for ${recordingId}…`);
  let links;
  try {
    // The case goes into the signed links, so every media read is logged against it.
    links = await api(`/recordings/${enc(recordingId)}/playback?case=${enc(state.caseId)}`);
  } catch (error) {
    if (gen === state.gen) failed("player-status", error);
    return;
  }
  if (gen !== state.gen) return;
  const retries = resume && state.playing ? state.playing.retries : 0;
  if (!links.original) {
    // The case links only a window of this recording: its segments, not the whole original.
    const windows = links.windows.map((w) => `${seconds(w.from_s ?? 0)}–${w.to_s === null ? "end" : seconds(w.to_s)}`);
    setStatus(
      "player-status",
      `This case links only part of recording ${recordingId} (${windows.join(", ")}); the original file is served only to those allowed all of it.`,
    );
    return;
  }
  state.playing = { recordingId, expiresAt: Date.parse(links.expires_at), retries };
  state.pendingSeek = seekAt;
  const player = video();
  player.src = links.original;
  player.setAttribute("aria-label", `Recording ${recordingId}`);
  player.load();
  setStatus("player-status", `Loading recording ${recordingId} (the original file)…`);
  markPlaying();
}

function seekTo(recordingId, at) {
  const player = video();
  if (state.playing && state.playing.recordingId === recordingId) {
    if (player.readyState >= 1) player.currentTime = at;
    else state.pendingSeek = at;
    return;
  }
  loadRecording(recordingId, at);
}

function markPlaying() {
  const current = state.playing?.recordingId;
  for (const track of document.querySelectorAll(".track")) {
    const on = track.dataset.recording === current;
    track.classList.toggle("playing", on);
    const head = track.querySelector(".play-rec");
    if (head) head.setAttribute("aria-pressed", on ? "true" : "false");
    const playhead = track.querySelector(".playhead");
    if (playhead) playhead.hidden = !on;
  }
  updatePosition();
}

function updatePosition() {
  const player = video();
  if (!state.playing || !state.timeline) return;
  const rec = state.timeline.recordings.find((r) => r.id === state.playing.recordingId);
  if (!rec) return;
  const t = player.currentTime || 0;
  const span = Math.max(1, ...state.timeline.recordings.map(recordingEnd));
  const track = document.querySelector(`.track[data-recording="${CSS.escape(rec.id)}"]`);
  const playhead = track?.querySelector(".playhead");
  if (playhead) playhead.style.left = `${Math.min(100, (t / span) * 100).toFixed(4)}%`;
  const seg = rec.segments.find((s) => t >= s.start_s && t < s.end_s);
  const gap = rec.gaps.find((g) => g.kind === "gap" && t >= g.start_s && t < g.start_s + g.seconds);
  for (const block of track?.querySelectorAll(".seg") ?? []) {
    const on = seg !== undefined && Number(block.dataset.index) === seg.index;
    if (on) block.setAttribute("aria-current", "true");
    else block.removeAttribute("aria-current");
  }
  const where = gap ? "in a gap" : seg ? `segment ${seg.index} (${seg.integrity})` : "";
  const total = Number.isFinite(player.duration) ? ` of ${seconds(player.duration)}` : "";
  $("player-position").textContent = `${seconds(t)}${total}${where ? ` · ${where}` : ""}`;
}

function setupPlayer() {
  const player = video();
  player.addEventListener("loadedmetadata", () => {
    if (state.pendingSeek !== null) {
      player.currentTime = state.pendingSeek;
      state.pendingSeek = null;
    }
    if (state.playing) {
      state.playing.retries = 0;
      setStatus(
        "player-status",
        `Recording ${state.playing.recordingId} · ${seconds(player.duration)} · original file`,
      );
    }
    updatePosition();
  });
  player.addEventListener("timeupdate", updatePosition);
  player.addEventListener("seeked", updatePosition);
  player.addEventListener("error", () => {
    const playing = state.playing;
    if (!playing || !player.getAttribute("src")) return;
    // The signed link is short-lived: ask for a fresh one and carry on where we were.
    if (playing.retries < 2) {
      playing.retries += 1;
      loadRecording(playing.recordingId, player.currentTime || null, state.gen, true);
      return;
    }
    const code = player.error ? player.error.code : 0;
    const why =
      code === 4 ? "the browser cannot decode this file" : code === 2 ? "a network error" : "an error";
    setStatus("player-status", `The recording could not be played (${why}).`, "error");
  });
}

// -- verification -------------------------------------------------------------------------------

async function verify() {
  const gen = state.gen;
  const button = $("verify");
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  setStatus("verify-status", "Verifying: recomputing every hash (this reads all the footage)…");
  $("verify-results").replaceChildren();
  let results;
  try {
    results = await api(`/cases/${enc(state.caseId)}/verify`, { method: "POST" });
  } catch (error) {
    if (gen === state.gen) failed("verify-status", error);
    return;
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
  if (gen !== state.gen) return;
  renderVerify(results);
  await loadTimeline(gen);
  if (gen === state.gen) await loadCustody(gen);
}

function renderVerify(results) {
  const ok = results.every((r) => r.ok);
  const segments = results.reduce((n, r) => n + Object.keys(r.segments).length, 0);
  const checkedAt = utc(new Date().toISOString());
  setStatus(
    "verify-status",
    results.length === 0
      ? "No footage to verify."
      : ok
        ? `Verified at ${checkedAt}: the originals and all ${plural(segments, "segment")} match their recorded hashes.`
        : `Problems found at ${checkedAt}: see below.`,
    results.length === 0 ? "" : ok ? "ok" : "error",
  );
  $("verify-results").replaceChildren(
    ...results.map((r) => {
      const rows = Object.entries(r.segments)
        .sort((a, b) => Number(a[0]) - Number(b[0]))
        .map(([index, result]) =>
          el(
            "tr",
            {},
            el("th", { scope: "row" }, `Segment ${index}`),
            el("td", {}, el("span", { class: `badge ${result === "intact" ? "state-verified" : stateClass(result)}` }, result)),
          ),
        );
      return el(
        "section",
        { class: "verify-result", "aria-label": `Verification of recording ${r.recording_id}` },
        el("h3", {}, `Recording ${r.recording_id}: ${r.ok ? "intact" : "problems found"}`),
        el(
          "table",
          { class: "verify-table" },
          el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Part"), el("th", { scope: "col" }, "Result"))),
          el(
            "tbody",
            {},
            el(
              "tr",
              {},
              el("th", { scope: "row" }, "Original file"),
              el("td", {}, el("span", { class: `badge ${r.original === "intact" ? "state-verified" : stateClass(r.original)}` }, r.original)),
            ),
            ...rows,
          ),
        ),
        r.problems.length
          ? el("ul", { class: "problems" }, ...r.problems.map((p) => el("li", {}, p)))
          : null,
      );
    }),
  );
}

// -- the custody log ----------------------------------------------------------------------------

async function loadCustody(gen = state.gen, after = 0) {
  // The log comes in pages, oldest first: "Load later events" asks for the next one.
  setStatus("custody-status", "Loading the custody log…");
  $("custody-more").hidden = true;
  let log;
  try {
    log = await api(`/cases/${enc(state.caseId)}/custody?after=${after}`);
  } catch (error) {
    if (gen === state.gen) failed("custody-status", error);
    return;
  }
  if (gen !== state.gen) return;
  const shown = after === 0 ? [] : state.custody;
  state.custody = shown.concat(log.events);
  state.custodyNext = log.next_after;
  const proved = state.custody.filter((e) => e.proof !== null).length;
  const more = log.next_after === null ? "" : " Later events follow.";
  $("custody-caption").textContent =
    `${plural(state.custody.length, "event")}; ${proved} proved against the signed checkpoint of ${plural(log.tree_size, "log entry", "log entries")}.${more}`;
  const rows = log.events.map((e) => {
    // "recording" and its ID may wrap apart, the ID itself never (it is quoted whole).
    const id = (text) => el("span", { class: "id" }, text);
    const target = e.recording_id
      ? ["recording ", id(e.recording_id)]
      : e.case_id
        ? ["case ", id(e.case_id)]
        : ["—"];
    const reason = el("td", { class: "reason" }, e.reason || "—");
    if (e.detail && Object.keys(e.detail).length) {
      reason.append(
        el(
          "details",
          {},
          el("summary", {}, "details"),
          el("pre", {}, JSON.stringify(e.detail, null, 2)),
        ),
      );
    }
    const signed =
      e.proof !== null && e.position !== null
        ? el("td", { class: "proved" }, `in signed log at position ${e.position}`)
        : el("td", { class: "unproved" }, "not yet in a signed checkpoint");
    return el(
      "tr",
      { class: e.action === "access.denied" ? "denied" : null },
      el("td", { class: "nowrap" }, timeEl(e.at)),
      el("td", {}, e.actor),
      el("td", {}, el("code", {}, e.action)),
      el("td", { class: "target" }, ...target),
      reason,
      signed,
    );
  });
  if (after === 0) $("custody").tBodies[0].replaceChildren(...rows);
  else $("custody").tBodies[0].append(...rows);
  $("custody-wrap").hidden = false;
  $("custody-more").hidden = log.next_after === null;
  setStatus("custody-status", `Loaded at ${utc(new Date().toISOString())}.`);
}

// -- start --------------------------------------------------------------------------------------

function main() {
  renderLegend();
  setupTokenForm();
  setupPlayer();
  $("verify").addEventListener("click", verify);
  $("custody-refresh").addEventListener("click", () => {
    if (state.caseId) loadCustody();
  });
  $("custody-more").addEventListener("click", () => {
    if (state.caseId && state.custodyNext !== null) loadCustody(state.gen, state.custodyNext);
  });
  window.addEventListener("hashchange", route);
  start();
}

main();
