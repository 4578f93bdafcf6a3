// Tableau de bord opérateur : état de la ligne en direct (WebSocket) et actions (API REST).
"use strict";

const TOKEN_KEY = "carpool-token";
const WALL_KEY = "carpool-wall";
const SVG = "http://www.w3.org/2000/svg";
const SIGN_W = 132;
const STATES = {
  waiting: "en attente", picked_up: "pris en charge", cancelled: "annulée", fallback: "taxi envoyé",
  expired: "expirée", refused: "refusée", announced: "en route",
};
const CHANNELS = { terminal: "borne", sms: "SMS", api: "appli", voice: "téléphone" };
const ALERT_KINDS = {
  device_offline: "Appareil hors ligne", sign_mismatch: "Panneau : affichage différent",
  guarantee_near: "Garantie bientôt atteinte", device_flooding: "Appareil trop bavard",
  code_guessing: "Codes conducteur erronés en série",
};

const ui = {
  token: sessionStorage.getItem(TOKEN_KEY), role: null, lineId: null, line: null,
  offset: 0, socket: null, retry: 0, page: 0, signId: null, drivers: null,
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:")
    ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function now() { return new Date(Date.now() + ui.offset); }

function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const m = Math.floor(s / 60);
  return m >= 60 ? `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")}`
    : `${m}:${String(s % 60).padStart(2, "0")}`;
}

function hhmm(iso) {
  return new Date(iso).toLocaleTimeString("fr-FR", { hour: "2-digit", minute: "2-digit" });
}

async function api(method, path, body) {
  const answer = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${ui.token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    const detail = typeof data.detail === "string" ? data.detail
      : (data.detail || []).map((d) => d.msg).join(" ; ");
    const error = new Error(detail || `erreur ${answer.status}`);
    error.status = answer.status;
    throw error;
  }
  return data;
}

function confirmAction(text) {
  const dialog = $("confirm");
  $("confirm-text").textContent = text;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
  });
}

// ---- connexion -------------------------------------------------------------------------------

async function signIn() {
  if (!ui.token) { $("login").showModal(); return; }
  try {
    const me = await api("GET", "/api/v1/me");
    ui.role = me.role;
    document.body.classList.toggle("can-operate", me.role !== "viewer");
    $("logout").hidden = false;
    $("logout").title = `${me.name} (${me.role})`;
    const lines = await api("GET", "/api/v1/lines");
    const wanted = new URLSearchParams(location.search).get("ligne");
    ui.lineId = (lines.find((l) => l.id === wanted) || lines[0] || {}).id;
    const select = $("line-select");
    select.replaceChildren(...lines.map((l) => el("option", {
      value: l.id, text: l.cluster ? `${l.name} — ${ownerText(l.cluster)}` : l.name,
    })));
    select.value = ui.lineId;
    select.hidden = lines.length < 2;
    $("app").hidden = false;
    render(await api("GET", `/api/v1/lines/${ui.lineId}`));
    connect();
    loadEstimates();
    setInterval(loadEstimates, 60000);
    loadDrivers();
    setInterval(loadDrivers, 30000);
    if (me.role !== "viewer") {
      loadHeld();
      setInterval(loadHeld, 60000);
      loadRegistry();
      setInterval(loadRegistry, 60000);
    }
  } catch (error) {
    if (error.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      ui.token = null;
      $("login-error").textContent = "Jeton refusé.";
      $("login").showModal();
    } else {
      setLive(false, `Erreur : ${error.message}`);
    }
  }
}

$("login-form").addEventListener("submit", () => {
  ui.token = $("token").value.trim();
  sessionStorage.setItem(TOKEN_KEY, ui.token);
  $("token").value = "";
  signIn();
});

$("logout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  location.reload();
});

$("line-select").addEventListener("change", (event) => {
  location.search = `?ligne=${encodeURIComponent(event.target.value)}`;
});

// ---- direct (WebSocket) ----------------------------------------------------------------------

