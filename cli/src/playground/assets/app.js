// The playground page: renders the state that `handover serve` pushes over server-sent events
// and posts the user's, the agent's and the operator's actions. No polling, no secrets.
'use strict';

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};
const time = (iso) => (iso ? new Date(iso).toLocaleTimeString([], { hour12: false }) : '');
const timeMs = (iso) => {
  if (!iso) return '';
  const d = new Date(iso);
  return `${d.toLocaleTimeString([], { hour12: false })}.${String(d.getMilliseconds()).padStart(3, '0')}`;
};
const inSeconds = (iso) => {
  const s = Math.round((new Date(iso) - Date.now()) / 1000);
  return s >= 0 ? `in ${s} s` : `${-s} s ago`;
};

async function post(path, body) {
  const res = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body || {}),
  });
  const answer = await res.json().catch(() => ({}));
  if (!res.ok) {
    const msg = (answer.error && answer.error.message) || `${res.status}`;
    showStatus(`Refused: ${msg}`, true);
    throw new Error(msg);
  }
  return answer;
}

function showStatus(text, bad) {
  const s = $('#operator-status');
  s.textContent = text;
  s.classList.toggle('bad', !!bad);
}

// ---- chats and timelines -------------------------------------------------------------------

const columns = new Map();

function chatColumn(session) {
  let col = columns.get(session.id);
  if (col) return col;
  col = $('#chat-template').content.firstElementChild.cloneNode(true);
  col.dataset.session = session.id;
  $('.sid', col).textContent = session.chatHere ? session.id : `${session.id} (another client)`;
  const form = $('form.say', col);
  if (!session.chatHere) form.hidden = true;
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = form.elements.text;
    const text = input.value.trim();
    if (!text) return;
    input.value = '';
    post(`/playground/api/sessions/${encodeURIComponent(session.id)}/say`, { text }).catch(() => {});
  });
  columns.set(session.id, col);
  $('#chats').appendChild(col);
  return col;
}

function renderChat(col, session) {
  const log = $('.log', col);
  const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  log.replaceChildren(
    ...session.chat.map((m) => {
      const li = el('li', `msg ${m.from}`);
      if (m.name) li.dataset.name = m.name;
      const who = { user: 'Ann', bot: 'Bot', agent: m.name || 'Agent', dialog: 'handover', error: 'error' }[m.from] || m.from;
      li.appendChild(el('span', 'who', who));
      li.appendChild(el('span', 'text', m.text));
      if (m.buttons && m.buttons.length) {
        const row = el('div', 'buttons');
        for (const b of m.buttons) {
          const btn = el('button', 'choice', b);
          btn.type = 'button';
          btn.addEventListener('click', () =>
            post(`/playground/api/sessions/${encodeURIComponent(session.id)}/say`, { text: b }).catch(() => {}));
          row.appendChild(btn);
        }
        li.appendChild(row);
      }
      if (m.note) li.appendChild(el('span', 'note', m.note));
      li.appendChild(el('time', 'at', time(m.at)));
      return li;
    }),
  );
  if (atBottom || session.chat.length < 4) log.scrollTop = log.scrollHeight;
  const typing = $('.typing', col);
  typing.hidden = !session.typing;
  typing.textContent = session.typing ? `${session.typing} is typing…` : '';
}

function fact(dl, name, value) {
  if (value === undefined || value === null || value === '') return;
  dl.appendChild(el('dt', '', name));
  dl.appendChild(el('dd', '', String(value)));
}

