// xferstate inspector page. Plain ES module, no dependencies, no network beyond its own server.
const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
};

const state = {
  machines: new Map(), // key -> {key, id, kind, variant, svg}
  svgs: new Map(), // key -> Promise<string>
  actors: new Map(), // id -> summary
  selected: null,
  timeline: [],
  timelineTotal: 0,
  timelineOverwritten: 0,
  serverSkew: 0, // server now - local now
  stats: null,
  filter: 'all',
};
// Exposed for the browser tests and for poking around in devtools.
window.__inspector = state;

// ---------- diagrams ----------
function svgText(key) {
  let p = state.svgs.get(key);
  if (!p) {
    const m = state.machines.get(key);
    p = fetch(m ? m.svg : `/diagrams/${encodeURIComponent(key)}.svg`).then((r) => (r.ok ? r.text() : Promise.reject(new Error(`diagram ${key}: ${r.status}`))));
    state.svgs.set(key, p);
  }
  return p;
}

/** Put diagram `key` into `container` (once) and resolve when it is there. */
async function showDiagram(container, key) {
  if (container.dataset.diagram === key && container.querySelector('svg')) return;
  container.dataset.diagram = key;
  container.dataset.ready = 'false';
  const text = await svgText(key);
  if (container.dataset.diagram !== key) return;
  container.innerHTML = text.slice(text.indexOf('<svg'));
  container.dataset.ready = 'true';
}

/** Light up the active state nodes (ids are the machine's state node ids). */
function highlight(container, activeIds, changed = false) {
  for (const g of container.querySelectorAll('g.active')) g.classList.remove('active', 'changed');
  const found = [];
  for (const id of activeIds) {
    const g = container.querySelector(`g[id="${CSS.escape(id)}"]`);
    if (!g) continue;
    g.classList.add('active');
    if (changed) g.classList.add('changed');
    found.push(id);
  }
  container.dataset.active = found.join(' ');
}

// ---------- live actors ----------
function now() {
  return Date.now() + state.serverSkew;
}

