"""The dashboard's page: one HTML document, vanilla JS, no build step.

It polls ``/api/cluster`` every second and rebuilds the service cards with
DOM calls (``textContent``, never ``innerHTML``: docstrings and names come
from the services and must not become markup). States have colours the
browser test looks for in its screenshot: running green, stopping amber,
silent (no news for three refresh periods) red.
"""

from __future__ import annotations

__all__ = ["PAGE", "STATE_COLOURS"]

STATE_COLOURS = {"running": "#2ea043", "stopping": "#d29922", "silent": "#cf222e"}

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f6f8fa; color: #1f2328; }
header { background: #24292f; color: #fff; padding: 12px 20px; display: flex; gap: 20px;
         align-items: baseline; }
header h1 { font-size: 18px; margin: 0; }
header .meta { color: #c9d1d9; font-size: 12px; }
#connection.down { color: #ff8182; }
main { padding: 16px 20px; display: grid; gap: 16px; }
.empty { color: #57606a; }
.service { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 12px 16px; }
.service h2 { font-size: 16px; margin: 0 0 8px; display: flex; gap: 10px; align-items: center; }
.pill { display: inline-block; color: #fff; border-radius: 12px; padding: 3px 12px;
        font-size: 12px; font-weight: 600; }
.pill.running { background: #2ea043; } .pill.stopping, .pill.degraded { background: #d29922; }
.pill.silent { background: #cf222e; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; font-size: 13px; }
th { text-align: left; color: #57606a; font-weight: 600; border-bottom: 1px solid #d0d7de; }
td, th { padding: 3px 8px; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.sig { font-family: ui-monospace, monospace; }
td.doc { color: #57606a; }
td.errors.bad { color: #cf222e; font-weight: 600; }
"""

_SCRIPT = """
const services = document.getElementById('services');
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
function cell(text, className) { return el('td', {className: className || ''}, text); }
function num(value, digits) {
  return value === null || value === undefined ? '-' : Number(value).toFixed(digits);
}
function uptime(seconds) {
  seconds = Math.floor(seconds || 0);
  const h = Math.floor(seconds / 3600), m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
  return h ? `${h}h ${m}m` : m ? `${m}m ${s}s` : `${s}s`;
}
function head(...names) {
  return el('tr', {}, ...names.map(n => el('th', {className: n.startsWith('#') ? 'num' : ''},
                                          n.replace(/^#/, ''))));
}
function instanceTable(service) {
  const table = el('table', {className: 'instances'},
    head('state', 'instance', 'host', 'pid', 'uptime', 'version', '#workers'));
  for (const i of service.instances) {
    const row = el('tr', {}, el('td', {}, el('span', {className: 'pill ' + i.state}, i.state)),
      cell(i.id), cell(i.host), cell(i.pid), cell(uptime(i.uptime)), cell('shimeji ' + i.version),
      cell(`${i.in_flight} / ${i.max_workers}`, 'num'));
    row.dataset.instance = i.id;
    table.append(row);
  }
  return table;
}
function entrypointTable(service) {
  const table = el('table', {className: 'entrypoints'},
    head('type', 'entrypoint', 'listens to', 'about', '#calls/s', '#errors/s', '#mean ms',
         '#p95 ms', '#calls', '#errors', '#in flight'));
  for (const ep of service.entrypoints) {
    const doc = (ep.doc || '').split('\\n')[0];
    const row = el('tr', {}, cell(ep.type), cell(ep.name + ep.signature, 'sig'),
      cell(ep.detail || ''), cell(doc, 'doc'), cell(num(ep.rate, 1), 'num rate'),
      cell(num(ep.error_rate, 1), 'num error-rate'), cell(num(ep.mean_ms, 1), 'num mean'),
      cell(ep.p95_ms === null ? '-' : '\\u2264 ' + ep.p95_ms, 'num p95'),
      cell(ep.calls, 'num calls'), cell(ep.errors, 'num errors' + (ep.errors ? ' bad' : '')),
      cell(ep.in_flight, 'num in-flight'));
    row.dataset.entrypoint = service.name + '/' + ep.key;
    table.append(row);
  }
  return table;
}
function render(view) {
  document.getElementById('broker').textContent = view.broker;
  document.getElementById('updated').textContent =
    'updated ' + new Date(view.time * 1000).toLocaleTimeString();
  if (!view.services.length) {
    services.replaceChildren(el('p', {className: 'empty'}, 'No service instance has announced '
      + 'itself yet (services announce themselves under nameko run unless PRESENCE is false).'));
    return;
  }
  services.replaceChildren(...view.services.map(service => {
    const card = el('section', {className: 'service'},
      el('h2', {}, service.name, el('span', {className: 'pill ' + service.state}, service.state),
         el('span', {className: 'meta'}, `${service.instances.length} instance(s)`)),
      instanceTable(service), entrypointTable(service));
    card.dataset.service = service.name;
    return card;
  }));
}
async function poll() {
  const status = document.getElementById('connection');
  try {
    const response = await fetch('/api/cluster', {cache: 'no-store'});
    render(await response.json());
    status.textContent = 'live'; status.className = 'meta';
  } catch (error) {
    status.textContent = 'dashboard unreachable'; status.className = 'meta down';
  } finally {
    setTimeout(poll, 1000);
  }
}
poll();
"""

PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>shimeji cluster</title>
<style>{_CSS}</style>
</head>
<body>
<header><h1>shimeji cluster</h1><span class="meta" id="broker"></span>
<span class="meta" id="updated"></span><span class="meta" id="connection">connecting</span></header>
<main id="services"><p class="empty">Waiting for the first answer...</p></main>
<script>{_SCRIPT}</script>
</body>
</html>
"""
