// The operator dashboard: polls the JSON endpoints under /dashboard/api/ and renders tables.
// Data is only ever inserted as text (textContent), never as markup. Times come from the broker
// already in Astana time with their offset and are shown as they are, never converted to the
// browser's zone.
'use strict';

(function () {
  const POLL_MS = 5000;
  let csrf = '';
  let stopped = false;
  let timer = null;

  const $ = (id) => document.getElementById(id);

  // astana shows "2026-11-23T17:00:00.000+05:00" as "2026-11-23 17:00:00 +05:00".
  function astana(s) {
    if (!s) return '—';
    return s.replace('T', ' ').replace(/\.\d+/, '').replace(/([+-]\d\d:\d\d|Z)$/, ' $1');
  }

  function age(seconds) {
    if (!seconds || seconds <= 0) return '—';
    const s = Math.floor(seconds);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    if (h > 0) return h + ' h ' + String(m).padStart(2, '0') + ' min';
    if (m > 0) return m + ' min ' + String(r).padStart(2, '0') + ' s';
    return r + ' s';
  }

  function count(n) { return n < 0 ? 'n/a' : String(n); }

  function cell(tr, text, cls) {
    const td = document.createElement('td');
    td.textContent = text === undefined || text === null || text === '' ? '—' : String(text);
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function fill(tbody, items, render, empty, columns) {
    const frag = document.createDocumentFragment();
    if (items.length === 0) {
      const tr = document.createElement('tr');
      const td = cell(tr, empty, 'empty');
      td.colSpan = columns;
      frag.appendChild(tr);
    }
    for (const item of items) {
      const tr = document.createElement('tr');
      render(tr, item);
      frag.appendChild(tr);
    }
    tbody.replaceChildren(frag);
  }

  function showStatus(text, isError) {
    const el = $('status');
    el.textContent = text;
    el.className = isError ? 'error' : 'ok';
  }

  function refusal(body, status) {
    const e = new Error((body && body.message) || ('HTTP ' + status));
    e.code = (body && body.code) || 'SIO-INTERNAL';
    e.status = status;
    return e;
  }

  async function getJSON(path) {
    const r = await fetch('/dashboard/api/' + path, { credentials: 'same-origin', cache: 'no-store' });
    const body = await r.json().catch(() => null);
    if (!r.ok) throw refusal(body, r.status);
    return body;
  }

  async function post(path, fields) {
    const form = new URLSearchParams(fields);
    form.set('csrf', csrf);
    const r = await fetch(path, { method: 'POST', body: form, credentials: 'same-origin', cache: 'no-store' });
    const body = await r.json().catch(() => null);
    if (!r.ok) throw refusal(body, r.status);
    return body;
  }

  // stop ends polling once the session is gone: a refused poll must not repeat every 5 seconds.
  function stop(e) {
    stopped = true;
    if (timer) clearInterval(timer);
    showStatus(e.code + ': ' + e.message + ' — log in again with `siobroker dashboard login`.', true);
  }

  // sessionOver tells the refusals after which no request of this page can succeed.
  function sessionOver(e) {
    return e.code === 'SIO-DASHBOARD-DENIED' || e.code.startsWith('SIO-USER-') || e.code.startsWith('SIO-CERT-');
  }

  function failed(e) {
    if (sessionOver(e)) {
      stop(e);
      return;
    }
    showStatus(e.code + ': ' + e.message, true);
  }

  function renderServices(v) {
    fill($('services-rows'), v.services, (tr, s) => {
      if (s.inFlight > 0) tr.className = 'busy';
      cell(tr, s.service);
      cell(tr, s.queue, 'mono');
      cell(tr, count(s.queueDepth), 'num');
      cell(tr, s.inFlight, 'num');
      cell(tr, age(s.oldestAgeSeconds), 'num');
      cell(tr, (s.errorRate * 100).toFixed(1) + ' %', 'num');
      cell(tr, s.dispatched, 'num');
      cell(tr, s.answered, 'num');
      cell(tr, s.errors, 'num');
      cell(tr, s.timeouts, 'num');
      cell(tr, s.lateAnswers, 'num');
      cell(tr, count(s.deadLetters), 'num');
    }, 'No services.', 12);
  }

  function renderIncidents(v) {
    fill($('incidents-open'), v.open, (tr, i) => {
      tr.id = 'incident-' + i.number;
      tr.className = 'open';
      cell(tr, i.number);
      cell(tr, i.type);
      cell(tr, i.service);
      cell(tr, i.queue, 'mono');
      cell(tr, astana(i.startedAt));
      cell(tr, astana(i.openedAt));
      cell(tr, i.affected, 'num');
      cell(tr, i.lastError);
      cell(tr, i.measures);
      cell(tr, i.responsible);
      const td = document.createElement('td');
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = 'Act';
      b.dataset.number = i.number;
      b.addEventListener('click', () => {
        $('act-number').value = i.number;
        $('act-measures').value = i.measures || '';
        $('act-responsible').value = i.responsible || '';
        $('act-measures').focus();
      });
      td.appendChild(b);
      tr.appendChild(td);
    }, 'No open incident.', 11);
    fill($('incidents-recent'), v.recent, (tr, i) => {
      tr.id = 'incident-' + i.number;
      cell(tr, i.number);
      cell(tr, i.service);
      cell(tr, i.queue, 'mono');
      cell(tr, astana(i.startedAt));
      cell(tr, astana(i.closedAt));
      cell(tr, i.affected, 'num');
      cell(tr, i.closeNote);
      cell(tr, i.measures);
      cell(tr, i.responsible);
    }, 'No incident closed in the last 7 days.', 9);
  }

  function renderDeadLetters(v) {
    $('dlq-note').hidden = v.available;
    $('dlq-note').textContent = v.note || '';
    $('dlq-body').hidden = !v.available;
    if (!v.available) return;
    fill($('dlq-letters'), v.letters, (tr, d) => {
      cell(tr, d.messageId, 'mono');
      cell(tr, d.queue, 'mono');
      cell(tr, d.reason);
      cell(tr, d.count, 'num');
      cell(tr, astana(d.diedAt));
      cell(tr, d.payloadSize, 'num');
    }, 'The dead-letter queue is empty.', 6);
  }

  function renderMaintenance(v) {
    $('maintenance-note').hidden = v.available;
    $('maintenance-note').textContent = v.note || '';
    $('maintenance-table').hidden = !v.available;
    $('maintenance-form').hidden = !v.available;
    if (!v.available) return;
    fill($('maintenance-windows'), v.windows, (tr, w) => {
      tr.id = 'window-' + w.id;
      cell(tr, w.id || 'file');
      cell(tr, w.services.length === 0 ? 'all' : w.services.join(', '));
      cell(tr, astana(w.start));
      cell(tr, astana(w.end));
      cell(tr, w.state);
      cell(tr, w.reason);
      cell(tr, w.announcedBy);
      const td = document.createElement('td');
      if (w.id && w.state !== 'cancelled' && w.state !== 'ended') {
        const b = document.createElement('button');
        b.type = 'button';
        b.textContent = 'Cancel';
        b.className = 'cancel-window';
        b.addEventListener('click', () => act('/dashboard/api/maintenance/' + w.id + '/cancel', {},
          'Maintenance window ' + w.id + ' cancelled.'));
        td.appendChild(b);
      }
      tr.appendChild(td);
    }, 'No maintenance window announced.', 8);
  }

  async function refresh() {
    if (stopped) return;
    const parts = [
      ['services', renderServices],
      ['incidents', renderIncidents],
      ['deadletters', renderDeadLetters],
      ['maintenance', renderMaintenance],
    ];
    let asOf = '';
    await Promise.all(parts.map(async ([path, render]) => {
      try {
        const v = await getJSON(path);
        render(v);
        asOf = v.asOf;
      } catch (e) {
        failed(e);
      }
    }));
    if (asOf) $('updated').textContent = astana(asOf);
  }

  async function act(path, fields, done) {
    try {
      await post(path, fields);
      showStatus(done, false);
      await refresh();
      return true;
    } catch (e) {
      failed(e);
      return false;
    }
  }

  function incidentNumber() {
    const n = $('act-number').value.trim();
    if (!n) {
      showStatus('Give the incident number (or press Act on its row).', true);
      return '';
    }
    return n;
  }

  function wire() {
    $('act-annotate').addEventListener('click', async () => {
      const n = incidentNumber();
      if (!n) return;
      await act('/dashboard/api/incidents/' + encodeURIComponent(n) + '/annotate',
        { measures: $('act-measures').value, responsible: $('act-responsible').value },
        'Measures recorded for incident ' + n + '.');
    });
    $('act-close').addEventListener('click', async () => {
      const n = incidentNumber();
      if (!n) return;
      if (await act('/dashboard/api/incidents/' + encodeURIComponent(n) + '/close', { note: $('act-note').value },
        'Incident ' + n + ' closed.')) {
        $('act-note').value = '';
      }
    });
    $('dlq-replay').addEventListener('click', () => act('/dashboard/api/deadletters/replay', { max: $('dlq-max').value },
      'Dead letters sent back to their queues.'));
    $('mw-announce').addEventListener('click', () => act('/dashboard/api/maintenance', {
      services: $('mw-services').value, start: $('mw-start').value, end: $('mw-end').value, reason: $('mw-reason').value,
    }, 'Maintenance window announced.'));
    $('logout').addEventListener('click', async () => {
      try {
        await post('/dashboard/logout', {});
      } catch (e) {
        // The session may be gone already; either way it is over.
      }
      stopped = true;
      if (timer) clearInterval(timer);
      csrf = '';
      showStatus('Logged out. Run `siobroker dashboard login` to open a new session.', false);
    });
  }

  async function start() {
    wire();
    try {
      const s = await getJSON('session');
      csrf = s.csrf || '';
      $('who').textContent = s.name + ' (' + s.iin + '), ' + s.organisation;
      $('session-until').textContent = s.expires ? 'session until ' + astana(s.expires) : '';
    } catch (e) {
      failed(e);
      return;
    }
    await refresh();
    timer = setInterval(refresh, POLL_MS);
  }

  document.addEventListener('DOMContentLoaded', start);
})();
