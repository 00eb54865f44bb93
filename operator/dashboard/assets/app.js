// The dashboard: for an operator, polls the JSON endpoints under /dashboard/api/ and renders
// tables; for a holder of the reports right, the reports form (downloaded, or shown here).
// Data is only ever inserted as text (textContent), never as markup. Times come from the broker
// already in Astana time with their offset and are shown as they are, never converted to the
// browser's zone.
'use strict';

(function () {
  const POLL_MS = 5000;
  let csrf = '';
  let stopped = false;
  let timer = null;
  let operatorView = false; // the session holds the operator right: the operator's sections are shown

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

  // maxTime shows a Go duration ("1h30m0s") as the form writes it: "1 ч 30 мин".
  function maxTime(d) {
    const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(d || '');
    if (!m) return d || '—';
    const parts = [];
    if (m[1] && m[1] !== '0') parts.push(m[1] + ' ч');
    if (m[2] && m[2] !== '0') parts.push(m[2] + ' мин');
    if (m[3] && Number(m[3]) > 0) parts.push(m[3] + ' с');
    return parts.length ? parts.join(' ') : '—';
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

  // The charts: SVG drawn by the broker for the service and the window chosen, fetched again at
  // every refresh (the query's "at" makes each fetch a new image).
  function chartWindow() { return $('chart-window').value === '24h' ? '24h' : '1h'; }

  function refreshCharts() {
    const q = '?service=' + encodeURIComponent($('chart-service').value) + '&window=' + chartWindow() + '&at=' + Date.now();
    for (const kind of ['requests', 'latency', 'errors']) {
      $('chart-' + kind).src = '/dashboard/charts/' + kind + '.svg' + q;
    }
  }

  // pickService shows service n's charts (0: every service's).
  function pickService(n) {
    $('chart-service').value = String(n);
    refreshCharts();
    // At once, not smoothly: a page that moves under the pointer takes the next click elsewhere.
    $('charts').scrollIntoView();
  }

  // serviceOptions fills the service chooser of the charts once the services are known.
  function serviceOptions(services) {
    const sel = $('chart-service');
    if (sel.options.length === services.length + 1) return;
    const keep = sel.value;
    const frag = document.createDocumentFragment();
    const all = document.createElement('option');
    all.value = '0';
    all.textContent = 'all services';
    frag.appendChild(all);
    for (const s of services) {
      const o = document.createElement('option');
      o.value = String(s.service);
      o.textContent = s.service + (s.name ? ' ' + s.name : '');
      frag.appendChild(o);
    }
    sel.replaceChildren(frag);
    sel.value = keep || '0';
  }

  let lastServices = null;

  function renderServices(v) {
    lastServices = v;
    serviceOptions(v.services);
    const day = chartWindow() === '24h';
    const busyOnly = $('services-busy-only').checked;
    const shown = busyOnly ? v.services.filter((s) => (day ? s.busyDay : s.busyHour)) : v.services;
    $('services-shown').textContent = shown.length + ' of ' + v.services.length + ' services shown' +
      (busyOnly ? ' (busy in the ' + (day ? 'last 24 hours' : 'last hour') + ')' : '');
    const picked = $('chart-service').value;
    fill($('services-rows'), shown, (tr, s) => {
      tr.id = 'service-' + s.service;
      if (s.inFlight > 0) tr.className = 'busy';
      if (String(s.service) === picked) tr.classList.add('picked');
      tr.title = 'Show the charts of service ' + s.service;
      tr.addEventListener('click', () => pickService(s.service));
      cell(tr, s.service);
      cell(tr, s.name || '');
      cell(tr, s.adapter || '', 'mono');
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
    }, busyOnly ? 'No service is busy: untick "Busy only" to see all of them.' : 'No services.', 14);
  }

  // overdueOf are the numbers of incident i's actions past their maximum time.
  function overdueOf(v, i) {
    return (v.overdue && v.overdue[String(i.number)]) || [];
  }

  function button(text, cls, onClick) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = text;
    if (cls) b.className = cls;
    b.addEventListener('click', onClick);
    return b;
  }

  // renderEmergencies shows each open emergency of Appendix 7 with its table of actions, the
  // overdue ones marked, and the buttons that record an action's start and end (at the time given
  // above them, or now).
  function renderEmergencies(v) {
    $('plans-note').hidden = !v.plansNote && !v.plansExample;
    $('plans-note').textContent = v.plansNote ||
      (v.plansExample ? 'The action plans are the shipped example (configs/emergencies.yaml): adapt them.' : '');
    $('emergency-form').hidden = !!v.plansNote;
    const select = $('em-kind');
    if (select.options.length === 0) {
      for (const k of v.kinds) {
        const o = document.createElement('option');
        o.value = k.kind;
        o.textContent = k.section + '. ' + k.title;
        select.appendChild(o);
      }
    }
    const titles = {};
    for (const k of v.kinds) titles[k.kind] = k.section + '. ' + k.title;
    const box = $('emergencies-open');
    const frag = document.createDocumentFragment();
    const open = v.open.filter((i) => titles[i.type]);
    if (open.length === 0) {
      const p = document.createElement('p');
      p.className = 'note';
      p.textContent = 'No open emergency.';
      frag.appendChild(p);
    }
    for (const i of open) {
      const div = document.createElement('div');
      div.className = 'emergency';
      div.id = 'emergency-' + i.number;
      const h = document.createElement('h3');
      h.textContent = '№ ' + i.number + ' — ' + titles[i.type];
      div.appendChild(h);
      const p = document.createElement('p');
      p.textContent = 'Onset ' + astana(i.startedAt) + '; causes: ' + (i.reason || '—') + '; recorded ' + astana(i.openedAt) + '.';
      div.appendChild(p);
      const over = overdueOf(v, i);
      const table = document.createElement('table');
      const head = document.createElement('thead');
      const htr = document.createElement('tr');
      for (const text of ['№ п/п', 'Действия', 'Необходимое время (max)', 'Ответственный', 'Дата и время начала',
        'Дата и время окончания', '']) {
        const th = document.createElement('th');
        th.textContent = text;
        htr.appendChild(th);
      }
      head.appendChild(htr);
      table.appendChild(head);
      const body = document.createElement('tbody');
      for (const a of i.actions || []) {
        const tr = document.createElement('tr');
        tr.id = 'emergency-' + i.number + '-action-' + a.no;
        if (over.includes(a.no)) tr.className = 'overdue';
        cell(tr, a.no);
        cell(tr, a.action);
        cell(tr, maxTime(a.max) + (over.includes(a.no) ? ' — OVERDUE' : ''));
        cell(tr, a.responsible);
        cell(tr, astana(a.startedAt));
        cell(tr, astana(a.endedAt));
        const td = document.createElement('td');
        const path = '/dashboard/api/incidents/' + i.number + '/actions/' + a.no + '/';
        if (!a.startedAt) {
          td.appendChild(button('Start', 'action-start', () => act(path + 'start', { at: $('em-at').value },
            'Action ' + a.no + ' of emergency ' + i.number + ' started.')));
        } else if (!a.endedAt) {
          td.appendChild(button('End', 'action-end', () => act(path + 'end', { at: $('em-at').value },
            'Action ' + a.no + ' of emergency ' + i.number + ' ended.')));
        }
        tr.appendChild(td);
        body.appendChild(tr);
      }
      table.appendChild(body);
      div.appendChild(table);
      frag.appendChild(div);
    }
    box.replaceChildren(frag);
  }

  function renderIncidents(v) {
    $('incidents-threshold').textContent = v.threshold || 'an hour';
    renderEmergencies(v);
    fill($('incidents-open'), v.open, (tr, i) => {
      tr.id = 'incident-' + i.number;
      tr.className = 'open';
      cell(tr, i.number);
      cell(tr, i.type);
      cell(tr, i.service || '');
      cell(tr, i.queue, 'mono');
      cell(tr, astana(i.startedAt));
      cell(tr, astana(i.openedAt));
      cell(tr, i.affected, 'num');
      cell(tr, [i.reason, i.lastError].filter(Boolean).join(' — '));
      cell(tr, overdueOf(v, i).join(', '));
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
    }, 'No open incident.', 12);
    fill($('incidents-recent'), v.recent, (tr, i) => {
      tr.id = 'incident-' + i.number;
      cell(tr, i.number);
      cell(tr, i.type);
      cell(tr, i.service || '');
      cell(tr, i.queue, 'mono');
      cell(tr, astana(i.startedAt));
      cell(tr, astana(i.closedAt));
      cell(tr, i.affected, 'num');
      cell(tr, i.closeNote);
      cell(tr, i.measures);
      cell(tr, i.responsible);
    }, 'No incident closed in the last 7 days.', 10);
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

  function renderApplications(v) {
    $('applications-note').textContent = !v.available ? 'No store of applications.' :
      v.pending.length + ' waiting, ' + v.overdue + ' past the deadline.';
    fill($('applications-pending'), v.pending, (tr, a) => {
      tr.id = 'application-' + a.id;
      if (a.overdue) tr.className = 'overdue';
      cell(tr, a.id, 'num');
      cell(tr, a.kind);
      cell(tr, a.iin, 'mono');
      cell(tr, a.name);
      cell(tr, a.organisation);
      cell(tr, astana(a.submittedAt));
      cell(tr, a.by);
      cell(tr, astana(a.deadline) + (a.overdue ? ' (overdue)' : ''));
      cell(tr, a.reason);
    }, 'No application waits for a decision.', 9);
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
      cell(tr, w.emergency ? w.state + ' (emergency)' : w.state);
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

  // The columns the page shows of a report, by kind; the download has them all.
  const REPORT_COLUMNS = {
    requests: [['time', 'Time', astana], ['signerName', 'Signer'], ['signerIin', 'IIN'], ['department', 'Department'],
      ['basis', 'Basis'], ['case', 'Case'], ['article', 'Article'], ['subject', 'Subject'],
      ['services', 'Services', (v) => v.join(' ')], ['purpose', 'Purpose'], ['outcome', 'Outcome'], ['code', 'Code'],
      ['organisation', 'Organisation'], ['erdrCode', 'ЕРДР code'], ['note', 'Note']],
    summary: [['month', 'Month'], ['organisation', 'Organisation'], ['erdrCode', 'ЕРДР code'], ['department', 'Department'],
      ['requests', 'Requests'], ['answered', 'Answered'], ['partial', 'Partial'], ['denied', 'Denied'],
      ['failed', 'Failed'], ['refused', 'Refused'], ['pending', 'Pending']],
  };

  // showReport asks for the report as JSON and shows it in the page. The report is a journaled
  // use like a download: it is asked for by a POST that carries the session's CSRF token.
  async function showReport() {
    const form = $('report-form');
    if (!form.reportValidity()) return;
    const fields = new URLSearchParams(new FormData(form));
    fields.set('format', 'json');
    const r = await fetch('/dashboard/reports', { method: 'POST', body: fields, credentials: 'same-origin', cache: 'no-store' });
    const text = await r.text();
    if (!r.ok) {
      let code = r.headers.get('X-SIO-Error-Code') || 'SIO-INTERNAL', message = text;
      try { const b = JSON.parse(text); code = b.code; message = b.message; } catch (e) { message = text.replace(/^[A-Z-]+: /, ''); }
      failed(refusal({ code: code, message: message.trim() }, r.status));
      return;
    }
    const rows = JSON.parse(text);
    const kind = fields.get('kind') === 'summary' ? 'summary' : 'requests';
    const cols = REPORT_COLUMNS[kind];
    const head = document.createElement('tr');
    for (const [, title] of cols) {
      const th = document.createElement('th');
      th.textContent = title;
      head.appendChild(th);
    }
    $('report-head').replaceChildren(head);
    fill($('report-rows'), rows, (tr, row) => {
      for (const [key, , show] of cols) cell(tr, show ? show(row[key]) : row[key]);
    }, 'No request in this period and filter.', cols.length);
    $('report-table').hidden = false;
    const noun = kind === 'summary' ? 'row' : 'request';
    $('report-count').textContent = rows.length + ' ' + noun + (rows.length === 1 ? '' : 's') +
      ' (report ' + (r.headers.get('X-SIO-Request-Id') || '') + ')';
    showStatus('', false);
  }

  async function refresh() {
    if (stopped || !operatorView) return;
    const parts = [
      ['services', renderServices],
      ['incidents', renderIncidents],
      ['deadletters', renderDeadLetters],
      ['maintenance', renderMaintenance],
      ['applications', renderApplications],
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
    refreshCharts();
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
    $('chart-service').addEventListener('change', () => {
      refreshCharts();
      if (lastServices) renderServices(lastServices);
    });
    $('chart-window').addEventListener('change', () => {
      refreshCharts();
      if (lastServices) renderServices(lastServices);
    });
    $('services-busy-only').addEventListener('change', () => {
      if (lastServices) renderServices(lastServices);
    });
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
    $('em-open').addEventListener('click', async () => {
      if (await act('/dashboard/api/emergencies', {
        kind: $('em-kind').value, cause: $('em-cause').value, started: $('em-started').value,
      }, 'Emergency opened.')) {
        $('em-cause').value = '';
        $('em-started').value = '';
      }
    });
    $('dlq-replay').addEventListener('click', () => act('/dashboard/api/deadletters/replay', { max: $('dlq-max').value },
      'Dead letters sent back to their queues.'));
    $('mw-announce').addEventListener('click', () => act('/dashboard/api/maintenance', {
      services: $('mw-services').value, start: $('mw-start').value, end: $('mw-end').value, reason: $('mw-reason').value,
      emergency: $('mw-emergency').checked ? 'true' : '',
    }, 'Maintenance window announced.'));
    $('report-show').addEventListener('click', () => showReport().catch(failed));
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
      operatorView = s.operator;
      for (const el of document.querySelectorAll('section.operator')) el.hidden = !s.operator;
      $('asof').hidden = !s.operator;
      $('reports').hidden = !s.reports;
      $('report-csrf').value = csrf;
      $('title').textContent = 'СИО ПСО broker — ' + (s.operator ? 'operator dashboard' : 'reports');
      const today = s.now.slice(0, 10);
      $('report-to').value = today;
      $('report-from').value = today.slice(0, 8) + '01';
    } catch (e) {
      failed(e);
      return;
    }
    if (!operatorView) return;
    await refresh();
    timer = setInterval(refresh, POLL_MS);
  }

  document.addEventListener('DOMContentLoaded', start);
})();