function fmtAge(ms) {
  const s = Math.max(0, ms) / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} m ${Math.floor(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} m`;
}

/** `{"sender":{"unwinding":"signal"},"future":"pending"}` → `sender.unwinding.signal | future.pending`. */
function prettyState(state) {
  if (state === null || state === undefined) return '';
  if (!state.startsWith('{')) return state;
  const leaves = [];
  const walk = (prefix, v) => {
    if (typeof v === 'string') return leaves.push(prefix ? `${prefix}.${v}` : v);
    for (const [k, sub] of Object.entries(v)) walk(prefix ? `${prefix}.${k}` : k, sub);
  };
  try {
    walk('', JSON.parse(state));
  } catch {
    return state;
  }
  return leaves.join(' | ');
}

function isStuck(a, t) {
  const v = Number($('#stuck-secs').value);
  const secs = $('#stuck-secs').value !== '' && Number.isFinite(v) && v >= 0 ? v : 5;
  return a.status === "active" && !a.quarantined && !isSettled(a) && t - a.changedAt >= secs * 1000;
}

/** Resting states that are not "stuck": finished lifecycles and free leases. */
function isSettled(a) {
  return a.activeIds.some((id) => /\.(released|free)$/.test(id)) || a.status !== 'active';
}

let renderQueued = false;
function renderActorsSoon() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderActors();
  });
}

function renderActors() {
  const t = now();
  const q = $('#search').value.trim();
  const rows = [];
  const byRequest = new Map();
  for (const a of state.actors.values()) {
    if (q && !a.name.includes(q)) continue;
    if (state.filter === 'stuck' && !isStuck(a, t)) continue;
    if (state.filter === 'quarantined' && !a.quarantined) continue;
    if (!byRequest.has(a.request)) byRequest.set(a.request, []);
    byRequest.get(a.request).push(a);
  }
  // Newest requests first: that is where things happen.
  const requests = [...byRequest.keys()].sort((x, y) => y.localeCompare(x, 'en', { numeric: true }));
  for (const r of requests) {
    const list = byRequest.get(r);
    if (list.length > 1 || list[0].name !== r) rows.push(el('tr', { class: 'request-head' }, el('td', { colspan: '4', text: r })));
    for (const a of list.sort((x, y) => x.name.localeCompare(y.name))) {
      const cls = [a.id === state.selected ? 'selected' : '', isStuck(a, t) ? 'stuck' : '', a.quarantined ? 'quarantined' : '', a.status !== 'active' ? 'done' : ''].join(' ');
      rows.push(
        el(
          'tr',
          { class: cls, 'data-id': a.id, 'data-name': a.name, onclick: () => select(a.id) },
          el('td', { text: a.name }),
          el('td', { text: a.machineId ?? '–' }),
          el('td', { class: 'state', text: a.status === 'active' ? prettyState(a.state) : `${prettyState(a.state)} (${a.status})` }),
          el('td', { class: 'age', text: fmtAge(t - a.changedAt) }),
        ),
      );
    }
  }
  $('#actors tbody').replaceChildren(...rows);
  $('#actors-empty').style.display = state.actors.size === 0 ? '' : 'none';
  renderDetail();
}

function renderStats() {
  const s = state.stats;
  if (!s) return;
  $('#st-received').textContent = s.received;
  $('#st-actors').textContent = s.actors;
  const dropped = s.droppedIngest + (s.pageDropped ?? 0);
  $('#st-dropped').textContent = dropped;
  $('#st-dropped').classList.toggle('nonzero', dropped > 0);
  $('#st-evicted').textContent = s.evicted;
  $('#st-producers').textContent = s.producers;
}

function select(id) {
  state.selected = id;
  state.timeline = [];
  send({ type: 'select', id });
  renderActors();
}

async function renderDetail() {
  const a = state.selected ? state.actors.get(state.selected) : null;
  const box = $('#detail-diagram');
  if (!a) {
    $('#detail-title').textContent = state.selected ? 'actor gone (evicted)' : 'select an actor';
    $('#detail-title').className = 'muted';
    return;
  }
  $('#detail-title').textContent = `${a.name} — ${a.machineId ?? 'no machine'}`;
  $('#detail-title').className = '';
  $('#detail-state').textContent = `${a.status}: ${prettyState(a.state)}  ·  in state ${fmtAge(now() - a.changedAt)}  ·  ${a.events} events${a.quarantined ? '  ·  QUARANTINED' : ''}`;
  if (a.diagram) {
    await showDiagram(box, a.diagram);
    highlight(box, a.activeIds);
    box.dataset.actor = a.name;
  } else {
    box.replaceChildren(el('p', { class: 'muted', text: 'not a state machine: no diagram' }));
    box.dataset.diagram = '';
  }
}

function renderTimeline() {
  const items = state.timeline.slice(-300).reverse().map((e) => {
    const when = new Date(e.t).toISOString().slice(11, 23);
    const text = e.kind === 'state' ? `${when}  → ${prettyState(e.state)}${e.status ? ` (${e.status})` : ''}   (${e.event})` : `${when}  ${e.event}${e.source ? `  from ${e.source}` : ''}`;
    return el('li', { class: e.kind, value: String(e.seq), text });
  });
  $('#timeline').replaceChildren(...items);
  const held = state.timeline.length;
  $('#timeline-note').textContent = state.timelineOverwritten > 0 ? `(last ${held} of ${state.timelineTotal}; older entries overwritten)` : `(${held})`;
}

// ---------- socket ----------
let ws = null;
function send(msg) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
}

function connect() {
  ws = new WebSocket(`ws://${location.host}/viewer`);
  ws.onopen = () => {
    $('#conn').textContent = 'live';
    $('#conn').className = 'conn on';
    if (state.selected) send({ type: 'select', id: state.selected });
  };
  ws.onclose = () => {
    $('#conn').textContent = 'disconnected';
    $('#conn').className = 'conn off';
    setTimeout(connect, 1000);
  };
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    state.serverSkew = msg.now !== undefined ? msg.now - Date.now() : state.serverSkew;
    if (msg.stats) state.stats = msg.stats;
    if (msg.type === 'hello') {
      state.actors = new Map(msg.actors.map((a) => [a.id, a]));
    } else if (msg.type === 'update') {
      for (const a of msg.actors) state.actors.set(a.id, a);
      for (const id of msg.removed ?? []) state.actors.delete(id);
      const mine = msg.entries.filter((x) => x.actor === state.selected).map((x) => x.entry);
      if (mine.length > 0) {
        state.timeline.push(...mine);
        state.timelineTotal += mine.length;
        if (state.timeline.length > 1000) state.timeline.splice(0, state.timeline.length - 1000);
        renderTimeline();
      }
    } else if (msg.type === 'timeline') {
      if (msg.id !== state.selected) return;
      state.timeline = msg.entries;
      state.timelineTotal = msg.total;
      state.timelineOverwritten = msg.overwritten;
      renderTimeline();
    }
    renderStats();
    renderActorsSoon();
  };
}

