'use strict';
// The triage playground. It only calls its own server: POST /v1/explain and GET /v1/ruleset.
// Text from messages and rule files is only ever set as text (append, textContent), never
// parsed as HTML. The fragment (#...) selects the view and may carry a message to try
// (#subject=…&body=…, or #raw=…); a fragment never leaves the browser.
(() => {
  const $ = (id) => document.getElementById(id);
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();

  /** Creates an element: attributes (class, href, title, id, data-*), then children. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') node.className = value;
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child !== undefined && child !== null && child !== false) node.append(child);
    }
    return node;
  }

  const fixed = (x, digits) => Number(x).toFixed(digits);
  const signed = (x) => (x > 0 ? '+' : '') + fixed(x, 2);
  const percent = (x) => Math.round(x * 100) + '%';
  const where = (loc) => loc.file + ':' + loc.line;
  // Rule files sit in one directory (named at the top of the ruleset view): the file's own
  // name is enough to tell them apart, and the whole path is the link's title.
  const shortWhere = (loc) => loc.file.split(/[\\/]/).pop() + ':' + loc.line;
  const locLink = (href, loc) => el('a', { href, class: 'loc', title: where(loc) }, shortWhere(loc));

  // Queue colours: by the queue's index in the ruleset (classes q0…q11 in the style).
  let queueOrder = [];
  const queueClass = (queue) => {
    const i = queueOrder.indexOf(queue);
    return 'q' + ((i < 0 ? queueOrder.length : i) % 12);
  };
  const swatch = (queue) => el('span', { class: 'swatch ' + queueClass(queue), title: queue });

  async function api(path, options) {
    // From the origin, not the page's URL: a URL with credentials in it (user:token@host)
    // cannot be fetched, and the browser sends the credentials it was given anyway.
    const url = location.origin + path;
    const response = await fetch(url, Object.assign({ credentials: 'same-origin', cache: 'no-store' }, options));
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON */ }
    if (!response.ok) {
      const why = body && body.error ? body.error : response.status + ' ' + response.statusText;
      if (response.status === 401) throw new Error(why + ': reload the page and sign in with the token as password');
      throw new Error(why);
    }
    return body;
  }

  // ------------------------------------------------------------------ the form

  let upload = null; // { name, bytes } of an uploaded .eml

  function mode() {
    return document.querySelector('input[name=mode]:checked').value;
  }

  function setMode(value) {
    document.querySelector('input[name=mode][value=' + value + ']').checked = true;
    $('ticket-fields').hidden = value !== 'ticket';
    $('raw-fields').hidden = value !== 'raw';
  }

  function base64(bytes) {
    let binary = '';
    for (let i = 0; i < bytes.length; i += 0x8000) {
      binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(binary);
  }

  function request() {
    if (mode() === 'raw') {
      const bytes = upload ? upload.bytes : encoder.encode($('raw').value);
      return { id: upload ? upload.name : 'playground', raw_email: base64(bytes), language: $('raw-language').value.trim() || undefined };
    }
    return {
      id: 'playground',
      subject: $('subject').value,
      body: $('body').value,
      from: $('from').value,
      language: $('language').value.trim() || undefined,
    };
  }

  async function explain() {
    const status = $('status');
    status.className = '';
    status.textContent = 'Classifying…';
    $('explain').disabled = true;
    try {
      const explanation = await api('/v1/explain', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(request()),
      });
      render(explanation);
      status.textContent = '';
    } catch (e) {
      status.className = 'error';
      status.textContent = e.message;
    } finally {
      $('explain').disabled = false;
    }
  }

  // ------------------------------------------------------------------ the verdict

  function render(ex) {
    queueOrder = ex.queues.map((q) => q.queue);
    $('top-version').textContent = 'ruleset ' + ex.verdict.ruleset_version;
    renderVerdict(ex);
    renderBars(ex);
    renderMessage(ex);
    renderEvidence(ex);
    renderStructure(ex);
    const result = $('result');
    result.hidden = false;
    result.dataset.queue = ex.verdict.queue;
  }

  function renderVerdict(ex) {
    const v = ex.verdict;
    const second = v.ranking[1];
    const facts = el('dl', { class: 'facts' },
      el('dt', {}, 'confidence'), el('dd', { id: 'confidence' }, fixed(v.confidence, 4) + ' (' + percent(v.confidence) + ')'),
      el('dt', {}, 'threshold'), el('dd', {}, fixed(ex.review.threshold, 2)),
      el('dt', {}, 'destination'), el('dd', {}, v.destination || '(no mailbox)'),
      el('dt', {}, 'runner-up'), el('dd', {}, second ? second.queue + ', margin ' + fixed(v.ranking[0].score - second.score, 2) : 'no other queue has evidence'),
      el('dt', {}, 'language'), el('dd', {}, v.language || 'unknown'),
      el('dt', {}, 'ruleset'), el('dd', { class: 'mono' }, v.ruleset_version),
    );
    const badge = ex.review.needs_review
      ? el('span', { class: 'badge review', id: 'review' }, 'needs review')
      : el('span', { class: 'badge auto', id: 'review' }, 'auto-route');
    $('verdict').replaceChildren(...[
      el('h2', {}, 'Verdict'),
      el('div', { class: 'queue-name', id: 'queue' }, swatch(v.queue), v.queue, badge),
      el('p', { class: 'reason', id: 'reason' }, ex.review.reason),
      facts,
      v.notes && v.notes.length ? el('ul', { class: 'notes' }, v.notes.map((n) => el('li', {}, n))) : null,
    ].filter(Boolean));
  }

  function renderBars(ex) {
    const top = Math.max(1e-9, ...ex.queues.map((q) => Math.abs(q.score)));
    const rows = ex.queues
      .slice()
      .sort((a, b) => b.chosen - a.chosen || b.score - a.score)
      .map((q) => {
        const fill = el('div', { class: 'bar-fill ' + queueClass(q.queue) });
        fill.style.width = (Math.max(0, q.score) / top * 100).toFixed(1) + '%';
        return el('div', { class: 'bar-row' + (q.chosen ? ' chosen' : ''), 'data-queue': q.queue, title: q.queue + ': threshold ' + fixed(q.threshold, 2) },
          swatch(q.queue),
          el('span', { class: 'bar-name' }, q.queue),
          el('div', { class: 'bar-track' }, fill),
          el('span', { class: 'bar-num' + (q.score < 0 ? ' negative' : '') }, fixed(q.score, 2)),
          el('span', { class: 'bar-num muted' }, q.confidence === null ? '' : percent(q.confidence)));
      });
    $('bars').replaceChildren(...rows);
  }

  const ZONES = [
    ['subject', 'subject'],
    ['from', 'from'],
    ['to', 'to'],
    ['cc', 'cc'],
    ['body', 'new text'],
    ['signature', 'signature'],
    ['quoted', 'quoted history'],
    ['attachment_names', 'attachment names'],
    ['headers', 'headers'],
  ];

  function renderMessage(ex) {
    const zones = [];
    for (const [field, label] of ZONES) {
      const text = ex.fields.find((f) => f.field === field);
      if (!text) continue;
      const evidence = ex.evidence.map((e, i) => Object.assign({ index: i }, e)).filter((e) => e.field === field && e.start !== null);
      const spans = ex.spans.filter((s) => s.field === field);
      const weight = field === 'subject' && ex.reply_subject ? '· a reply: thread context ×0.5' : '×' + text.weight;
      const pre = el('div', { class: 'text', 'data-field': field }, highlight(text.text, evidence, spans));
      if (field === 'headers') {
        zones.push(el('details', { class: 'zone zone-headers', open: evidence.length > 0 }, el('summary', {}, 'headers ' + weight), pre));
      } else {
        zones.push(el('div', { class: 'zone zone-' + field }, el('div', { class: 'zone-label' }, label + ' ' + weight), pre));
      }
    }
    if (!zones.length) zones.push(el('p', { class: 'muted' }, 'The message has no text.'));
    $('message').replaceChildren(...zones);
    const queues = [...new Set(ex.evidence.filter((e) => e.start !== null).map((e) => e.queue))];
    $('legend').replaceChildren(
      ...queues.map((q) => el('span', {}, el('span', { class: 'sample ' + queueClass(q) }, q))),
      el('span', {}, el('span', { class: 'req first' }, 'request sentence')),
      el('span', {}, el('span', { class: 'neg first' }, 'negated or settled')),
      el('span', {}, el('span', { class: 'pre first' }, 'preamble or aside (counts half)')),
      el('span', {}, el('span', { class: 'sample zone-quoted' }, 'quoted history'), el('span', { class: 'sample zone-signature' }, 'signature')),
    );
  }

  /**
   * The text with its evidence and spans marked. Positions are UTF-8 byte offsets, so the
   * text is cut as bytes at every boundary and each piece decoded.
   */
  /** The class and the label of each kind of span the engine reports. */
  const SPAN_CLASS = { request: 'req', negated: 'neg', preamble: 'pre', aside: 'pre' };
  const SPAN_LABEL = { request: 'request', negated: 'negated or settled', preamble: 'preamble before the real request', aside: 'aside (a side point)' };

  function highlight(text, evidence, spans) {
    const bytes = encoder.encode(text);
    const cuts = new Set([0, bytes.length]);
    for (const item of evidence.concat(spans)) {
      cuts.add(Math.min(item.start, bytes.length));
      cuts.add(Math.min(item.end, bytes.length));
    }
    const points = [...cuts].sort((a, b) => a - b);
    const out = [];
    for (let i = 0; i + 1 < points.length; i++) {
      const [a, b] = [points[i], points[i + 1]];
      if (a === b) continue;
      const piece = decoder.decode(bytes.subarray(a, b));
      const covering = (item) => item.start <= a && b <= item.end;
      const hits = evidence.filter(covering).sort((x, y) => Math.abs(y.weight) - Math.abs(x.weight));
      const classes = [];
      for (const kind of ['request', 'negated', 'preamble', 'aside']) {
        const span = spans.find((s) => s.kind === kind && covering(s));
        if (span) classes.push(SPAN_CLASS[kind] + (span.start === a ? ' first' : ''));
      }
      if (hits.length) {
        const main = hits[0];
        const title = hits.map((h) => h.rule + ' → ' + h.queue + ' ' + signed(h.weight) + ' (' + where(h.location) + ')').join('\n');
        out.push(el('mark', {
          class: ['hit', queueClass(main.queue), main.weight < 0 ? 'counter' : ''].concat(classes).join(' ').trim(),
          'data-rule': main.rule,
          'data-queue': main.queue,
          'data-location': where(main.location),
          'data-evidence': hits.map((h) => h.index).join(' '),
          title,
        }, piece));
      } else if (classes.length) {
        out.push(el('span', { class: classes.join(' ') }, piece));
      } else {
        out.push(piece);
      }
    }
    return out;
  }

  function renderEvidence(ex) {
    if (!ex.evidence.length) {
      const fallback = ex.verdict.queue;
      $('evidence').replaceChildren(el('p', { class: 'muted' }, 'No rule matched: the fallback queue ' + fallback + ' was chosen.'));
      return;
    }
    const rows = ex.evidence.map((e, i) => el('tr', { id: 'evidence-' + i, 'data-rule': e.rule },
      el('td', { class: 'num' + (e.weight < 0 ? ' negative' : '') }, signed(e.weight)),
      el('td', {},
        el('div', { class: 'mono' }, e.rule),
        locLink((e.field === 'signal' ? '#signal=' : '#rule=') + encodeURIComponent(e.rule), e.location)),
      el('td', { class: 'nowrap' }, swatch(e.queue), ' ', e.queue),
      el('td', {}, e.field === 'headers' && e.header ? 'header:' + e.header : e.field),
      el('td', { class: 'words' }, e.field === 'signal' ? el('span', { class: 'muted' }, 'moved by a signal') : '«' + e.matched + '»',
        e.echo ? [' ', el('span', { class: 'muted echo' }, 'echoes the thread')] : null),
      el('td', { class: 'words' }, e.term ? el('span', { class: 'chip' }, e.term) : ''),
    ));
    $('evidence').replaceChildren(el('table', {},
      el('thead', {}, el('tr', {}, ['weight', 'rule, written at', 'queue', 'field', 'matched', 'term'].map((h) => el('th', {}, h)))),
      el('tbody', {}, rows)));
  }

  function renderStructure(ex) {
    const text = (field, s) => {
      const f = ex.fields.find((t) => t.field === field);
      return f ? decoder.decode(encoder.encode(f.text).subarray(s.start, s.end)).trim() : '';
    };
    const items = [];
    if (ex.reply_subject) items.push(el('li', {}, 'The subject is a reply or forward: thread context, counted 0.5 instead of 1.5.'));
    const echoes = ex.evidence.filter((e) => e.echo);
    if (echoes.length) {
      items.push(el('li', {}, 'The new text echoes the thread: ',
        echoes.map((e, i) => [i ? ', ' : '', el('a', { href: '#rule=' + encodeURIComponent(e.rule) }, e.rule)]),
        ' (the reply subject supports ' + (echoes.length > 1 ? 'their queues' : 'its queue') + ' and the words stand outside the request: counted 0.5 of the weight).'));
    }
    for (const s of ex.spans) {
      const label = SPAN_LABEL[s.kind] + ' (' + s.field + ')';
      items.push(el('li', {}, el('span', { class: SPAN_CLASS[s.kind] }, label), ': «' + text(s.field, s) + '»'));
    }
    items.push(el('li', {}, 'signals: ', ex.signals.length
      ? ex.signals.map((s, i) => [i ? ', ' : '', el('a', { href: '#signal=' + encodeURIComponent(s.id) }, s.id)])
      : 'none'));
    const f = ex.features;
    items.push(el('li', { class: 'muted' }, 'confidence inputs: softmax ' + fixed(f.softmax, 3) + ', margin ' + fixed(f.margin, 2) +
      ', other strong queues ' + f.strong_queues + ', evidence from the thread ' + Math.round(f.weak_share * 100) + '%' +
      (f.addressed > 0 ? ', addressed to us' : ', not addressed to us') +
      ', ' + Math.round(f.unexplained * 100) + '% of the new text without evidence'));
    $('structure').replaceChildren(el('ul', { class: 'structure-list' }, items));
  }

  // Clicking a mark selects its evidence; clicking a row selects its marks.
  function select(indices) {
    document.querySelectorAll('.selected').forEach((n) => n.classList.remove('selected'));
    for (const i of indices) {
      const row = $('evidence-' + i);
      if (row) row.classList.add('selected');
      document.querySelectorAll('mark.hit').forEach((m) => {
        if (m.dataset.evidence.split(' ').includes(String(i))) m.classList.add('selected');
      });
    }
  }

  // ------------------------------------------------------------------ the ruleset

  let ruleset = null;

  async function loadRuleset(force) {
    if (ruleset && !force) return ruleset;
    try {
      ruleset = await api('/v1/ruleset');
    } catch (e) {
      $('ruleset').replaceChildren(el('p', { class: 'card error' }, 'The ruleset could not be read: ' + e.message));
      throw e;
    }
    if (!queueOrder.length) queueOrder = ruleset.queues.map((q) => q.id);
    $('top-version').textContent = 'ruleset ' + ruleset.version;
    renderRuleset(ruleset);
    return ruleset;
  }

  function conditionsOf(conditions) {
    return conditions.map((c) => el('div', { class: 'cond' },
      el('span', { class: 'cond-key' }, c.key === 'at_least' ? 'at_least ' + c.at_least + ' of' : c.key),
      c.terms.map((t) => el('span', { class: 'chip' }, t)),
      c.ids.map((id) => el('a', { class: 'chip', href: '#rule=' + encodeURIComponent(id) }, id))));
  }

  function tryLink(example) {
    const params = new URLSearchParams();
    params.set('subject', example.subject);
    params.set('body', example.body);
    if (example.from) params.set('from', example.from);
    if (example.language) params.set('language', example.language);
    return '#' + params.toString();
  }

  function renderRuleset(rs) {
    const reload = rs.last_reload;
    let reloadView;
    if (!reload) {
      reloadView = el('p', { id: 'reload' }, rs.watched ? 'No reload since the service started.' : 'Built-in ruleset: not watched.');
    } else if (reload.outcome === 'refused') {
      reloadView = el('div', { id: 'reload' },
        el('p', {}, el('strong', {}, 'The last reload was refused'), ' at ' + reload.at + '; the ruleset below keeps serving. Problems:'),
        el('ul', { class: 'problems' }, reload.problems.map((p) => el('li', {}, p.text))));
    } else {
      reloadView = el('p', { id: 'reload' }, 'Last reload at ' + reload.at + ': ' +
        (reload.outcome === 'reloaded' ? 'swapped in ' + reload.version : 'the files were unchanged') + '.');
    }
    const head = el('section', { class: 'card' },
      el('h2', {}, 'Ruleset'),
      el('dl', { class: 'facts' },
        el('dt', {}, 'name'), el('dd', {}, rs.name),
        el('dt', {}, 'version'), el('dd', { class: 'mono', id: 'ruleset-version' }, rs.version),
        el('dt', {}, 'source'), el('dd', { class: 'mono' }, rs.source),
        el('dt', {}, 'loaded'), el('dd', {}, rs.loaded_at),
        el('dt', {}, 'fallback'), el('dd', {}, rs.fallback),
        el('dt', {}, 'contents'), el('dd', {}, rs.queues.length + ' queues, ' + rs.rules.length + ' rules, ' + rs.signals.length + ' signals, ' + rs.cues.length + ' cues, ' + rs.examples.length + ' examples'),
      ),
      reloadView,
      el('div', { class: 'row' },
        el('input', { id: 'filter', class: 'filter', placeholder: 'filter rules and examples by id, term or text' }),
        el('button', { type: 'button', id: 'refresh', class: 'link' }, 'refresh')));

    const queues = el('section', { class: 'card' }, el('h2', {}, 'Queues'), el('table', {},
      el('thead', {}, el('tr', {}, ['', 'queue', 'destination', 'threshold', 'rules', 'owns'].map((h) => el('th', {}, h)))),
      el('tbody', {}, rs.queues.map((q) => el('tr', { id: 'queue-' + q.id },
        el('td', {}, swatch(q.id)), el('td', { class: 'mono' }, q.id), el('td', {}, q.destination || '—'),
        el('td', { class: 'num' }, fixed(q.threshold, 2)), el('td', { class: 'num' }, q.rules), el('td', {}, q.description))))));

    const rules = el('section', { class: 'card' }, el('h2', {}, 'Rules'), rs.queues.map((q) => {
      const own = rs.rules.filter((r) => r.queue === q.id);
      return el('details', { class: 'group' },
        el('summary', {}, swatch(q.id), q.id, el('span', { class: 'muted' }, own.length + ' rules')),
        own.map((r) => el('div', { class: 'rule', id: 'rule-' + r.id, 'data-search': (r.id + ' ' + r.conditions.map((c) => c.terms.join(' ')).join(' ')).toLowerCase() },
          el('div', { class: 'rule-head' },
            el('span', { class: 'rule-id' }, r.id),
            el('span', { class: 'num' + (r.weight < 0 ? ' negative' : '') }, 'weight ' + signed(r.weight)),
            el('span', { class: 'muted' }, 'fields: ' + r.fields.join(', ')),
            r.languages.length ? el('span', { class: 'muted' }, 'languages: ' + r.languages.join(', ')) : null,
            r.negated === 'counter' ? el('span', { class: 'muted' }, 'negated: counter-evidence') : null,
            el('span', { class: 'loc', title: where(r.location) }, shortWhere(r.location))),
          conditionsOf(r.conditions))));
    }));

    const signals = el('section', { class: 'card' }, el('h2', {}, 'Signals'), rs.signals.map((s) => el('div', { class: 'rule', id: 'signal-' + s.id, 'data-search': s.id.toLowerCase() },
      el('div', { class: 'rule-head' }, el('span', { class: 'rule-id' }, s.id), el('span', { class: 'loc', title: where(s.location) }, shortWhere(s.location)),
        s.moves.length ? el('span', { class: 'muted' }, 'moves ' + (s.collect === 'largest' ? '(the largest of) ' : '') + s.moves.map((m) => fixed(m.share * 100, 0) + '% ' + m.from + ' → ' + (m.to || 'nowhere')).join('; ')) : null),
      conditionsOf(s.conditions))));

    const cues = el('section', { class: 'card' }, el('h2', {}, 'Structure cues'), rs.cues.map((c) => el('div', { class: 'rule', id: 'cue-' + c.id },
      el('div', { class: 'rule-head' }, el('span', { class: 'rule-id' }, c.id), el('span', { class: 'muted' }, c.kind + (c.kind === 'request' ? '' : ', scope ' + c.scope + (c.window ? ' (' + c.window + (c.window === 1 ? ' word)' : ' words)') : ''))), el('span', { class: 'loc', title: where(c.location) }, shortWhere(c.location))),
      el('div', { class: 'cond' }, c.terms.map((t) => el('span', { class: 'chip' }, t))))));

    const examples = el('section', { class: 'card' }, el('h2', {}, 'Examples'), rs.queues.map((q) => {
      const own = rs.examples.filter((e) => e.queue === q.id || e.not === q.id);
      if (!own.length) return null;
      return el('details', { class: 'group' },
        el('summary', {}, swatch(q.id), q.id, el('span', { class: 'muted' }, own.length + ' examples')),
        own.map((e) => el('div', { class: 'example', 'data-search': (e.subject + ' ' + e.body).toLowerCase() },
          el('div', { class: 'rule-head' },
            el('span', {}, e.queue ? 'must route to ' + e.queue : 'must not route to ' + e.not),
            el('a', { href: tryLink(e) }, 'try it'),
            el('span', { class: 'loc', title: where(e.location) }, shortWhere(e.location))),
          e.subject ? el('div', { class: 'subject' }, e.subject) : null,
          el('div', { class: 'body' }, e.body))));
    }));

    $('ruleset').replaceChildren(...[head, queues, rules, signals, cues, examples].filter(Boolean));
    $('filter').addEventListener('input', (event) => filter(event.target.value));
    $('refresh').addEventListener('click', () => loadRuleset(true).catch(() => {}));
  }

  function filter(query) {
    const q = query.trim().toLowerCase();
    document.querySelectorAll('#ruleset [data-search]').forEach((n) => {
      n.hidden = q !== '' && !n.dataset.search.includes(q);
    });
    if (q) document.querySelectorAll('#ruleset details.group').forEach((d) => { d.open = true; });
  }

  // ------------------------------------------------------------------ navigation

  function show(view) {
    $('view-try').hidden = view !== 'try';
    $('view-ruleset').hidden = view !== 'ruleset';
    $('nav-try').classList.toggle('active', view === 'try');
    $('nav-ruleset').classList.toggle('active', view === 'ruleset');
  }

  async function route() {
    const params = new URLSearchParams(location.hash.slice(1));
    const target = params.get('rule') !== null ? 'rule-' + params.get('rule')
      : params.get('signal') !== null ? 'signal-' + params.get('signal') : null;
    if (params.has('ruleset') || target) {
      show('ruleset');
      await loadRuleset(false).catch(() => {});
      const node = target && $(target);
      if (node) {
        const group = node.closest('details');
        if (group) group.open = true;
        document.querySelectorAll('.rule.target').forEach((n) => n.classList.remove('target'));
        node.classList.add('target');
        node.scrollIntoView({ block: 'center' });
      }
      return;
    }
    show('try');
    if (params.has('raw')) {
      setMode('raw');
      upload = null;
      $('raw').value = params.get('raw');
      $('raw-language').value = params.get('language') || '';
      await explain();
    } else if (params.has('subject') || params.has('body')) {
      setMode('ticket');
      $('subject').value = params.get('subject') || '';
      $('body').value = params.get('body') || '';
      $('from').value = params.get('from') || '';
      $('language').value = params.get('language') || '';
      await explain();
    }
  }

  // ------------------------------------------------------------------ wiring

  $('form').addEventListener('submit', (event) => { event.preventDefault(); explain(); });
  $('form').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) { event.preventDefault(); explain(); }
  });
  document.querySelectorAll('input[name=mode]').forEach((r) => r.addEventListener('change', () => setMode(mode())));
  $('eml').addEventListener('change', async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    upload = { name: file.name, bytes: new Uint8Array(await file.arrayBuffer()) };
    $('eml-name').textContent = 'using ' + file.name + ' (' + upload.bytes.length + ' bytes)';
    $('eml-clear').hidden = false;
    setMode('raw');
  });
  $('eml-clear').addEventListener('click', () => {
    upload = null;
    $('eml').value = '';
    $('eml-name').textContent = '';
    $('eml-clear').hidden = true;
  });
  $('raw').addEventListener('input', () => { if (upload) $('eml-clear').click(); });
  $('sample').addEventListener('click', async () => {
    const rs = await loadRuleset(false).catch(() => null);
    if (!rs || !rs.examples.length) return;
    const e = rs.examples[Math.floor(Math.random() * rs.examples.length)];
    setMode('ticket');
    $('subject').value = e.subject;
    $('body').value = e.body;
    $('from').value = e.from || '';
    $('language').value = e.language || '';
  });
  $('message').addEventListener('click', (event) => {
    const mark = event.target.closest('mark.hit');
    if (!mark) return;
    const indices = mark.dataset.evidence.split(' ');
    select(indices);
    const row = $('evidence-' + indices[0]);
    if (row) row.scrollIntoView({ block: 'nearest' });
  });
  $('evidence').addEventListener('click', (event) => {
    const row = event.target.closest('tr[id^="evidence-"]');
    if (row && !event.target.closest('a')) select([row.id.slice('evidence-'.length)]);
  });
  window.addEventListener('hashchange', route);
  route();
})();