function renderTimeline(col, session) {
  const st = session.store || {};
  const state = st.state || 'bot';
  const pill = $('.state', col);
  pill.textContent = state;
  pill.dataset.state = state;
  const dl = $('.facts', col);
  dl.replaceChildren();
  fact(dl, 'state', `${state} (control: ${st.control || 'bot'})`);
  const h = st.handover;
  if (h) {
    fact(dl, 'handover', `${h.id} · ${h.provider}/${h.queue} · ${h.trigger} · ${h.language}`);
    fact(dl, 'requested', time(h.requestedAt));
    if (h.agent) fact(dl, 'agent', `${h.agent.name || h.agent.id} joined ${time(h.joinedAt)}`);
  }
  const t = st.timers || {};
  if (t.stillWaitingAt) fact(dl, 'next nudge', `${time(t.stillWaitingAt)} (${inSeconds(t.stillWaitingAt)})`);
  if (t.noAgentAt) fact(dl, 'no-agent timeout', `${time(t.noAgentAt)} (${inSeconds(t.noAgentAt)})`);
  if (t.agentIdleAt) fact(dl, 'agent idle timeout', `${time(t.agentIdleAt)} (${inSeconds(t.agentIdleAt)})`);
  const last = st.lastHandover;
  if (last && last.endReason) fact(dl, 'last end', `${last.endReason} at ${time(last.endedAt)} (${last.id})`);
  if (st.messages !== undefined) fact(dl, 'transcript', `${st.messages} turns`);

  const outbox = $('.outbox', col);
  outbox.replaceChildren();
  if (st.outbox && st.outbox.length) {
    outbox.appendChild(el('h4', '', 'Outbox (not yet delivered)'));
    const ul = el('ul');
    for (const o of st.outbox) {
      ul.appendChild(el('li', o.status === 'Pending' ? 'pending' : 'gave-up',
        `#${o.seq} ${o.what} · ${o.status} · attempts ${o.attempts} · next ${time(o.nextAttempt)}${o.lastError ? ` · ${o.lastError}` : ''}`));
    }
    outbox.appendChild(ul);
  }

  const events = $('.events', col);
  const atBottom = events.scrollTop + events.clientHeight >= events.scrollHeight - 4;
  events.replaceChildren(
    ...session.timeline.map((e) => {
      const li = el('li', `${e.dir}${e.ok ? '' : ' failed'}`);
      li.appendChild(el('time', '', timeMs(e.at)));
      li.appendChild(el('span', 'arrow', e.dir === 'in' ? `${e.party} → handover` : `handover → ${e.party}`));
      li.appendChild(el('b', 'kind', e.kind));
      li.appendChild(el('span', 'detail', e.detail));
      return li;
    }),
  );
  if (atBottom) events.scrollTop = events.scrollHeight;
}

// ---- the desk --------------------------------------------------------------------------------

const cards = new Map();
let lastTyping = 0;

function deskCard(c) {
  let card = cards.get(c.id);
  if (card) return card;
  card = $('#conversation-template').content.firstElementChild.cloneNode(true);
  card.dataset.conversation = c.id;
  card.dataset.session = c.sessionId;
  $('.cid', card).textContent = `${c.id.slice(0, 12)}… · ${c.sessionId}`;
  $('.cid', card).title = c.id;
  const act = (action, body) =>
    post(`/playground/api/desk/${encodeURIComponent(c.id)}/${action}`, body).catch(() => {});
  $('.join', card).addEventListener('click', () => act('join'));
  $('.close', card).addEventListener('click', () => act('close'));
  const form = $('form.reply', card);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = form.elements.text.value.trim();
    if (!text) return;
    form.elements.text.value = '';
    act('message', { text });
  });
  form.elements.text.addEventListener('input', () => {
    // The agent is typing: tell handover at most every 3 s.
    if (card.dataset.status !== 'joined' || Date.now() - lastTyping < 3000) return;
    lastTyping = Date.now();
    act('typing');
  });
  cards.set(c.id, card);
  const list = $('#conversations');
  $('.empty', list)?.remove();
  list.prepend(card);
  return card;
}

function renderDesk(conversations) {
  for (const c of conversations) {
    const card = deskCard(c);
    card.dataset.status = c.status;
    const pill = $('.status', card);
    pill.textContent = c.endReason ? `${c.status}: ${c.endReason}` : c.status;
    pill.dataset.state = c.status;
    const meta = $('.meta', card);
    meta.replaceChildren();
    fact(meta, 'queue', c.queue);
    fact(meta, 'trigger', c.trigger);
    fact(meta, 'language', c.language);
    if (c.user && c.user.name) fact(meta, 'user', c.user.name);
    if (c.summary) fact(meta, 'summary', c.summary);
    const vars = c.variables && Object.keys(c.variables).length
      ? Object.entries(c.variables).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(', ')
      : '(none)';
    fact(meta, 'variables', vars);
    const msgs = $('.messages', card);
    const line = (m, cls) => {
      const li = el('li', `${m.actor} ${cls}`);
      li.appendChild(el('span', 'who', m.actor === 'agent' ? 'Eva' : m.actor));
      li.appendChild(el('span', 'text', m.text));
      return li;
    };
    msgs.replaceChildren(
      el('li', 'divider', 'Transcript handed over'),
      ...c.transcript.map((m) => line(m, 'handed')),
      ...(c.messages.length ? [el('li', 'divider', 'Live')] : []),
      ...c.messages.map((m) => line(m, 'live')),
    );
    msgs.scrollTop = msgs.scrollHeight;
    const open = c.status === 'waiting' || c.status === 'joined';
    $('.join', card).disabled = c.status !== 'waiting';
    $('.close', card).disabled = !open;
    $('form.reply', card).elements.text.disabled = !open;
    $('.send', card).disabled = !open;
  }
}