function setLive(on, text) {
  const status = $("live-status");
  status.className = `live ${on ? "on" : "off"}`;
  status.textContent = text;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/api/v1/lines/${ui.lineId}/live/ws`);
  ui.socket = socket;
  socket.addEventListener("open", () => socket.send(JSON.stringify({ token: ui.token })));
  socket.addEventListener("message", (message) => {
    const data = JSON.parse(message.data);
    if (data.type === "line") { ui.retry = 0; setLive(true, "En direct"); render(data.line); }
    else if (data.type === "error") setLive(false, data.detail);
  });
  socket.addEventListener("close", () => {
    setLive(false, "Reconnexion…");
    ui.retry = Math.min(ui.retry + 1, 6);
    setTimeout(connect, 500 * 2 ** ui.retry * (0.5 + Math.random() / 2));
  });
}

// ---- rendu -----------------------------------------------------------------------------------

function stopNames(line) {
  const names = {};
  for (const direction of line.directions) for (const stop of direction.stops) names[stop.id] = stop.name;
  return names;
}

// CARPOOL_CLUSTER: which process dispatches the line, and what the one answering does for it.
function ownerText(cluster) {
  if (cluster.role === "owner") return `pilotée par ce processus (${cluster.node})`;
  return cluster.owner ? `pilotée par ${cluster.owner}` : "aucun processus ne la pilote";
}

function renderCluster(cluster) {
  const badge = $("cluster-badge");
  badge.hidden = !cluster;
  if (!cluster) return;
  const standby = cluster.role !== "owner";
  badge.textContent = standby
    ? `${ownerText(cluster)} · ce processus (${cluster.node}) en attente`
    : ownerText(cluster);
  badge.className = `badge cluster ${standby ? "standby" : "owner"}`;
  badge.title = standby
    ? "Ce processus attend (CARPOOL_CLUSTER) : il ne pilote pas la ligne et n’en montre pas "
      + "l’état ; ouvrez le tableau de bord du processus qui la pilote"
    : "Plusieurs processus (CARPOOL_CLUSTER) : celui-ci pilote la ligne, les autres attendent";
}

function render(line) {
  ui.line = line;
  renderCluster(line.cluster);
  ui.offset = new Date(line.now).getTime() - Date.now();
  $("line-name").textContent = line.name;
  document.title = `${line.name} — supervision`;
  const badge = $("open-badge");
  if (line.commissioning) {
    badge.textContent = "En mise en service";
    badge.className = "badge commissioning";
  } else {
    badge.textContent = line.open_now ? "En service" : "Hors service";
    badge.className = `badge ${line.open_now ? "open" : "closed"}`;
  }
  let online = 0, devices = 0;
  for (const d of line.directions) for (const s of d.stops) {
    for (const sign of s.signs) { devices++; if (sign.online) online++; }
    if (s.terminal) { devices++; if (s.terminal.online) online++; }
  }
  $("kpi-waiting").textContent = line.waiting.length;
  $("kpi-alerts").textContent = line.alerts.length;
  $("kpi-trips").textContent = line.recent.filter((r) => r.state === "picked_up").length;
  $("kpi-devices").textContent = `${online}/${devices}`;
  $("maps").replaceChildren(...line.directions.map(stripMap));
  renderWaiting();
  renderAlerts();
  renderRecent();
  if (ui.signId && $("sign-dialog").open) fillSignDialog();
}

function signLines(sign) {
  if (!sign.pages.length) return null;
  return sign.pages[ui.page % sign.pages.length];
}

function stripMap(direction) {
  const stops = direction.stops;
  const kms = stops.map((s) => s.km);
  const min = Math.min(...kms), span = Math.max(...kms) - min || 1;
  const most = Math.max(1, ...stops.map((s) => s.signs.length));
  const roadY = 30 + most * 66;
  const height = roadY + 116;
  const x = (km) => 90 + ((km - min) / span) * 830;
  const svg = el("svg:svg", { viewBox: `0 0 1000 ${height}`, role: "img",
    "aria-label": `Plan de la direction ${direction.name}` });
  svg.append(el("svg:line", { class: "road", x1: 20, y1: roadY, x2: 960, y2: roadY }));
  svg.append(el("svg:path", { d: `M960 ${roadY - 10} L980 ${roadY} L960 ${roadY + 10} Z`, fill: "#8795a1" }));
  // Sign faces sit upstream (left) of their stop; when stops are close they shift right so
  // that no two faces overlap, and a pole joins each face to its place on the road.
  let right = 0;
  let lastLabel = -1000, lastRow = 1;
  for (const stop of stops) {
    const sx = x(stop.km);
    if (stop.signs.length) {
      const cx = Math.max(sx - 45, right + SIGN_W / 2 + 8, SIGN_W / 2 + 4);
      right = cx + SIGN_W / 2;
      svg.append(el("svg:polyline", { class: "pole", fill: "none",
        points: `${cx},${68} ${cx},${roadY - 22} ${sx - 16},${roadY - 6}` }));
      stop.signs.forEach((sign, index) => svg.append(signBox(sign, cx, 16 + index * 66)));
    }
    const testing = stop.commissioning ? " — en mise en service" : "";
    const stopClass = `stop${stop.waiting ? " busy" : ""}${stop.commissioning ? " commissioning" : ""}`;
    svg.append(el("svg:circle", { class: stopClass, cx: sx, cy: roadY, r: 11,
      "data-stop": stop.id }, el("svg:title", { text: `${stop.name} (${stop.code})${testing}` })));
    if (stop.waiting) {
      svg.append(el("svg:circle", { class: "count-bg", cx: sx + 14, cy: roadY - 14, r: 10 }));
      svg.append(el("svg:text", { class: "count", x: sx + 14, y: roadY - 10, text: stop.waiting }));
    }
    const row = sx - lastLabel < 130 && lastRow === 0 ? 1 : 0;
    lastLabel = sx; lastRow = row;
    const ly = roadY + 44 + row * 36;
    svg.append(el("svg:text", { class: "stop-name", x: sx, y: ly, text: stop.name }));
    const km = `km ${String(stop.km).replace(".", ",")} · ${stop.code}`
      + (stop.commissioning && !ui.line.commissioning ? " · en mise en service" : "");
    svg.append(el("svg:text", { class: "stop-km", x: sx, y: ly + 15, text: km }));
    if (stop.terminal) {
      const t = stop.terminal;
      const dot = t.online === true ? "dot-on" : t.online === false ? "dot-off" : "dot-unk";
      const label = t.online === true ? "en ligne" : t.online === false ? "HORS LIGNE" : "inconnue";
      svg.append(el("svg:rect", { class: `term ${dot}`, x: sx - 5, y: roadY + 14, width: 10, height: 10,
        "data-terminal": t.id }, el("svg:title", { text: `Borne ${t.id} : ${label}` })));
    }
  }
  return el("div", { class: "map" },
    el("h2", { text: `Direction ${direction.name}` }),
    svg,
    el("p", { class: "legend", text: "Panneaux en amont de chaque arrêt (cliquer pour agir) · "
      + "■ borne · ● vert en ligne, rouge hors ligne, gris inconnu · distances en km" }));
}

function signBox(sign, cx, top) {
  const rows = signLines(sign);
  const operator = sign.operator_messages.some((m) => m.shown);
  const classes = ["sign", sign.mismatch ? "mismatch" : "", operator ? "operator" : ""].join(" ");
  const w = SIGN_W, h = 52;
  const group = el("svg:g", { class: classes, tabindex: 0, role: "button", "data-sign": sign.id,
    "aria-label": `Panneau ${sign.id}`, onclick: () => openSign(sign.id),
    onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") openSign(sign.id); } });
  const online = sign.online === true ? "en ligne" : sign.online === false ? "HORS LIGNE" : "état inconnu";
  const shown = rows ? rows.join(" / ") : "éteint";
  group.append(el("svg:title", { text: `${sign.id} (${sign.distance_upstream_m} m en amont) : ${shown} — ${online}` }));
  group.append(el("svg:rect", { class: "face", x: cx - w / 2, y: top, width: w, height: h }));
  const lines = rows || ["— éteint —"];
  lines.slice(0, 3).forEach((text, i) => {
    const y = top + (h - lines.length * 14) / 2 + 11 + i * 14;
    group.append(el("svg:text", { class: `txt${rows ? "" : " blank"}`, x: cx, y, text }));
  });
  const dot = sign.online === true ? "dot-on" : sign.online === false ? "dot-off" : "dot-unk";
  group.append(el("svg:circle", { class: dot, cx: cx + w / 2 - 6, cy: top + 6, r: 5 }));
  if (sign.pages.length > 1) {
    group.append(el("svg:text", { class: "sid", x: cx - w / 2 + 12, y: top + 10,
      text: `${(ui.page % sign.pages.length) + 1}/${sign.pages.length}`, fill: "#aaa" }));
  }
  return group;
}

function renderWaiting() {
  const line = ui.line;
  if (!line) return;
  const names = stopNames(line);
  const t = now().getTime();
  const rows = line.waiting.map((r) => {
    const waited = (t - new Date(r.created_at).getTime()) / 1000;
    const total = (new Date(r.deadline_at) - new Date(r.created_at)) / 1000;
    const left = (new Date(r.deadline_at).getTime() - t) / 1000;
    const level = left <= 0 ? "late" : left <= total * 0.2 ? "soon" : "";
    const actions = el("td", { class: "actions operator-only" },
      el("button", { type: "button", class: "small secondary", text: "Taxi",
        title: "Envoyer le taxi de garantie maintenant", onclick: () => act(r, "fallback") }),
      " ",
      el("button", { type: "button", class: "small danger", text: "Annuler",
        onclick: () => act(r, "cancel") }));
    return el("tr", { "data-request": r.id, "data-created": r.created_at, "data-deadline": r.deadline_at },
      el("td", {},
        el("strong", { text: names[r.stop_id] || r.stop_id }), " → ", names[r.destination_id] || r.destination_id,
        el("div", { class: "muted", text: `${CHANNELS[r.channel] || r.channel} · ${r.seats} place${r.seats > 1 ? "s" : ""}${r.phone ? ` · ${r.phone}` : ""}` })),
      el("td", { class: "num wait", text: duration(waited) }),
      el("td", { class: `num guarantee ${level}`, text: left > 0 ? `dans ${duration(left)}` : "atteinte" }),
      el("td", { class: "code", text: r.code || "–" }),
      actions);
  });
  $("waiting").replaceChildren(...rows);
  $("waiting-empty").hidden = rows.length > 0;
}

function updateTimers() {
  const t = now().getTime();
  for (const row of $("waiting").rows) {
    const created = new Date(row.dataset.created).getTime();
    const deadline = new Date(row.dataset.deadline).getTime();
    const left = (deadline - t) / 1000;
    const level = left <= 0 ? "late" : left <= (deadline - created) / 5000 ? "soon" : "";
    row.querySelector(".wait").textContent = duration((t - created) / 1000);
    const cell = row.querySelector(".guarantee");
    cell.textContent = left > 0 ? `dans ${duration(left)}` : "atteinte";
    cell.className = `num guarantee ${level}`;
  }
}

function renderAlerts() {
  const items = ui.line.alerts.map((a) => el("li", { class: a.kind },
    el("strong", { text: ALERT_KINDS[a.kind] || a.kind }), " ",
    el("span", { class: "muted", text: `depuis ${hhmm(a.raised_at)}` }),
    el("div", { text: a.message })));
  $("alerts").replaceChildren(...items);
  $("alerts-empty").hidden = items.length > 0;
}

function renderRecent() {
  const names = stopNames(ui.line);
  const items = ui.line.recent.slice(0, 12).map((r) => {
    const waited = (new Date(r.updated_at) - new Date(r.created_at)) / 1000;
    return el("li", {},
      el("span", { class: `state ${r.state}`, text: STATES[r.state] || r.state }), " ",
      `${names[r.stop_id] || r.stop_id} → ${names[r.destination_id] || r.destination_id}`,
      el("div", { class: "muted", text: `${hhmm(r.updated_at)} · attente ${duration(waited)}` }));
  });
  $("recent").replaceChildren(...items);
  $("recent-empty").hidden = items.length > 0;
}

const SOURCES = {
  history: "historique", history_any_weekday: "historique, tous jours",
  history_any_hour: "historique, toutes heures", model: "modèle de l’étude",
};

// The waits to expect from each boarding stop to the end of its direction (public live line).
async function loadEstimates() {
  try {
    const live = await api("GET", `/api/v1/lines/${ui.lineId}/live`);
    const names = stopNames(ui.line);
    const ends = {};
    for (const d of ui.line.directions) for (const s of d.stops) ends[s.id] = d.stops[d.stops.length - 1].id;
    const items = live.wait_estimates.filter((e) => ends[e.stop_id] === e.destination_id).map((e) =>
      el("li", {},
        `${names[e.stop_id] || e.stop_id} → ${names[e.destination_id] || e.destination_id} : `,
        el("strong", { text: `${Math.round(e.median_minutes)} min` }),
        el("div", { class: "muted", text:
          `9 sur 10 sous ${Math.round(e.p90_minutes)} min · ${SOURCES[e.source] || e.source}`
          + (e.observations ? ` (${e.observations} attentes)` : "") })));
    $("estimates").replaceChildren(...items);
    $("estimates-empty").hidden = items.length > 0;
  } catch (error) {
    $("estimates-empty").hidden = false;
  }
}

// ---- conducteurs annoncés (« Je passe ») -------------------------------------------------------

// The trips drivers announced that are not yet past their last stop, soonest leaving first.
async function loadDrivers() {
  try {
    ui.drivers = await api("GET", `/api/v1/lines/${ui.lineId}/driver-trips`);
  } catch (error) {
    ui.drivers = [];
  }
  renderDrivers();
}

function driverWhen(trip, names) {
  const leaves = new Date(trip.leaves_at).getTime();
  const minutes = Math.round((leaves - now().getTime()) / 60000);
  const towards = names[trip.towards] || trip.towards;
  if (minutes > 0) return `départ dans ${minutes} min (${hhmm(trip.leaves_at)})`;
  return `passé à ${hhmm(trip.leaves_at)}, à ${towards} vers ${hhmm(trip.passes_until)}`;
}

function renderDrivers() {
  if (!ui.line || !ui.drivers) return;
  const names = stopNames(ui.line);
  const t = now().getTime();
  const items = ui.drivers.filter((trip) => new Date(trip.passes_until).getTime() > t).map((trip) => {
    const coming = new Date(trip.leaves_at).getTime() > t;
    const told = trip.riders_told ? ` · ${trip.riders_told} passager(s) prévenu(s) par SMS` : "";
    return el("li", { "data-trip": trip.id },
      el("span", { class: `state ${coming ? "announced" : "picked_up"}`, text: coming ? "annoncé" : "en route" }),
      " ", `${names[trip.from_stop] || trip.from_stop} → ${names[trip.towards] || trip.towards}`,
      el("div", { class: "muted when", text: driverWhen(trip, names) + told }));
  });
  $("drivers").replaceChildren(...items);
  $("drivers-empty").hidden = items.length > 0;
}

// ---- trajets signalés : décision de l'opérateur -----------------------------------------------

const FLAGS = {
  driver_impossible_speed: "vitesse impossible entre deux arrêts",
  driver_many_stops_in_minutes: "plusieurs arrêts en quelques minutes",
  validated_too_soon: "validé trop tôt après la demande",
  short_trip: "moins de 1 km", too_many_trips_today: "plus de 4 trajets dans la journée",
  same_pair_within_30_min: "même couple en moins de 30 min",
};
const DECISIONS = { approve: "validé", reject: "rejeté (fraude)" };

function heldRow(t) {
  const decided = t.review
    ? el("span", { class: `state ${t.review.decision}`, text: DECISIONS[t.review.decision],
      title: `${t.review.decided_by}, ${new Date(t.review.decided_at).toLocaleString("fr-FR")}`
        + (t.review.note ? ` : ${t.review.note}` : "") })
    : el("span", { class: "state held", text: "à décider" });
  const actions = t.standing === "refused" ? el("td", { class: "muted", text: "règle du registre" })
    : el("td", { class: "actions" },
      el("button", { type: "button", class: "small", text: "Valider", "data-decision": "approve",
        onclick: () => review(t, "approve") }),
      " ",
      el("button", { type: "button", class: "small danger", text: "Rejeter", "data-decision": "reject",
        onclick: () => review(t, "reject") }));
  const when = new Date(t.picked_up_at).toLocaleString("fr-FR",
    { dateStyle: "short", timeStyle: "short", timeZone: ui.line ? ui.line.timezone : undefined });
  const km = (t.distance_m / 1000).toFixed(1).replace(".", ",");
  return el("tr", { "data-trip": t.id },
    el("td", { class: "num", text: when }),
    el("td", {}, el("strong", { text: t.origin }), ` → ${t.destination}`,
      el("div", { class: "muted", text: `${km} km · ${t.seats} place${t.seats > 1 ? "s" : ""}` })),
    el("td", { text: t.driver }),
    el("td", { text: t.flags.map((f) => FLAGS[f] || f).join(", ") }),
    el("td", {}, decided),
    actions);
}

async function loadHeld() {
  try {
    const held = await api("GET", "/api/v1/trips?flagged=true");
    const rows = held.items.map(heldRow);
    $("held").replaceChildren(...rows);
    $("held-empty").textContent = "Aucun trajet signalé.";
    $("held-empty").hidden = rows.length > 0;
  } catch (error) {
    $("held-empty").hidden = false;
    $("held-empty").textContent = `Liste indisponible : ${error.message}`;
  }
}

async function review(trip, decision) {
  const dialog = $("review");
  $("review-title").textContent = decision === "approve" ? "Valider ce trajet" : "Rejeter ce trajet";
  $("review-text").textContent = decision === "approve"
    ? `${trip.origin} → ${trip.destination} : le trajet sera payé et transmis au registre.`
    : `${trip.origin} → ${trip.destination} : le trajet restera impayé et sera marqué frauduleux.`;
  $("review-yes").className = decision === "approve" ? "" : "danger";
  $("review-note").value = "";
  dialog.returnValue = "";
  dialog.showModal();
  const confirmed = await new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
  });
  if (!confirmed) return;
  try {
    await api("POST", `/api/v1/trips/${trip.id}/review`, { decision, note: $("review-note").value });
  } catch (error) {
    alert(`Décision impossible : ${error.message}`);
  }
  loadHeld();
}

// ---- registry (RPC) -----------------------------------------------------------------------------

const REGISTRY = {
  queued: "en attente d’envoi", not_sent: "non envoyés (règles du registre)",
  expired: "non envoyés à temps (24 h)", pending: "reçus, en contrôle", ok: "validés",
  fraud_error: "rejetés pour fraude", anomaly_error: "rejetés pour anomalie",
  validation_error: "en erreur de validation", terms_violation_error: "refusés (conditions)",
  acquisition_error: "non enregistrés", normalization_error: "erreur de normalisation",
  canceled: "annulés", unknown: "statut inconnu",
};

// How many of the line's journeys are in each status at the national registry (operators).
async function loadRegistry() {
  try {
    const found = await api("GET", `/api/v1/rpc/counts?line_id=${encodeURIComponent(ui.lineId)}`);
    const order = Object.keys(REGISTRY);
    const rank = (status) => (order.includes(status) ? order.indexOf(status) : order.length);
    const entries = Object.entries(found.counts).sort((a, b) => rank(a[0]) - rank(b[0]));
    const items = entries.map(([status, count]) =>
      el("li", { "data-status": status }, el("strong", { text: String(count) }),
        ` ${REGISTRY[status] || status}`));
    $("registry").replaceChildren(...items);
    $("registry-empty").hidden = items.length > 0;
    $("registry-panel").hidden = false;
  } catch (error) {
    $("registry-panel").hidden = true;
  }
}

// ---- actions ---------------------------------------------------------------------------------

async function act(request, action) {
  const names = stopNames(ui.line);
  const what = `${names[request.stop_id]} → ${names[request.destination_id]} (code ${request.code})`;
  const text = action === "cancel" ? `Annuler la demande ${what} ?`
    : `Envoyer le taxi de garantie maintenant pour ${what} ?`;
  if (!(await confirmAction(text))) return;
  try {
    await api("POST", `/api/v1/requests/${request.id}/${action}`, action === "cancel" ? {} : undefined);
  } catch (error) {
    alert(`Action impossible : ${error.message}`);
  }
}

function findSign(id) {
  for (const d of ui.line.directions) for (const s of d.stops) for (const sign of s.signs) {
    if (sign.id === id) return [s, sign];
  }
  return [null, null];
}

function openSign(id) {
  ui.signId = id;
  $("sign-error").textContent = "";
  fillSignDialog();
  if (!$("sign-dialog").open) $("sign-dialog").showModal();
}

function fillSignDialog() {
  const [stop, sign] = findSign(ui.signId);
  if (!sign) return;
  $("sign-title").textContent = `Panneau ${sign.id} — ${stop.name}`;
  const shown = sign.pages.length ? sign.pages.map((p) => p.join(" / ")).join("  |  ") : "éteint";
  const reported = sign.reported_pages === null ? "pas encore de retour"
    : sign.reported_pages.length ? sign.reported_pages.map((p) => p.join(" / ")).join("  |  ") : "éteint";
  const online = sign.online === true ? "en ligne" : sign.online === false ? "hors ligne" : "inconnu";
  $("sign-state").textContent = `Demandé : ${shown}. Affiché selon le panneau : ${reported}. `
    + `État : ${online}. ${sign.distance_upstream_m} m en amont, ${sign.rows}×${sign.columns} caractères.`;
  $("sign-messages").replaceChildren(...sign.operator_messages.map((m) => el("li", {},
    el("span", { text: `${m.pages.length ? m.pages.map((p) => p.join(" / ")).join(" | ") : "(panneau éteint)"}`
      + ` · priorité ${m.priority} · jusqu’à ${hhmm(m.expires_at)}${m.shown ? " · affiché" : ""}` }),
    el("button", { type: "button", class: "small secondary operator-only", text: "Retirer",
      onclick: () => clearMessage(sign.id, m.message_id) }))));
}

function pagesFromText(text) {
  return text.split(/\n\s*\n/).map((page) => page.split("\n").map((r) => r.trim()).filter(Boolean))
    .filter((page) => page.length);
}

async function postMessage(blank) {
  const id = ui.signId;
  const pages = blank ? [] : pagesFromText($("sign-text").value);
  if (!blank && !pages.length) { $("sign-error").textContent = "Écrivez un texte."; return; }
  const minutes = Number($("sign-minutes").value) || 30;
  const question = blank ? `Éteindre le panneau ${id} pendant ${minutes} min ?`
    : `Afficher « ${pages.map((p) => p.join(" / ")).join(" | ")} » sur ${id} pendant ${minutes} min ?`;
  if (!(await confirmAction(question))) return;
  try {
    await api("POST", `/api/v1/lines/${ui.lineId}/signs/${id}/messages`, {
      pages, priority: Number($("sign-priority").value) || 50, expires_in_minutes: minutes,
    });
    $("sign-text").value = "";
    $("sign-error").textContent = "";
  } catch (error) {
    $("sign-error").textContent = error.message;
  }
}

async function clearMessage(signId, messageId) {
  if (!(await confirmAction(`Retirer ce message du panneau ${signId} ?`))) return;
  try {
    await api("DELETE", `/api/v1/lines/${ui.lineId}/signs/${signId}/messages/${messageId}`);
  } catch (error) {
    $("sign-error").textContent = error.message;
  }
}

$("sign-post").addEventListener("click", () => postMessage(false));
$("sign-blank").addEventListener("click", () => postMessage(true));
$("sign-close").addEventListener("click", () => { ui.signId = null; $("sign-dialog").close(); });

// ---- horloge, grand écran --------------------------------------------------------------------

function setWall(on) {
  document.body.classList.toggle("wall", on);
  localStorage.setItem(WALL_KEY, on ? "1" : "");
  $("wall-toggle").textContent = on ? "Écran normal" : "Grand écran";
}

$("wall-toggle").addEventListener("click", () => setWall(!document.body.classList.contains("wall")));
setWall(new URLSearchParams(location.search).has("mur") || localStorage.getItem(WALL_KEY) === "1");

let ticks = 0;
setInterval(() => {
  $("clock").textContent = now().toLocaleTimeString("fr-FR");
  ticks++;
  if (ui.line) {
    updateTimers();
    if (ticks % 10 === 0) renderDrivers();
    const paged = ui.line.directions.some((d) => d.stops.some((s) => s.signs.some((g) => g.pages.length > 1)));
    if (ticks % 3 === 0 && paged) { ui.page++; $("maps").replaceChildren(...ui.line.directions.map(stripMap)); }
  }
}, 1000);

signIn();