// ---------- counterexamples ----------
const cx = { combos: [], result: null, violation: null, pos: 0 };
window.__counterexamples = cx;

async function loadCatalog() {
  if (cx.combos.length > 0) return;
  cx.combos = await (await fetch('/api/counterexamples')).json();
  $('#cx-combo').replaceChildren(
    ...cx.combos.map((c, i) => el('option', { value: String(i), text: `${c.variant} × ${c.scenario} — ${c.bugClass}: ${c.summary}` })),
  );
}

async function exploreSelected() {
  const c = cx.combos[Number($('#cx-combo').value)];
  if (!c) return;
  $('#cx-status').textContent = `exploring ${c.variant} in ${c.scenario}…`;
  $('#cx-load').disabled = true;
  try {
    const r = await fetch(`/api/counterexample?scenario=${encodeURIComponent(c.scenario)}&variant=${encodeURIComponent(c.variant)}`);
    if (!r.ok) throw new Error(await r.text());
    cx.result = await r.json();
  } catch (e) {
    $('#cx-status').textContent = `failed: ${e.message}`;
    return;
  } finally {
    $('#cx-load').disabled = false;
  }
  const res = cx.result;
  $('#cx-status').textContent = `${res.variant} × ${res.scenario}: ${res.states} states, ${res.edges} edges explored in ${res.ms} ms; ${res.violations.length} invariant(s) broken (expected ${res.expect.join(', ')}).`;
  $('#cx-violation').replaceChildren(...res.violations.map((v, i) => el('option', { value: String(i), text: `${v.invariant}: ${v.message}` })));
  $('#cx-violation').disabled = res.violations.length === 0;
  pickViolation(0);
}

function pickViolation(i) {
  cx.violation = cx.result?.violations[i] ?? null;
  cx.pos = 0;
  renderFrame();
}

function stepTo(pos) {
  if (!cx.violation) return;
  cx.pos = Math.max(0, Math.min(cx.violation.frames.length - 1, pos));
  renderFrame();
}