// ---- operator ------------------------------------------------------------------------------

let filled = false;

function renderOperator(op) {
  $('#kill-on').checked = !!op.killSwitch;
  const ks = $('#kill-state');
  ks.textContent = op.killSwitch ? `on: ${op.killSwitch}` : 'off';
  ks.dataset.state = op.killSwitch ? 'on' : 'off';
  $('#agents-online').checked = op.agentsOnline;
  $('#desk-fails').checked = op.deskFails;
  const a = op.availability;
  $('#availability').textContent = a
    ? `handover last asked at ${time(a.at)} (queue ${a.queue}): agentsOnline ${a.agentsOnline}. It asks about once a minute.`
    : 'handover has not asked yet (it asks about once a minute)';
  const sel = $('#language');
  const langs = Array.from(new Set([...op.languages, op.language]));
  if (sel.options.length !== langs.length) {
    sel.replaceChildren(...langs.map((l) => el('option', '', l)));
  }
  sel.value = op.language;
  if (!filled) {
    filled = true;
    if (op.hours) {
      $('#hours-expr').value = op.hours.openingHours || '';
      $('#hours-tz').value = op.hours.timeZone || 'Europe/Brussels';
      $('#hours-ph').value = op.hours.publicHolidays || '';
    }
    previewHours();
  }
  if (op.status) showStatus(op.status, false);
  const w = $('#warnings');
  w.hidden = !op.warnings.length;
  w.textContent = op.warnings.join(' · ');
}

function hoursBody() {
  return {
    openingHours: $('#hours-expr').value,
    timeZone: $('#hours-tz').value,
    publicHolidays: $('#hours-ph').value,
  };
}

let previewTimer;
function previewHours() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(async () => {
    const out = $('#hours-preview');
    try {
      const res = await fetch('/playground/api/operator/hours-preview', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(hoursBody()),
      });
      const p = await res.json();
      out.classList.toggle('bad', !res.ok);
      out.dataset.open = res.ok ? String(p.open) : '';
      if (!res.ok) out.textContent = p.error.message;
      else if (p.always) out.textContent = 'No hours: always open';
      else if (p.open) out.textContent = `Open now (${p.localNow}, ${p.timeZone})`;
      else {
        const next = p.nextOpening
          ? `next opening ${p.nextOpeningText} (${p.nextOpeningLocal}, ${p.timeZone})`
          : 'no opening within a year';
        out.textContent = `Closed now (${p.reason}; ${p.localNow}) · ${next}`;
      }
    } catch (e) {
      out.textContent = String(e);
    }
  }, 250);
}

function wireOperator() {
  $('#kill-on').addEventListener('change', (ev) => {
    const on = ev.target.checked;
    post('/playground/api/operator/kill-switch', { on, reason: $('#kill-reason').value })
      .catch(() => { ev.target.checked = !on; });
  });
  for (const id of ['#hours-expr', '#hours-tz', '#hours-ph']) $(id).addEventListener('input', previewHours);
  $('#hours-apply').addEventListener('click', () => post('/playground/api/operator/hours', hoursBody()).catch(() => {}));
  $('#language').addEventListener('change', (ev) => {
    post('/playground/api/operator/language', { language: ev.target.value }).then(previewHours).catch(() => {});
  });
  $('#agents-online').addEventListener('change', (ev) =>
    post('/playground/api/operator/agents-online', { on: ev.target.checked }).catch(() => {}));
  $('#desk-fails').addEventListener('change', (ev) =>
    post('/playground/api/operator/desk-fails', { on: ev.target.checked }).catch(() => {}));
  $('#new-chat').addEventListener('click', () => post('/playground/api/sessions').catch(() => {}));
}

// ---- the stream ----------------------------------------------------------------------------

function render(state) {
  $('#bot-id').textContent = state.botId;
  const err = $('#error');
  err.hidden = !state.error;
  err.textContent = state.error || '';
  renderOperator(state.operator);
  for (const s of state.sessions) {
    const col = chatColumn(s);
    renderChat(col, s);
    renderTimeline(col, s);
  }
  renderDesk(state.desk);
}

function connect() {
  const live = $('#live');
  const source = new EventSource('/playground/events');
  source.addEventListener('open', () => {
    live.textContent = 'live';
    live.className = 'live on';
  });
  source.addEventListener('state', (ev) => render(JSON.parse(ev.data)));
  source.addEventListener('error', () => {
    // EventSource reconnects by itself.
    live.textContent = 'reconnecting…';
    live.className = 'live off';
  });
}

wireOperator();
connect();
