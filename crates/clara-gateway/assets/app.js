// Clara's web page: the chat (with the owner's tool approvals), the memory
// browser, the sessions list, the person's reminders and the owner's Tools panel.
// Plain JavaScript, no build step; it talks to the same server that served it.
(() => {
  'use strict';

  // ---------- small helpers ----------
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

  /** Creates an element; string children become text (never HTML). */
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'html') node.innerHTML = value; // constant icon markup only
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const ICONS = {
    stop: '<svg viewBox="0 0 24 24"><rect x="6" y="6" width="12" height="12" rx="2"/></svg>',
    alert: '<svg viewBox="0 0 24 24"><path d="M12 8v5M12 16.5v.5M10.3 3.9 2.5 17.5A2 2 0 0 0 4.2 20.5h15.6a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z"/></svg>',
    tool: '<svg viewBox="0 0 24 24"><path d="M14.7 6.3a4 4 0 0 0-5.4 5.2l-6 6a1.8 1.8 0 0 0 2.6 2.6l6-6a4 4 0 0 0 5.2-5.4l-2.6 2.6-2.4-.4-.4-2.4z"/></svg>',
    check: '<svg viewBox="0 0 24 24"><path d="M5 12.5l4.5 4.5L19 7.5"/></svg>',
    x: '<svg viewBox="0 0 24 24"><path d="M6 6l12 12M18 6 6 18"/></svg>',
    edit: '<svg viewBox="0 0 24 24"><path d="M4 20h4L19 9a2.8 2.8 0 0 0-4-4L4 16z"/></svg>',
    trash: '<svg viewBox="0 0 24 24"><path d="M4 7h16M10 11v6M14 11v6M6 7l1 12a2 2 0 0 0 2 2h6a2 2 0 0 0 2-2l1-12M9 7V4h6v3"/></svg>',
    history: '<svg viewBox="0 0 24 24"><path d="M3 12a9 9 0 1 0 3-6.7L3 8M3 3v5h5M12 7v5l3 2"/></svg>',
    lock: '<svg viewBox="0 0 24 24"><rect x="5" y="11" width="14" height="10" rx="2"/><path d="M8 11V8a4 4 0 0 1 8 0v3"/></svg>',
    people: '<svg viewBox="0 0 24 24"><path d="M16 20v-1a4 4 0 0 0-4-4H7a4 4 0 0 0-4 4v1M9.5 11a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7zM21 20v-1a4 4 0 0 0-3-3.9M15.5 4.1a3.5 3.5 0 0 1 0 6.8"/></svg>',
    folder: '<svg viewBox="0 0 24 24"><path d="M3 7a2 2 0 0 1 2-2h4l2 2h8a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2z"/></svg>',
    brain: '<svg viewBox="0 0 24 24"><path d="M12 3a7 7 0 0 0-4 12.7V18a2 2 0 0 0 2 2h4a2 2 0 0 0 2-2v-2.3A7 7 0 0 0 12 3zM10 22h4"/></svg>',
    clock: '<svg viewBox="0 0 24 24"><path d="M12 7v5l3 2M21 12a9 9 0 1 1-9-9 9 9 0 0 1 9 9z"/></svg>',
    search: '<svg viewBox="0 0 24 24"><path d="M11 4a7 7 0 1 1 0 14 7 7 0 0 1 0-14zM20 20l-3.5-3.5"/></svg>',
    file: '<svg viewBox="0 0 24 24"><path d="M14 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8zM14 3v5h5"/></svg>',
    download: '<svg viewBox="0 0 24 24"><path d="M12 4v11M7 10l5 5 5-5M5 20h14"/></svg>',
  };

  /** A size in the units people read (as the server words it). */
  function sizeWords(bytes) {
    if (bytes < 1024) return `${bytes} bytes`;
    const [unit, div] = bytes < 1048576 ? ['KiB', 1024] : ['MiB', 1048576];
    const tenths = Math.floor((bytes * 10) / div);
    return `${tenths % 10 ? (tenths / 10).toFixed(1) : tenths / 10} ${unit}`;
  }

  /** The picture types the page shows inline (the server serves only these inline). */
  const PICTURES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];

  const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
  const dateFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric' });
  const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long' });

  function ago(ms) {
    const s = (Date.now() - ms) / 1000;
    if (s < 45) return 'just now';
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 86400) return `${Math.round(s / 3600)} h ago`;
    if (s < 7 * 86400) return `${Math.round(s / 86400)} d ago`;
    return dateFmt.format(ms);
  }

  function day(ms) {
    const d = new Date(ms);
    const today = new Date();
    const yesterday = new Date(Date.now() - 86400000);
    if (d.toDateString() === today.toDateString()) return 'Today';
    if (d.toDateString() === yesterday.toDateString()) return 'Yesterday';
    return dayFmt.format(d);
  }

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  let toastTimer = 0;
  function toast(message, kind) {
    const node = $('#toast');
    node.textContent = message;
    node.className = `toast ${kind || ''}`;
    node.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { node.hidden = true; }, 3200);
  }

  // ---------- talking to Clara ----------
  class ApiError extends Error {
    constructor(message, status, code) { super(message); this.status = status; this.code = code; }
  }

  const state = {
    me: null,
    csrf: null,
    events: null,
    rows: new Map(), // thought -> the assistant row's parts
    asks: new Map(), // open question id -> its card's parts
    sent: new Set(), // client ids of messages this tab sent
    outbox: new Map(), // client id -> { text, at }: sent, not yet seen in a history
    sending: 0, // messages on their way to the server
    dead: new Set(), // thoughts whose events are to be ignored (cleared)
    pending: false,
    streaming: null,
    view: null,
    memories: [],
    memFilter: 'all',
    typingAt: 0,
    attachments: [], // files attached to the message being written
  };

  async function api(path, options = {}) {
    const method = options.method || 'GET';
    const headers = {};
    if (options.body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET' && state.csrf) headers['X-CSRF-Token'] = state.csrf;
    let res;
    try {
      res = await fetch(path, {
        method,
        headers,
        credentials: 'same-origin',
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
      });
    } catch (_) {
      throw new ApiError('Clara cannot be reached. Is she still running?', 0);
    }
    if (res.status === 204) return null;
    const data = await res.json().catch(() => null);
    if (!res.ok) {
      const error = (data && data.error) || {};
      if (res.status === 401 && error.code === 'login_required') showLogin();
      throw new ApiError(error.message || `The request failed (${res.status}).`, res.status, error.code);
    }
    return data;
  }

  // ---------- text rendering (a safe subset of Markdown) ----------
  function esc(s) {
    return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  }

  // Links are found in the raw text and built here, their address escaped once;
  // emphasis is applied to escaped text between them. Nothing matches against
  // markup made here, so no pattern can reach into an attribute.
  const LINK = /\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)|(^|[\s(])(https?:\/\/[^\s<)]+[^\s<).,;:!?])/g;

  function emphasis(text) {
    return esc(text)
      .replace(/\*\*([^*\n]+)\*\*/g, '<strong>$1</strong>')
      .replace(/(^|[^*\w])\*([^*\s][^*\n]*?)\*(?![*\w])/g, '$1<em>$2</em>');
  }

  function anchor(url, inner) {
    return `<a href="${esc(url)}" target="_blank" rel="noopener noreferrer">${inner}</a>`;
  }

  function links(text) {
    let out = '';
    let last = 0;
    for (const m of text.matchAll(LINK)) {
      out += emphasis(text.slice(last, m.index));
      out += m[2] ? anchor(m[2], emphasis(m[1])) : esc(m[3]) + anchor(m[4], esc(m[4]));
      last = m.index + m[0].length;
    }
    return out + emphasis(text.slice(last));
  }

  function inline(text) {
    return text.split(/(`[^`\n]+`)/g).map((part) => {
      if (part.length > 1 && part.startsWith('`') && part.endsWith('`')) return `<code>${esc(part.slice(1, -1))}</code>`;
      return links(part);
    }).join('');
  }

  const BLOCK = /^(```|#{1,6}\s|\s*[-*+]\s+|\s*\d+[.)]\s+|>)/;

  function markdown(text) {
    const lines = text.replace(/\r\n?/g, '\n').split('\n');
    let html = '';
    let i = 0;
    const take = (test, strip) => {
      const items = [];
      while (i < lines.length && test.test(lines[i])) items.push(lines[i++].replace(strip, ''));
      return items;
    };
    while (i < lines.length) {
      const line = lines[i];
      if (/^```/.test(line)) {
        const code = [];
        i += 1;
        while (i < lines.length && !/^```\s*$/.test(lines[i])) code.push(lines[i++]);
        i += 1;
        html += `<pre><code>${esc(code.join('\n'))}</code></pre>`;
      } else if (/^\s*$/.test(line)) {
        i += 1;
      } else if (/^#{1,6}\s/.test(line)) {
        html += `<h4>${inline(line.replace(/^#{1,6}\s+/, ''))}</h4>`;
        i += 1;
      } else if (/^\s*[-*+]\s+/.test(line)) {
        html += `<ul>${take(/^\s*[-*+]\s+/, /^\s*[-*+]\s+/).map((t) => `<li>${inline(t)}</li>`).join('')}</ul>`;
      } else if (/^\s*\d+[.)]\s+/.test(line)) {
        html += `<ol>${take(/^\s*\d+[.)]\s+/, /^\s*\d+[.)]\s+/).map((t) => `<li>${inline(t)}</li>`).join('')}</ol>`;
      } else if (/^>/.test(line)) {
        html += `<blockquote>${take(/^>/, /^>\s?/).map(inline).join('<br>')}</blockquote>`;
      } else {
        const para = [];
        while (i < lines.length && !/^\s*$/.test(lines[i]) && !BLOCK.test(lines[i])) para.push(lines[i++]);
        html += `<p>${para.map(inline).join('<br>')}</p>`;
      }
    }
    return html;
  }

  // ---------- theme ----------
  function applyTheme(theme) {
    if (theme) document.documentElement.dataset.theme = theme;
    else delete document.documentElement.dataset.theme;
  }
  applyTheme(localStorage.getItem('clara-theme'));
  $('#theme-toggle').addEventListener('click', () => {
    const dark = document.documentElement.dataset.theme
      ? document.documentElement.dataset.theme === 'dark'
      : matchMedia('(prefers-color-scheme: dark)').matches;
    const next = dark ? 'light' : 'dark';
    localStorage.setItem('clara-theme', next);
    applyTheme(next);
  });

  // ---------- login ----------
  function showLogin(note) {
    if (state.events) { state.events.close(); state.events = null; }
    $('#boot').hidden = true;
    $('#app').hidden = true;
    $('#login').hidden = false;
    const notice = note || (state.me && !state.me.password_set
      ? 'No password is set yet. Set web.password (CLARA_WEB_PASSWORD) in Clara\u2019s configuration and restart her.'
      : 'This Clara can be reached from other machines, so she asks for the password.');
    $('#login-note').textContent = notice;
    setTimeout(() => $('#password').focus(), 30);
  }

  $('#login-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const error = $('#login-error');
    const button = $('#login-submit');
    error.hidden = true;
    button.disabled = true;
    button.textContent = 'Logging in…';
    try {
      await api('/auth/login', { method: 'POST', body: { password: $('#password').value } });
      const me = await api('/api/me');
      if (!me.logged_in) {
        throw new ApiError(location.protocol === 'http:'
          ? 'Your browser refused the secure login cookie over plain HTTP. Serve Clara over HTTPS, or set web.secure_cookie = false on a trusted network.'
          : 'The login did not stick; please try again.', 0);
      }
      $('#password').value = '';
      start(me);
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
    } finally {
      button.disabled = false;
      button.textContent = 'Log in';
    }
  });

  $('#logout').addEventListener('click', async () => {
    try { await api('/auth/logout', { method: 'POST' }); } catch (_) { /* logged out anyway */ }
    state.csrf = null;
    showLogin('You are logged out.');
  });

  // ---------- chat ----------
  const scroller = $('#scroller');
  const messages = $('#messages');
  const input = $('#input');

  function nearBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 120;
  }

  function toBottom(force) {
    if (force || nearBottom()) requestAnimationFrame(() => { scroller.scrollTop = scroller.scrollHeight; });
  }

  function claraAvatar() {
    return h('span', { class: 'avatar clara' }, h('img', { src: '/assets/clara.svg', alt: '' }));
  }

  /** The files a person sent, in their bubble: pictures this tab still has as thumbnails, the rest by name. */
  function sentFiles(files) {
    if (!files || !files.length) return null;
    return h('div', { class: 'sent-files' }, ...files.map((f) => (f.preview
      ? h('img', { class: 'sent-thumb', src: f.preview, alt: f.name, title: `${f.name} · ${sizeWords(f.size)}` })
      : h('span', { class: 'sent-file', title: f.media_type || '' }, h('span', { html: ICONS.file }), f.name, h('span', { class: 'file-size' }, sizeWords(f.size))))));
  }

  function userRow(text, atMs, files) {
    const row = h('div', { class: 'msg user', 'data-role': 'user' },
      h('div', { class: 'body' },
        sentFiles(files),
        text ? h('div', { class: 'bubble' }, text) : null,
        h('div', { class: 'time' }, timeFmt.format(atMs))));
    messages.append(row);
    updateWelcome();
    return row;
  }

  function toolLabel(name) {
    const [server, tool] = name.includes('__') ? name.split('__', 2) : ['', name];
    const words = tool.replace(/_/g, ' ');
    return server && server !== 'clara' ? `${server} · ${words}` : words;
  }

  function assistantRow(thought, atMs) {
    let parts = state.rows.get(thought);
    if (parts) return parts;
    removeTyping();
    const md = h('div', { class: 'md' });
    const tools = h('div', { class: 'tools', hidden: true });
    const files = h('div', { class: 'files', hidden: true });
    const bubble = h('div', { class: 'bubble' }, tools, md, files);
    const body = h('div', { class: 'body' },
      h('div', { class: 'meta' }, h('span', { class: 'who' }, 'Clara'), h('span', { class: 'when' }, timeFmt.format(atMs || Date.now()))),
      bubble);
    const row = h('div', { class: 'msg assistant', 'data-role': 'assistant', 'data-thought': thought }, claraAvatar(), body);
    messages.append(row);
    parts = { row, body, bubble, md, tools, files, fileIds: new Set(), text: '', chips: [], frame: 0 };
    state.rows.set(thought, parts);
    updateWelcome();
    return parts;
  }

  function paint(parts) {
    if (parts.frame) return;
    parts.frame = requestAnimationFrame(() => {
      parts.frame = 0;
      const stick = nearBottom();
      parts.md.innerHTML = markdown(parts.text);
      if (stick) scroller.scrollTop = scroller.scrollHeight;
    });
  }

  function addChip(parts, name, status, output) {
    parts.tools.hidden = false;
    const chip = h('span', { class: `chip ${status}`, 'data-tool': name }, h('span', { class: 'chip-head' }));
    parts.tools.append(chip);
    parts.chips.push(chip);
    if (output) setOutput(chip, output);
    setChip(chip, status, name);
    return chip;
  }

  function setChip(chip, status, name) {
    const head = $('.chip-head', chip);
    const live = chip.classList.contains('has-output');
    const wasClosed = chip.classList.contains('collapsed');
    chip.className = `chip ${status}${live ? ' has-output' : ''}`;
    if (live) {
      // A finished tool's output folds away; its head opens it again.
      const closed = status !== 'running' || wasClosed;
      chip.classList.toggle('collapsed', closed);
      head.setAttribute('aria-expanded', closed ? 'false' : 'true');
    }
    head.textContent = '';
    const icon = status === 'running' ? h('span', { class: 'spinner' })
      : h('span', { html: status === 'ok' ? ICONS.check : ICONS.x });
    head.append(icon, toolLabel(name));
    chip.title = status === 'running' ? `Using ${name}…` : `${name} ${status === 'ok' ? 'done' : 'failed'}`;
  }

  /**
   * Shows what a running tool printed lately, in a small monospace box inside
   * its chip, scrolled to the last lines. The text is the tool's (untrusted):
   * it only ever becomes a text node.
   */
  function setOutput(chip, text) {
    let box = $('.tool-output', chip);
    if (!box) {
      box = h('pre', { class: 'tool-output', 'aria-live': 'off' });
      chip.append(box);
      chip.classList.add('has-output');
      const head = $('.chip-head', chip);
      head.setAttribute('role', 'button');
      head.setAttribute('tabindex', '0');
      head.setAttribute('aria-expanded', 'true');
      const toggle = () => {
        const closed = chip.classList.toggle('collapsed');
        head.setAttribute('aria-expanded', closed ? 'false' : 'true');
        if (!closed) box.scrollTop = box.scrollHeight;
      };
      head.addEventListener('click', toggle);
      head.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' || event.key === ' ') { event.preventDefault(); toggle(); }
      });
    }
    const stick = nearBottom();
    box.textContent = text;
    box.scrollTop = box.scrollHeight;
    if (stick) scroller.scrollTop = scroller.scrollHeight;
  }

  /**
   * A file Clara sent, in her reply: a picture inline (a click opens it whole),
   * anything else as a download link with its size. Name and caption are the
   * tool's (untrusted) text.
   */
  function addFile(parts, f) {
    if (!f || parts.fileIds.has(f.id)) return;
    parts.fileIds.add(f.id);
    parts.files.hidden = false;
    const caption = f.caption ? h('figcaption', { class: 'file-caption' }, f.caption) : null;
    let node;
    if (f.image && PICTURES.includes(f.media_type)) {
      const img = h('img', { class: 'file-image', src: f.url, alt: f.caption || f.name, loading: 'lazy' });
      img.addEventListener('load', () => toBottom());
      img.addEventListener('error', () => {
        img.replaceWith(h('span', { class: 'file-gone' }, `${f.name} is no longer kept.`));
      });
      node = h('figure', { class: 'file picture', 'data-file': f.id },
        h('a', { href: f.url, target: '_blank', rel: 'noopener', title: f.name }, img), caption);
    } else {
      node = h('figure', { class: 'file document', 'data-file': f.id },
        h('a', { class: 'file-link', href: f.url, download: f.name, title: `Download ${f.name}` },
          h('span', { class: 'file-icon', html: ICONS.file }),
          h('span', { class: 'file-name' }, f.name),
          h('span', { class: 'file-size' }, sizeWords(f.size)),
          h('span', { class: 'file-get', html: ICONS.download })),
        caption);
    }
    parts.files.append(node);
  }

  /** Who let a stored tool run through, in a few words. */
  function approvedBy(permission) {
    switch (permission && permission.by) {
      case 'owner': return permission.always ? `approved always by ${permission.owner}` : `approved by ${permission.owner}`;
      case 'refused': return 'refused';
      default: return 'allowed by policy';
    }
  }

  /**
   * The chip of a tool run from the history: name, ok/failed, who approved;
   * clicking it shows the arguments and the result. Both are untrusted text (a
   * web page, an e-mail, another program), so they only ever become text nodes.
   */
  function storedChip(tools, run) {
    const status = run.ok ? 'ok' : 'failed';
    const refused = run.permission && run.permission.by === 'refused';
    const who = approvedBy(run.permission);
    const chip = h('button', {
      type: 'button',
      class: `chip stored ${status}${refused ? ' refused' : ''}`,
      'data-tool': run.name,
      'aria-expanded': 'false',
      title: `${run.name}: ${refused ? 'refused' : run.ok ? 'done' : 'failed'}, ${who}`,
    }, h('span', { html: run.ok ? ICONS.check : ICONS.x }), toolLabel(run.name), h('span', { class: 'chip-who' }, who));
    let detail = null;
    chip.addEventListener('click', (event) => {
      event.stopPropagation();
      if (detail) {
        detail.remove();
        detail = null;
        chip.setAttribute('aria-expanded', 'false');
        return;
      }
      const reason = refused && run.permission.reason ? h('div', { class: 'tool-reason' }, run.permission.reason) : null;
      detail = h('div', { class: 'tool-detail', 'data-tool': run.name },
        h('div', { class: 'tool-head' }, run.name, ' · ', who,
          run.started_at_ms ? ` · ${timeFmt.format(run.started_at_ms)}` : '',
          run.duration_ms ? ` · ${run.duration_ms} ms` : ''),
        reason,
        h('div', { class: 'tool-label' }, 'Arguments'),
        h('pre', { class: 'tool-arguments' }, run.arguments),
        h('div', { class: 'tool-label' }, 'Result'),
        h('pre', { class: 'tool-result' }, run.result));
      tools.after(detail);
      chip.setAttribute('aria-expanded', 'true');
    });
    return chip;
  }

  /** Shows a stored message's tool runs as chips above Clara's text. */
  function addStoredChips(parts, runs) {
    if (!runs || !runs.length) return;
    parts.tools.hidden = false;
    for (const run of runs) {
      const chip = storedChip(parts.tools, run);
      parts.tools.append(chip);
      parts.chips.push(chip);
    }
  }

  function note(body, icon, text) {
    body.append(h('div', { class: 'note' }, h('span', { html: icon }), text));
  }

  function finish(parts, how, message) {
    parts.row.classList.remove('streaming');
    if (parts.frame) { cancelAnimationFrame(parts.frame); parts.frame = 0; }
    parts.md.innerHTML = markdown(parts.text);
    if (how === 'cancelled') {
      if (!parts.text.trim() && !parts.chips.length && !parts.fileIds.size) {
        parts.row.remove();
        state.rows.delete(parts.row.dataset.thought);
      } else {
        note(parts.body, ICONS.stop, 'Stopped');
      }
    } else if (how === 'failed') {
      parts.row.classList.add('failed');
      if (parts.text.trim()) note(parts.body, ICONS.alert, message || 'The reply failed.');
      else parts.md.textContent = message || 'The reply failed.';
    }
    updateWelcome();
  }

  function showLive(live) {
    const parts = assistantRow(live.thought);
    parts.text = live.text;
    for (const tool of live.tools || []) addChip(parts, tool.name, tool.state, tool.output);
    if (live.state === 'streaming') {
      parts.row.classList.add('streaming');
      state.streaming = live.thought;
      paint(parts);
    } else {
      finish(parts, live.state, live.error);
    }
  }

  // ---------- tool approvals ----------
  // Clara asks before a tool acts; the owner answers on a card in the chat.
  // Every field of the question is untrusted (the tool's name and arguments
  // come from the model, perhaps steered by a web page), so it only ever
  // becomes text nodes.
  const VERDICTS = [
    ['once', 'Approve once', 'btn primary small'],
    ['always', 'Always (these arguments)', 'btn ghost small'],
    ['deny', 'Deny', 'btn danger small'],
  ];

  function showAsk(prompt) {
    if (!prompt || state.asks.has(prompt.id)) return;
    removeTyping();
    const buttons = VERDICTS.map(([verdict, label, cls]) => h('button', {
      type: 'button', class: cls, 'data-verdict': verdict, onclick: () => answerAsk(prompt.id, verdict),
    }, label));
    const actions = h('div', { class: 'ask-actions' }, ...buttons);
    const outcome = h('div', { class: 'ask-outcome', role: 'status', hidden: true });
    const card = h('div', { class: 'bubble ask-card' },
      h('div', { class: 'ask-title' },
        h('span', { class: 'ask-icon', html: ICONS.lock }),
        h('span', {}, 'Clara wants to run ', h('code', { class: 'ask-tool' }, prompt.tool), ' for ', h('span', { class: 'ask-who' }, prompt.asked_for))),
      h('div', { class: 'ask-reason' }, prompt.reason),
      h('div', { class: 'tool-label' }, 'Arguments'),
      h('pre', { class: 'tool-arguments ask-arguments' }, prompt.arguments),
      actions,
      h('div', { class: 'ask-foot' }, `No answer within ${prompt.timeout_secs} s counts as a deny.`),
      outcome);
    const row = h('div', { class: 'msg assistant ask', 'data-ask': prompt.id },
      claraAvatar(),
      h('div', { class: 'body' },
        h('div', { class: 'meta' }, h('span', { class: 'who' }, 'Clara'), h('span', { class: 'when' }, 'asks for your approval')),
        card));
    messages.append(row);
    state.asks.set(prompt.id, { row, card, actions, outcome, buttons });
    updateWelcome();
    toBottom(true);
  }

  function closeAsk(id, result, text) {
    const parts = state.asks.get(id);
    if (!parts) return;
    state.asks.delete(id);
    parts.actions.remove();
    parts.row.classList.add('closed', result === 'approved' ? 'approved' : 'denied');
    parts.outcome.textContent = text;
    parts.outcome.hidden = false;
  }

  async function answerAsk(id, verdict) {
    const parts = state.asks.get(id);
    if (!parts) return;
    for (const button of parts.buttons) button.disabled = true;
    try {
      await api('/api/chat/approvals', { method: 'POST', body: { id, verdict } });
      // The card closes when Clara says how it ended (`ask_closed`).
    } catch (e) {
      if (e.code === 'question_closed') {
        closeAsk(id, 'denied', e.message);
      } else {
        for (const button of parts.buttons) button.disabled = false;
        toast(e.message, 'error');
      }
    }
  }

  function typingRow() {
    return $('#typing-row');
  }

  function removeTyping() {
    const row = typingRow();
    if (row) row.remove();
  }

  function updateBusy() {
    const busy = state.pending || Boolean(state.streaming);
    if (state.pending && !state.streaming && !typingRow()) {
      messages.append(h('div', { class: 'msg assistant typing', id: 'typing-row' },
        claraAvatar(),
        h('div', { class: 'body' }, h('div', { class: 'bubble' },
          h('span', { class: 'dots' }, h('i'), h('i'), h('i')), h('span', {}, 'Clara is thinking…')))));
      toBottom(true);
    } else if (!(state.pending && !state.streaming)) {
      removeTyping();
    }
    updateComposer();
    const status = $('#chat-status');
    if (status.classList.contains('offline')) return;
    status.className = `status ${busy ? 'busy' : 'online'}`;
    $('#chat-status-text').textContent = state.streaming ? 'Clara is typing…' : busy ? 'Clara is thinking…' : 'Online';
  }

  function setOffline(offline) {
    const status = $('#chat-status');
    if (offline) {
      status.className = 'status offline';
      $('#chat-status-text').textContent = 'Reconnecting…';
    } else {
      status.className = 'status online';
      updateBusy();
    }
  }

  function updateComposer() {
    const busy = state.pending || Boolean(state.streaming);
    const hasText = input.value.trim().length > 0 || state.attachments.length > 0;
    $('#send').disabled = !hasText;
    $('#send').hidden = busy && !hasText;
    $('#stop').hidden = !(busy && !hasText);
  }

  function updateWelcome() {
    const empty = !messages.querySelector('.msg');
    $('#welcome').hidden = !empty;
  }

  function clearChat() {
    messages.textContent = '';
    state.rows.clear();
    state.asks.clear();
    state.streaming = null;
    updateWelcome();
  }

  function handle(ev) {
    switch (ev.type) {
      case 'hello': {
        clearChat();
        for (const m of ev.messages) {
          if (m.client_id) state.outbox.delete(m.client_id);
        }
        for (const m of ev.messages) {
          if (m.role === 'user') {
            userRow(m.text, m.at_ms);
          } else if (m.role === 'assistant') {
            const parts = assistantRow(m.thought, m.at_ms);
            parts.text += (parts.text ? '\n\n' : '') + m.text;
            parts.md.innerHTML = markdown(parts.text);
            addStoredChips(parts, m.tools);
          }
        }
        // What this tab sent that the history does not hold yet stays on screen.
        for (const sent of state.outbox.values()) userRow(sent.text, sent.at, sent.files);
        if (ev.live && !state.rows.has(ev.live.thought) && !state.dead.has(ev.live.thought)) showLive(ev.live);
        // The files Clara sent that are still kept, in the replies they belong to.
        for (const f of ev.files || []) {
          const parts = state.rows.get(f.thought);
          if (parts) addFile(parts, f);
        }
        for (const prompt of ev.asks || []) showAsk(prompt);
        state.pending = Boolean(ev.pending) || state.sending > 0;
        updateBusy();
        toBottom(true);
        break;
      }
      case 'user_message':
        if (!ev.client_id || !state.sent.has(ev.client_id)) { userRow(ev.text, ev.at_ms, ev.files); toBottom(true); }
        break;
      case 'pending':
        state.pending = true;
        updateBusy();
        break;
      case 'delta': {
        if (state.dead.has(ev.thought)) break;
        const parts = assistantRow(ev.thought);
        parts.row.classList.add('streaming');
        parts.text += ev.text;
        state.streaming = ev.thought;
        state.pending = false;
        paint(parts);
        updateBusy();
        break;
      }
      case 'tool_started': {
        if (state.dead.has(ev.thought)) break;
        const parts = assistantRow(ev.thought);
        parts.row.classList.add('streaming');
        state.streaming = ev.thought;
        state.pending = false;
        addChip(parts, ev.name, 'running');
        updateBusy();
        toBottom();
        break;
      }
      case 'tool_progress': {
        if (state.dead.has(ev.thought)) break;
        const parts = assistantRow(ev.thought);
        const chip = parts.chips.filter((c) => c.dataset.tool === ev.name && c.classList.contains('running')).at(-1)
          || addChip(parts, ev.name, 'running');
        setOutput(chip, ev.text);
        break;
      }
      case 'file': {
        if (state.dead.has(ev.thought)) break;
        const parts = assistantRow(ev.thought);
        state.pending = false;
        addFile(parts, ev);
        updateBusy();
        toBottom();
        break;
      }
      case 'tool_finished': {
        const parts = state.rows.get(ev.thought);
        const chip = parts && parts.chips.find((c) => c.dataset.tool === ev.name && c.classList.contains('running'));
        if (chip) setChip(chip, ev.ok ? 'ok' : 'failed', ev.name);
        break;
      }
      case 'end':
      case 'cancelled':
      case 'error': {
        const parts = state.rows.get(ev.thought);
        if (parts) finish(parts, ev.type === 'end' ? 'done' : ev.type === 'error' ? 'failed' : 'cancelled', ev.message);
        else if (ev.type === 'error' && !state.dead.has(ev.thought)) finish(assistantRow(ev.thought), 'failed', ev.message);
        if (state.streaming === ev.thought) state.streaming = null;
        if (ev.type !== 'cancelled') state.pending = false;
        updateBusy();
        toBottom();
        break;
      }
      case 'stopped':
        state.pending = false;
        updateBusy();
        break;
      case 'cleared':
        state.outbox.clear();
        if (state.streaming) state.dead.add(state.streaming);
        for (const thought of state.rows.keys()) state.dead.add(thought);
        clearChat();
        state.pending = false;
        updateBusy();
        break;
      case 'resync':
        connect();
        break;
      case 'ask':
        showAsk(ev.prompt);
        break;
      case 'ask_closed':
        closeAsk(ev.id, ev.result, ev.outcome);
        break;
      default:
        break;
    }
  }

  let reconnectTimer = 0;
  function connect() {
    clearTimeout(reconnectTimer);
    if (state.events) state.events.close();
    const events = new EventSource('/api/chat/events');
    state.events = events;
    events.onopen = () => setOffline(false);
    events.onmessage = (e) => {
      let ev;
      try { ev = JSON.parse(e.data); } catch (_) { return; }
      handle(ev);
    };
    events.onerror = () => {
      setOffline(true);
      if (events.readyState === EventSource.CLOSED && state.events === events) {
        // Refused (a login that ran out?) rather than dropped: ask who we are.
        reconnectTimer = setTimeout(async () => {
          try {
            const me = await api('/api/me');
            if (!me.logged_in) { showLogin(); return; }
            state.csrf = me.csrf;
          } catch (_) { /* still down; try again */ }
          connect();
        }, 2500);
      }
    };
  }

  async function send(text, attached = []) {
    const clientId = newId();
    const at = Date.now();
    const shown = attached.map((a) => ({ name: a.name, media_type: a.type, size: a.size, preview: a.preview }));
    state.sent.add(clientId);
    state.outbox.set(clientId, { text, at, files: shown });
    const row = userRow(text, at, shown);
    toBottom(true);
    state.pending = true;
    state.sending += 1;
    updateBusy();
    try {
      const tier = $('#tier').value;
      const files = await Promise.all(attached.map(async (a) => ({ name: a.name, media_type: a.type, data: await a.data })));
      const result = await api('/api/chat/messages', { method: 'POST', body: { text, tier, client_id: clientId, files } });
      if (result && result.status === 'stopped') {
        state.outbox.delete(clientId);
        state.pending = false;
      }
    } catch (e) {
      state.outbox.delete(clientId);
      // The row may have been redrawn by a reconnect; mark the one on screen.
      const onScreen = row.isConnected ? row : [...messages.querySelectorAll('.msg.user')].reverse().find((r) => r.textContent.includes(text));
      if (onScreen) {
        onScreen.classList.add('failed');
        note($('.body', onScreen), ICONS.alert, `Not sent: ${e.message}`);
      }
      // The files go back to the composer, to try again without them or with fewer.
      if (attached.length && !state.attachments.length) {
        state.attachments = attached;
        renderAttachments();
      }
      state.pending = false;
    } finally {
      state.sending -= 1;
      updateBusy();
    }
  }

  function autosize() {
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
  }

  $('#composer').addEventListener('submit', (event) => {
    event.preventDefault();
    const text = input.value.trim();
    const attached = state.attachments;
    if (!text && !attached.length) return;
    input.value = '';
    state.attachments = [];
    renderAttachments();
    autosize();
    updateComposer();
    send(text, attached);
  });

  // ---------- attachments: the attach button, drag and drop, paste ----------
  const attachInput = $('#attach-input');
  const limits = () => ({
    file: (state.me && state.me.max_file_bytes) || 20 * 1048576,
    message: (state.me && state.me.max_message_file_bytes) || 40 * 1048576,
    count: (state.me && state.me.max_files) || 10,
  });

  function attachError(message) {
    const node = $('#attach-error');
    node.textContent = message || '';
    node.hidden = !message;
  }

  /** Reads a file as base64 (what the server takes), and as a data URL to preview a picture. */
  function readFile(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result));
      reader.onerror = () => reject(new ApiError(`${file.name} could not be read.`, 0));
      reader.readAsDataURL(file);
    });
  }

  function addFiles(list) {
    const { file: perFile, message: perMessage, count } = limits();
    let problem = '';
    for (const file of Array.from(list || [])) {
      const name = file.name || 'pasted file';
      const total = state.attachments.reduce((sum, a) => sum + a.size, 0) + file.size;
      if (state.attachments.length >= count) {
        problem = `A message may carry at most ${count} files.`;
      } else if (file.size > perFile) {
        const [size, limit] = [sizeWords(file.size), sizeWords(perFile)];
        problem = size === limit
          ? `\u201c${name}\u201d is larger than ${limit}, the most a file may be.`
          : `\u201c${name}\u201d is ${size}, and a file may be at most ${limit}.`;
      } else if (total > perMessage) {
        problem = `The files of one message may add up to at most ${sizeWords(perMessage)}.`;
      } else {
        const type = file.type || '';
        const entry = { id: newId(), name, type, size: file.size, preview: null };
        const read = readFile(file);
        entry.data = read.then((url) => url.slice(url.indexOf(',') + 1));
        entry.data.catch(() => {});
        if (PICTURES.includes(type)) {
          read.then((url) => { entry.preview = url; renderAttachments(); }).catch(() => {});
        }
        state.attachments.push(entry);
      }
    }
    attachError(problem);
    renderAttachments();
    updateComposer();
    input.focus();
  }

  function renderAttachments() {
    const tray = $('#attachments');
    tray.hidden = !state.attachments.length;
    tray.replaceChildren(...state.attachments.map((a) => h('div', { class: 'attachment', 'data-name': a.name, title: `${a.name} · ${sizeWords(a.size)}` },
      a.preview ? h('img', { class: 'attachment-thumb', src: a.preview, alt: '' }) : h('span', { class: 'attachment-icon', html: ICONS.file }),
      h('span', { class: 'attachment-text' },
        h('span', { class: 'attachment-name' }, a.name),
        h('span', { class: 'file-size' }, sizeWords(a.size))),
      h('button', {
        type: 'button',
        class: 'attachment-remove',
        'aria-label': `Remove ${a.name}`,
        html: ICONS.x,
        onclick: () => {
          state.attachments = state.attachments.filter((x) => x !== a);
          attachError('');
          renderAttachments();
          updateComposer();
        },
      }))));
  }

  $('#attach').addEventListener('click', () => attachInput.click());
  attachInput.addEventListener('change', () => {
    addFiles(attachInput.files);
    attachInput.value = '';
  });
  input.addEventListener('paste', (event) => {
    const files = event.clipboardData && event.clipboardData.files;
    if (files && files.length) {
      event.preventDefault();
      addFiles(files);
    }
  });
  const chatView = $('#view-chat');
  const overlay = $('#drop-overlay');
  let dragDepth = 0;
  const carriesFiles = (event) => event.dataTransfer && Array.from(event.dataTransfer.types || []).includes('Files');
  chatView.addEventListener('dragenter', (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    dragDepth += 1;
    overlay.hidden = false;
  });
  chatView.addEventListener('dragover', (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
  });
  chatView.addEventListener('dragleave', () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) overlay.hidden = true;
  });
  chatView.addEventListener('drop', (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    dragDepth = 0;
    overlay.hidden = true;
    addFiles(event.dataTransfer.files);
  });

  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $('#composer').requestSubmit();
    }
  });

  input.addEventListener('input', () => {
    autosize();
    updateComposer();
    const now = Date.now();
    if (input.value.trim() && now - state.typingAt > 2500) {
      state.typingAt = now;
      api('/api/chat/typing', { method: 'POST' }).catch(() => {});
    }
  });

  $('#stop').addEventListener('click', async () => {
    try { await api('/api/chat/stop', { method: 'POST' }); } catch (e) { toast(e.message, 'error'); }
  });

  $('#new-session').addEventListener('click', async () => {
    try {
      await api('/api/chat/new-session', { method: 'POST' });
      toast('New session started. Clara keeps her memories.');
    } catch (e) {
      toast(e.message, 'error');
    }
  });

  for (const button of $$('.suggestion')) {
    button.addEventListener('click', () => send(button.textContent));
  }

  const savedTier = localStorage.getItem('clara-tier');
  if (savedTier) $('#tier').value = savedTier;
  $('#tier').addEventListener('change', () => localStorage.setItem('clara-tier', $('#tier').value));

  // ---------- memories ----------
  const memoryList = $('#memory-list');
  let searchTimer = 0;

  function kindBadge(kind) {
    return h('span', { class: `badge ${kind}` }, kind);
  }

  function emptyState(icon, title, text) {
    return h('div', { class: 'empty' },
      h('div', { class: 'empty-icon', html: icon }),
      h('h3', {}, title),
      h('p', {}, text));
  }

  async function loadMemories() {
    memoryList.replaceChildren(h('div', { class: 'skeleton' }), h('div', { class: 'skeleton' }), h('div', { class: 'skeleton' }));
    const q = $('#memory-search').value.trim();
    const params = new URLSearchParams();
    if (q) params.set('q', q);
    if ($('#show-forgotten').checked) params.set('include_forgotten', 'true');
    try {
      const result = await api(`/v1/memories?${params}`);
      state.memories = result.data;
      renderMemories();
    } catch (e) {
      $('#memory-count').textContent = '';
      if (e.code === 'memory_off') {
        memoryList.replaceChildren(emptyState(ICONS.brain, 'Memory is off', e.message));
      } else {
        memoryList.replaceChildren(emptyState(ICONS.alert, 'Memories could not be loaded', e.message));
      }
    }
  }

  function renderMemories() {
    const shown = state.memories.filter((m) => state.memFilter === 'all' || m.scope === state.memFilter);
    const q = $('#memory-search').value.trim();
    $('#memory-count').textContent = shown.length
      ? `${shown.length} ${shown.length === 1 ? 'memory' : 'memories'}${q ? ` matching \u201c${q}\u201d` : ''}`
      : '';
    if (!shown.length) {
      memoryList.replaceChildren(q
        ? emptyState(ICONS.search, 'Nothing found', 'No memory matches that search. Try other words.')
        : emptyState(ICONS.brain, 'Nothing remembered yet', 'As you talk, Clara picks up what matters: facts, preferences, plans. You can also add something yourself.'));
      return;
    }
    memoryList.replaceChildren(...shown.map(memoryCard));
  }

  function memoryCard(m) {
    const card = h('article', { class: `card memory${m.forgotten_at_ms ? ' forgotten' : ''}`, 'data-id': m.id });
    const top = h('div', { class: 'card-top' }, kindBadge(m.kind));
    if (m.scope === 'project') top.append(h('span', { class: 'badge plain', html: ICONS.folder }, m.project || 'Project'));
    top.append(m.shareable
      ? h('span', { class: 'badge plain', title: 'Clara may bring this up in group chats', html: ICONS.people }, 'Shareable')
      : h('span', { class: 'badge plain', title: 'Only in your private conversations', html: ICONS.lock }, 'Private'));
    if (m.forgotten_at_ms) top.append(h('span', { class: 'badge plain' }, `Forgotten ${ago(m.forgotten_at_ms)}`));
    const text = h('div', { class: 'memory-text' }, m.text);
    const foot = h('div', { class: 'card-foot' },
      h('span', { title: new Date(m.created_at_ms).toLocaleString() }, `Learned ${ago(m.created_at_ms)}`),
      m.updated_at_ms > m.created_at_ms + 1000 ? h('span', {}, `Changed ${ago(m.updated_at_ms)}`) : null,
      h('span', { class: 'spacer' }));
    const actions = h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'action', 'data-action': 'history', html: ICONS.history, onclick: () => toggleHistory(card, m) }, 'History'));
    if (!m.forgotten_at_ms) {
      actions.append(
        h('button', { type: 'button', class: 'action', 'data-action': 'edit', html: ICONS.edit, onclick: () => editMemory(card, m) }, 'Edit'),
        m.scope === 'user'
          ? h('button', { type: 'button', class: 'action', 'data-action': 'share', html: m.shareable ? ICONS.lock : ICONS.people, onclick: () => shareMemory(m) }, m.shareable ? 'Make private' : 'Share')
          : null,
        h('button', { type: 'button', class: 'action danger', 'data-action': 'forget', html: ICONS.trash, onclick: () => confirmForget(card, m) }, 'Forget'));
    }
    foot.append(actions);
    card.append(top, text, foot);
    return card;
  }

  function replaceMemory(updated) {
    state.memories = state.memories.map((m) => (m.id === updated.id ? { ...m, ...updated } : m));
    renderMemories();
  }

  function editMemory(card, m) {
    const text = $('.memory-text', card);
    const area = h('textarea', { class: 'edit-area', 'aria-label': 'Memory text' });
    area.value = m.text;
    const save = h('button', { type: 'button', class: 'btn primary small' }, 'Save');
    const cancel = h('button', { type: 'button', class: 'btn ghost small', onclick: () => renderMemories() }, 'Cancel');
    const row = h('div', { class: 'row' }, h('span', { class: 'spacer' }), cancel, save);
    text.replaceWith(h('div', { class: 'editing' }, area, row));
    $('.card-foot', card).hidden = true;
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
    const submit = async () => {
      const value = area.value.trim();
      if (!value) { area.focus(); return; }
      save.disabled = true;
      try {
        replaceMemory(await api(`/v1/memories/${m.id}`, { method: 'PATCH', body: { text: value } }));
        toast('Memory corrected.');
      } catch (e) {
        save.disabled = false;
        toast(e.message, 'error');
      }
    };
    save.addEventListener('click', submit);
    area.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && (event.metaKey || event.ctrlKey)) submit();
      if (event.key === 'Escape') renderMemories();
    });
  }

  async function shareMemory(m) {
    try {
      replaceMemory(await api(`/v1/memories/${m.id}`, { method: 'PATCH', body: { shareable: !m.shareable } }));
      toast(m.shareable ? 'Clara keeps this to your private chats now.' : 'Clara may now mention this in group chats.');
    } catch (e) {
      toast(e.message, 'error');
    }
  }

  function confirmForget(card, m) {
    if ($('.confirm', card)) return;
    const box = h('div', { class: 'confirm' },
      h('span', {}, 'Forget this? Clara will stop using it.'),
      h('span', { class: 'spacer' }),
      h('button', { type: 'button', class: 'btn ghost small', onclick: () => box.remove() }, 'Keep'),
      h('button', {
        type: 'button',
        class: 'btn danger small',
        'data-action': 'confirm-forget',
        onclick: async () => {
          try {
            await api(`/v1/memories/${m.id}`, { method: 'DELETE' });
            toast('Forgotten.');
            if ($('#show-forgotten').checked) loadMemories();
            else { state.memories = state.memories.filter((x) => x.id !== m.id); renderMemories(); }
          } catch (e) {
            toast(e.message, 'error');
          }
        },
      }, 'Forget'));
    card.append(box);
  }

  const EVENTS = { add: 'Learned', update: 'Corrected', forget: 'Forgotten', share: 'Marked shareable', unshare: 'Made private' };
  const ACTORS = { extraction: 'Clara, from your conversation', person: 'you', operator: 'the operator', import: 'an import', api: 'an app using the API' };

  async function toggleHistory(card, m) {
    const open = $('.timeline', card);
    if (open) { open.remove(); return; }
    const list = h('ol', { class: 'timeline' }, h('li', {}, h('span', { class: 'when' }, 'Loading…')));
    card.append(list);
    try {
      const result = await api(`/v1/memories/${m.id}/history`);
      list.replaceChildren(...result.history.map((e) => h('li', { class: e.event },
        h('div', {},
          h('span', { class: 'what' }, EVENTS[e.event] || e.event),
          h('span', { class: 'when' }, ` · ${new Date(e.at_ms).toLocaleString()} · by ${ACTORS[e.actor] || e.actor}${e.place ? ` on ${e.place}` : ''}`)),
        e.event === 'update' && e.old_text ? h('div', { class: 'diff' }, 'Was: ', h('del', {}, e.old_text)) : null,
        e.reason ? h('div', { class: 'why' }, e.reason) : null,
        e.message ? h('blockquote', { class: 'quote', title: new Date(e.message.at_ms).toLocaleString() }, `\u201c${e.message.text}\u201d`) : null)));
    } catch (e) {
      list.replaceChildren(h('li', {}, h('span', { class: 'why' }, e.message)));
    }
  }

  $('#memory-search').addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(loadMemories, 250);
  });
  $('#show-forgotten').addEventListener('change', loadMemories);
  for (const seg of $$('.seg')) {
    seg.addEventListener('click', () => {
      for (const other of $$('.seg')) other.classList.toggle('active', other === seg);
      state.memFilter = seg.dataset.filter;
      renderMemories();
    });
  }
  $('#add-memory').addEventListener('click', () => {
    $('#new-memory').hidden = false;
    $('#new-memory-text').focus();
  });
  $('#new-memory-cancel').addEventListener('click', () => { $('#new-memory').hidden = true; });
  $('#new-memory').addEventListener('submit', async (event) => {
    event.preventDefault();
    const text = $('#new-memory-text').value.trim();
    if (!text) return;
    try {
      await api('/v1/memories', { method: 'POST', body: { text, kind: $('#new-memory-kind').value } });
      $('#new-memory-text').value = '';
      $('#new-memory').hidden = true;
      toast('Clara will remember that.');
      loadMemories();
    } catch (e) {
      toast(e.message, 'error');
    }
  });

  // ---------- sessions ----------
  const sessionList = $('#session-list');

  async function loadSessions() {
    sessionList.replaceChildren(h('div', { class: 'skeleton' }), h('div', { class: 'skeleton' }));
    try {
      const result = await api('/v1/sessions');
      if (!result.data.length) {
        sessionList.replaceChildren(emptyState(ICONS.clock, 'No sessions yet', 'Your conversations with Clara show up here, each with a short summary once it is over.'));
        return;
      }
      sessionList.replaceChildren(...result.data.map(sessionCard));
    } catch (e) {
      sessionList.replaceChildren(emptyState(ICONS.alert, 'Sessions could not be loaded', e.message));
    }
  }

  function sessionCard(s) {
    const span = s.ended_at_ms || s.last_activity_at_ms;
    const card = h('article', { class: 'card session-card', 'data-id': s.id, tabindex: '0' },
      h('div', { class: 'session-head' },
        h('span', { class: 'session-when' }, `${day(s.started_at_ms)}, ${timeFmt.format(s.started_at_ms)} – ${timeFmt.format(span)}`),
        s.current ? h('span', { class: 'badge current' }, 'Current') : null,
        h('span', { class: 'badge plain' }, s.place === 'API' ? 'API' : 'Web'),
        h('span', { class: 'badge plain' }, `${s.messages} ${s.messages === 1 ? 'message' : 'messages'}`)),
      s.summary
        ? h('p', { class: 'session-summary' }, s.summary)
        : h('p', { class: 'session-summary none' }, s.current ? 'In progress. A summary is written after a quiet half hour.' : 'The summary is being written.'));
    const open = async () => {
      const shown = $('.transcript', card);
      if (shown) { shown.remove(); return; }
      const transcript = h('div', { class: 'transcript' }, h('span', { class: 'when' }, 'Loading…'));
      card.append(transcript);
      try {
        const result = await api(`/v1/sessions/${s.id}/messages`);
        transcript.replaceChildren(...result.data.map((m) => {
          if (m.role === 'user') {
            return h('div', { class: 'line' }, h('span', { class: 'who' }, 'You'), h('span', { class: 'said' }, m.text));
          }
          const said = h('span', { class: 'said' });
          if (m.tools && m.tools.length) {
            const tools = h('div', { class: 'tools' });
            for (const run of m.tools) tools.append(storedChip(tools, run));
            said.append(tools);
          }
          // markdown() escapes the text before adding its own tags.
          said.append(h('div', { class: 'md', html: markdown(m.text) }));
          return h('div', { class: 'line' }, h('span', { class: 'who' }, 'Clara'), said);
        }));
      } catch (e) {
        transcript.replaceChildren(h('span', {}, e.message));
      }
    };
    card.addEventListener('click', (event) => { if (!event.target.closest('.transcript')) open(); });
    card.addEventListener('keydown', (event) => { if (event.key === 'Enter') open(); });
    return card;
  }

  // ---------- reminders (the person's schedules and alert settings) ----------
  const scheduleList = $('#schedule-list');
  const KINDS = { reminder: 'Reminder', task: 'Task' };
  const TEXT_HINTS = { reminder: 'What to remind you of', task: 'What Clara should do, e.g. \u201ctell me the weather\u201d' };

  /** The browser's time zone, offered when the person has none yet. */
  function browserZone() {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || ''; } catch (_) { return ''; }
  }

  function showError(node, message) {
    node.textContent = message || '';
    node.hidden = !message;
  }

  function scheduleCard(s) {
    const here = s.delivered_to.startsWith('web:page:');
    return h('article', { class: 'card schedule-card', 'data-id': s.id },
      h('div', { class: 'card-top' },
        h('span', { class: `badge ${s.kind}` }, KINDS[s.kind] || s.kind),
        h('span', { class: 'badge plain schedule-when' }, s.when)),
      h('div', { class: 'schedule-text' }, s.text),
      h('div', { class: 'card-foot' },
        s.next ? h('span', { class: 'schedule-next', title: s.time_zone }, `Next: ${s.next}`) : null,
        h('span', {}, s.time_zone),
        here ? null : h('span', {}, `Delivered to ${s.delivered_to}`),
        h('span', { class: 'spacer' }),
        h('div', { class: 'actions' },
          h('button', {
            type: 'button',
            class: 'action danger',
            'data-action': 'remove',
            html: ICONS.trash,
            onclick: async (event) => {
              event.currentTarget.disabled = true;
              try {
                await api(`/api/schedules/${encodeURIComponent(s.id)}`, { method: 'DELETE' });
                toast(s.kind === 'task' ? 'Task removed.' : 'Reminder removed.');
              } catch (e) {
                toast(e.message, 'error');
              }
              loadSchedules();
            },
          }, 'Remove'))));
  }

  function renderSettings(settings) {
    const zone = $('#settings-zone');
    zone.value = settings.time_zone || browserZone();
    $('#schedule-zone').value = settings.time_zone || browserZone();
    $('#settings-quiet').value = settings.quiet_hours || '';
    $('#settings-here').checked = settings.alerts_here;
    let where = settings.alerts_to;
    if (settings.alerts_here) where = 'this page';
    else if (where.startsWith('the direct conversation')) where = 'the direct conversation you last wrote in';
    $('#alerts-to').textContent = `Alerts (like new e-mail) go to ${where}${settings.quiet_hours ? `, and wait out your quiet hours (${settings.quiet_hours})` : ''}. Reminders and tasks come when you asked for them.`;
  }

  async function loadSchedules() {
    if (!scheduleList.children.length) scheduleList.replaceChildren(h('div', { class: 'skeleton' }));
    let result;
    try {
      result = await api('/api/schedules');
    } catch (e) {
      scheduleList.replaceChildren(emptyState(ICONS.alert, 'Reminders could not be loaded', e.message));
      return;
    }
    scheduleList.replaceChildren(...(result.data.length
      ? result.data.map(scheduleCard)
      : [emptyState(ICONS.clock, 'Nothing scheduled', 'Add a reminder or a task above, or ask Clara: \u201cremind me in 20 minutes to stretch\u201d.')]));
    renderSettings(result.settings);
  }

  $('#schedule-kind').addEventListener('change', () => {
    $('#schedule-text').placeholder = TEXT_HINTS[$('#schedule-kind').value];
  });

  $('#new-schedule').addEventListener('submit', async (event) => {
    event.preventDefault();
    const error = $('#schedule-error');
    const body = {
      kind: $('#schedule-kind').value,
      text: $('#schedule-text').value.trim(),
      when: $('#schedule-when').value.trim(),
    };
    const zone = $('#schedule-zone').value.trim();
    if (zone) body.time_zone = zone;
    if (!body.text) { $('#schedule-text').focus(); return; }
    if (!body.when) { $('#schedule-when').focus(); return; }
    const add = $('#schedule-add');
    add.disabled = true;
    try {
      const made = await api('/api/schedules', { method: 'POST', body });
      showError(error, '');
      $('#schedule-text').value = '';
      $('#schedule-when').value = '';
      toast(made.next ? `${KINDS[made.kind]} set for ${made.next}.` : `${KINDS[made.kind]} set.`);
      loadSchedules();
    } catch (e) {
      showError(error, e.message);
    } finally {
      add.disabled = false;
    }
  });

  $('#alert-settings').addEventListener('submit', async (event) => {
    event.preventDefault();
    const error = $('#settings-error');
    const body = {
      quiet_hours: $('#settings-quiet').value.trim() || 'off',
      alerts_here: $('#settings-here').checked,
    };
    const zone = $('#settings-zone').value.trim();
    if (zone) body.time_zone = zone;
    const save = $('#settings-save');
    save.disabled = true;
    try {
      renderSettings(await api('/api/schedules/settings', { method: 'PUT', body }));
      showError(error, '');
      toast('Settings saved.');
    } catch (e) {
      showError(error, e.message);
    } finally {
      save.disabled = false;
    }
  });

  // The zones the browser knows, for the time-zone fields to suggest.
  if (Intl.supportedValuesOf) {
    try {
      $('#time-zones').replaceChildren(...Intl.supportedValuesOf('timeZone').map((z) => h('option', { value: z })));
    } catch (_) { /* an old browser: the fields take any text */ }
  }

  // ---------- tools (the owner's) ----------
  const RULE_WORDS = { allow: 'Runs without asking', ask: 'Always asks', deny: 'Never runs' };

  function ruleCard(rule) {
    return h('article', { class: 'card rule-card', 'data-action': rule.action },
      h('div', { class: 'card-top' },
        h('span', { class: `badge rule ${rule.action}` }, rule.action),
        h('code', { class: 'rule-tool' }, rule.tool),
        rule.arguments ? h('span', { class: 'rule-args' }, 'with arguments ', h('code', {}, rule.arguments)) : null),
      h('div', { class: 'rule-what' }, RULE_WORDS[rule.action] || rule.action));
  }

  function serverCard(server, canToggle) {
    const card = h('article', { class: `card server-card ${server.state}`, 'data-server': server.name });
    const top = h('div', { class: 'card-top' },
      h('span', { class: 'server-name' }, server.name),
      h('span', { class: `badge state ${server.state}` }, server.state.replace(/_/g, ' ')),
      h('span', { class: 'badge plain' }, server.transport),
      server.restarts ? h('span', { class: 'badge plain' }, `${server.restarts} restart${server.restarts === 1 ? '' : 's'}`) : null);
    const detail = h('div', { class: 'server-detail' }, server.detail);
    const tools = h('div', { class: 'tools server-tools' },
      ...server.tools.map((name) => h('span', { class: 'chip', 'data-tool': name, title: name }, toolLabel(name))));
    const foot = h('div', { class: 'card-foot' },
      h('span', {}, server.source ? `From ${server.source}` : 'Local'),
      h('span', { class: 'spacer' }));
    // Clara's own servers (the sandbox) are not turned on and off here.
    if (canToggle && server.transport !== 'built-in') {
      foot.append(h('button', {
        type: 'button',
        class: `btn small ${server.enabled ? 'ghost' : 'primary'}`,
        'data-action': server.enabled ? 'disable' : 'enable',
        onclick: async (event) => {
          event.currentTarget.disabled = true;
          try {
            await api(`/api/tools/servers/${encodeURIComponent(server.name)}`, { method: 'POST', body: { enabled: !server.enabled } });
            toast(server.enabled ? `${server.name} is turned off.` : `${server.name} is turned on; it starts within a few seconds.`);
          } catch (e) {
            toast(e.message, 'error');
          }
          loadTools();
        },
      }, server.enabled ? 'Turn off' : 'Turn on'));
    }
    card.append(top, detail);
    if (server.tools.length) card.append(tools);
    card.append(foot);
    return card;
  }

  async function loadTools() {
    const approvals = $('#tool-approvals');
    const rules = $('#tool-rules');
    const servers = $('#tool-servers');
    let view;
    try {
      view = await api('/api/tools');
    } catch (e) {
      approvals.replaceChildren(emptyState(ICONS.alert, 'Tools could not be loaded', e.message));
      rules.replaceChildren();
      servers.replaceChildren();
      return;
    }
    approvals.replaceChildren(h('article', { class: 'card' },
      h('div', { class: 'rule-what' }, 'Clara asks ', h('strong', {}, view.owners.join(', ') || 'nobody'),
        ` before a tool acts on the world; no answer within ${view.timeout_secs} s counts as a deny.`)));
    rules.replaceChildren(...(view.rules.length
      ? view.rules.map(ruleCard)
      : [h('p', { class: 'count' }, 'No rules of your own: tools that only read run, everything else asks first.')]));
    if (view.servers === null) {
      servers.replaceChildren(h('p', { class: 'count' }, 'This Clara has no MCP servers.'));
    } else if (!view.servers.length) {
      servers.replaceChildren(emptyState(ICONS.tool, 'No MCP servers yet', 'Add one with clara mcp add NAME SOURCE; Clara starts it within a few seconds.'));
    } else {
      servers.replaceChildren(...view.servers.map((server) => serverCard(server, view.can_toggle)));
    }
  }

  $('#reload-tools').addEventListener('click', loadTools);

  // ---------- navigation ----------
  function route() {
    $('#toast').hidden = true;
    const view = (location.hash || '#chat').slice(1);
    const views = ['chat', 'memories', 'sessions', 'reminders'];
    if (state.me && state.me.owner) views.push('tools');
    const known = views.includes(view) ? view : 'chat';
    state.view = known;
    for (const section of $$('.view')) section.hidden = section.dataset.view !== known;
    for (const link of $$('.nav-item')) link.classList.toggle('active', link.dataset.view === known);
    document.title = known === 'chat' ? 'Clara' : `${known[0].toUpperCase()}${known.slice(1)} · Clara`;
    if (known === 'memories') loadMemories();
    if (known === 'sessions') loadSessions();
    if (known === 'reminders') loadSchedules();
    if (known === 'tools') loadTools();
    if (known === 'chat') { toBottom(true); input.focus(); }
  }
  window.addEventListener('hashchange', route);

  function start(me) {
    state.me = me;
    state.csrf = me.csrf;
    $('#boot').hidden = true;
    $('#login').hidden = true;
    $('#app').hidden = false;
    const name = me.person || 'you';
    $('#me-name').textContent = name;
    $('#me-avatar').textContent = name.trim().charAt(0) || '?';
    $('#me-model').textContent = me.model ? `Model: ${me.model}` : '';
    $('#welcome-title').textContent = name && name !== 'you' ? `Hi ${name}, I'm Clara.` : 'Hi, I\u2019m Clara.';
    $('#logout').hidden = !me.login_required;
    // Tools and their rules are the owner's business.
    $('#nav-tools').hidden = !me.owner;
    // Without memory, the memory browser has nothing to search or add.
    $('#add-memory').hidden = !me.memory;
    $('#view-memories .toolbar').hidden = !me.memory;
    updateComposer();
    connect();
    route();
  }

  async function boot() {
    try {
      const me = await api('/api/me');
      state.me = me;
      if (me.logged_in) start(me);
      else showLogin();
    } catch (e) {
      $('#boot').hidden = true;
      toast(e.message, 'error');
    }
  }

  boot();
})();