async function renderFrame() {
  const v = cx.violation;
  for (const b of ['#cx-first', '#cx-prev', '#cx-next']) $(b).disabled = !v;
  if (!v) {
    $('#cx-pos').textContent = '–';
    $('#cx-path').replaceChildren();
    $('#cx-actors').replaceChildren();
    return;
  }
  const last = v.frames.length - 1;
  $('#cx-pos').textContent = `${cx.pos} / ${last}`;
  $('#cx-first').disabled = $('#cx-prev').disabled = cx.pos === 0;
  $('#cx-next').disabled = cx.pos === last;
  const items = [el('li', { class: `start${cx.pos === 0 ? ' current' : ''}`, text: 'start', onclick: () => stepTo(0) })];
  v.path.forEach((label, i) => items.push(el('li', { value: String(i + 1), class: i + 1 === cx.pos ? 'current' : '', text: label, onclick: () => stepTo(i + 1) })));
  if (v.note) items.push(el('li', { class: 'start', text: `note: ${v.note}` }));
  $('#cx-path').replaceChildren(...items);
  const frame = v.frames[cx.pos];
  const wrap = $('#cx-actors');
  wrap.dataset.frame = String(cx.pos);
  const names = Object.keys(frame.actors).sort();
  // Reuse one card per actor so the diagrams are not re-parsed on every step.
  const cards = new Map([...wrap.querySelectorAll('.card')].map((c) => [c.dataset.actor, c]));
  for (const [name, card] of cards) if (!names.includes(name)) card.remove();
  for (const name of names) {
    const a = frame.actors[name];
    let card = cards.get(name);
    if (!card) {
      card = el('div', { class: 'card', 'data-actor': name }, el('h3'), el('div', { class: 'state' }), el('div', { class: 'diagram' }));
      wrap.append(card);
    }
    const changed = frame.changed.includes(name) && cx.pos > 0;
    card.classList.toggle('changed', changed);
    card.querySelector('h3').textContent = `${name} — ${a.machineId}${a.diagram.startsWith('variant.') ? ` (${a.diagram.slice(8)})` : ''}`;
    card.querySelector('.state').textContent = `${a.status}: ${prettyState(a.state)}`;
    const box = card.querySelector('.diagram');
    await showDiagram(box, a.diagram);
    highlight(box, a.activeIds, changed);
  }
  // Keep cards in name order.
  for (const name of names) wrap.append(wrap.querySelector(`.card[data-actor="${CSS.escape(name)}"]`));
  wrap.dataset.rendered = String(cx.pos);
}

// ---------- machines tab ----------
async function renderMachines() {
  const box = $('#machines');
  if (box.childElementCount > 0) return;
  for (const m of state.machines.values()) {
    if (m.kind !== 'production') continue;
    const d = el('div', { class: 'diagram' });
    box.append(el('div', { class: 'card', 'data-machine': m.key }, el('h3', { text: m.id }), d));
    await showDiagram(d, m.key);
  }
}

// ---------- wiring ----------
function showTab(name) {
  for (const b of document.querySelectorAll('nav button')) b.classList.toggle('active', b.dataset.tab === name);
  for (const s of document.querySelectorAll('.tab')) s.classList.toggle('active', s.id === `tab-${name}`);
  if (name === 'counterexamples') loadCatalog();
  if (name === 'machines') renderMachines();
  location.hash = name;
}

for (const b of document.querySelectorAll('nav button')) b.addEventListener('click', () => showTab(b.dataset.tab));
for (const r of document.querySelectorAll('input[name=filter]')) r.addEventListener('change', () => ((state.filter = r.value), renderActors()));
$('#stuck-secs').addEventListener('input', renderActors);
$('#search').addEventListener('input', renderActors);
$('#cx-load').addEventListener('click', exploreSelected);
$('#cx-violation').addEventListener('change', () => pickViolation(Number($('#cx-violation').value)));
$('#cx-first').addEventListener('click', () => stepTo(0));
$('#cx-prev').addEventListener('click', () => stepTo(cx.pos - 1));
$('#cx-next').addEventListener('click', () => stepTo(cx.pos + 1));
document.addEventListener('keydown', (e) => {
  if (!$('#tab-counterexamples').classList.contains('active') || e.target.tagName === 'INPUT' || e.target.tagName === 'SELECT') return;
  if (e.key === 'ArrowRight') stepTo(cx.pos + 1);
  if (e.key === 'ArrowLeft') stepTo(cx.pos - 1);
});
// Ages and the stuck filter move with the clock even when no event arrives.
setInterval(() => renderActorsSoon(), 1000);

const machines = await (await fetch('/api/machines')).json();
for (const m of machines) state.machines.set(m.key, m);
connect();
const tab = location.hash.slice(1);
showTab(['live', 'counterexamples', 'machines'].includes(tab) ? tab : 'live');
document.body.dataset.ready = 'true';
