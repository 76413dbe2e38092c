import { CATEGORY_NAMES, PROFILE_NAMES } from '../../util/labels.js';
import { VN_TIME_ZONE } from './vn-time.js';
/**
 * The dashboard's stylesheet and script, served from the collector itself (no CDN, no
 * build step beyond tsc). The script is plain ES2020 for the browser; it builds the
 * chart as SVG by hand and renders every value with textContent, never as HTML.
 */

export const APP_CSS = `
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,"Segoe UI",Roboto,Arial,sans-serif;color:#1d2733;background:#f4f6f8}
header{display:flex;gap:1.2em;align-items:center;padding:.6em 1.2em;background:#0b5d4b;color:#fff;flex-wrap:wrap}
header nav{display:flex;gap:1em;flex:1}
header a{color:#e6fff8;text-decoration:none}
header a[aria-current=page]{font-weight:700;text-decoration:underline}
header form{margin:0}
main{padding:1em 1.2em;max-width:1200px;margin:auto}
section{background:#fff;border-radius:8px;padding:1em;margin-bottom:1em;box-shadow:0 1px 2px #0002}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:1em;background:none;box-shadow:none;padding:0}
.grid>div{background:#fff;border-radius:8px;padding:1em;box-shadow:0 1px 2px #0002}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.35em .5em;border-bottom:1px solid #e3e7eb;vertical-align:top;word-break:break-word}
th{background:#eef2f4}
.chart svg{width:100%;height:auto}
.legend{display:flex;flex-wrap:wrap;gap:.4em 1em;margin-top:.5em}
.legend span::before{content:"";display:inline-block;width:.8em;height:.8em;margin-right:.3em;background:var(--c)}
.hint{color:#5a6772;font-size:.9em}
.filters{display:flex;flex-wrap:wrap;gap:.6em;align-items:end;margin-bottom:1em}
.filters label{display:flex;flex-direction:column;font-size:.9em}
input,select,button{font:inherit;padding:.3em .5em}
button{cursor:pointer}
.login main.card{max-width:420px;margin:10vh auto;background:#fff;padding:1.5em;border-radius:8px;box-shadow:0 1px 4px #0003}
.login form{display:flex;flex-direction:column;gap:.8em}
.login label{display:flex;flex-direction:column}
.error{color:#a4161a;font-weight:600}
.silent{color:#a4161a}
code{font-size:.85em}
.notice{background:#e7f6ef;border-left:4px solid #0b5d4b;padding:.6em 1em;margin-bottom:1em}
.actions{display:flex;flex-direction:column;gap:.4em;min-width:16em}
.actions form{display:flex;flex-wrap:wrap;gap:.3em;align-items:center;margin:0}
.tabs{display:flex;gap:1em;margin-bottom:.8em}
.tabs a[aria-current=page]{font-weight:700}
.kind-report{color:#a4161a;font-weight:600}
.muted{color:#5a6772}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;max-width:100%}
.scroll>table{min-width:40em}
#events{min-width:62em}
#events td:first-child{white-space:nowrap}
.nowrap{white-space:nowrap}
#reviews th,#reviews td{word-break:normal;overflow-wrap:normal}
table.alerts{min-width:60em}
table.alerts td.severity{font-weight:600}
table.alerts td:first-child,table.alerts code.device{white-space:nowrap}
tr.severity-high td.severity,tr.severity-critical td.severity{color:#a4161a}
tr.severity-critical{background:#fdecec}
tr[data-status=closed]{opacity:.7}
.alert-action{display:flex;flex-wrap:wrap;gap:.3em;margin:0;min-width:14em}
.alert-action label{display:flex;flex-direction:column;flex:1 1 100%;font-size:.9em}
#reviews td.page{min-width:11em;overflow-wrap:anywhere}
#reviews .actions{max-width:24em}
#reviews .actions select{width:100%}
.count{display:inline-block;margin-top:.2em;padding:0 .5em;border-radius:1em;background:#fff3cd;color:#6b4e00;font-size:.85em}
.detail{font-size:.85em}
.kv{display:inline-block}
tr.disabled td{color:#5a6772}
td.name{font-weight:600}
button.danger{color:#a4161a}
.reset input{width:11em}
@media (max-width:700px){
.grid{grid-template-columns:1fr}
header{gap:.4em .8em;padding:.5em .8em}
header nav{flex-wrap:wrap;gap:.3em .9em;flex-basis:100%;order:3}
header .who{font-size:.85em}
main{padding:.6em}
section{padding:.7em}
h1{font-size:1.3em;margin:.3em 0 .5em}
.filters label{flex:1 1 45%}
.filters label input,.filters label select{width:100%}
.actions{min-width:0}
/* The review queue as cards: every request and its buttons inside the screen. */
table.cards,table.cards tbody,table.cards tr,table.cards td{display:block;width:100%}
table.cards thead{display:none}
table.cards tr{border:1px solid #d5dbe0;border-radius:8px;margin-bottom:.8em;padding:.4em .6em;background:#fff}
table.cards td{border:0;padding:.2em 0}
table.cards td.empty{display:none}
table.cards td.value{word-break:break-all}
table.cards td[data-label]::before{content:attr(data-label) ": ";color:#5a6772;font-size:.85em}
table.cards .actions select,table.cards .actions input{flex:1 1 100%;min-width:0;max-width:100%}
}
`;

export const APP_JS = `
'use strict';
(function () {
  var CATEGORY_NAMES = ${JSON.stringify(CATEGORY_NAMES)};
  var PROFILE_NAMES = ${JSON.stringify(PROFILE_NAMES)};
  // dd/mm/yyyy HH:mm in Vietnam time, whatever the browser's own zone (as vn-time.ts on the server).
  var VN_FORMAT = new Intl.DateTimeFormat('en-GB', { timeZone: ${JSON.stringify(VN_TIME_ZONE)}, day: '2-digit', month: '2-digit', year: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  var COLORS = ['#d62828', '#f77f00', '#2a9d8f', '#264653', '#8338ec', '#3a86ff', '#e76f51', '#6a994e', '#bc4749', '#577590'];
  var SVG = 'http://www.w3.org/2000/svg';

  function categoryName(c) { return c ? (CATEGORY_NAMES[c] || c) : 'Quy tắc riêng'; }
  function profileName(p) { return PROFILE_NAMES[p] || p; }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function svg(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    for (var k in attrs) node.setAttribute(k, String(attrs[k]));
    return node;
  }
  function getJson(url) {
    return fetch(url, { credentials: 'same-origin', headers: { accept: 'application/json' } }).then(function (r) {
      if (r.status === 401) { location.href = '/login'; throw new Error('401'); }
      if (!r.ok) { var failed = new Error('HTTP ' + r.status); failed.status = r.status; throw failed; }
      return r.json();
    });
  }
  // A 503 is the database busy (docs/contract.md §10): asking again shortly will do.
  var BUSY = 'cơ sở dữ liệu đang bận, hãy thử lại sau ít giây.';
  /** What a panel says in place of data that did not come: a 503, or any other failure (the network's too). */
  function failureText(error) { return error && error.status === 503 ? 'Không tải được: ' + BUSY : 'Không tải được.'; }
  /** A panel's handler of a failed request: the holder emptied, then the line row(text) makes put in it. */
  function failedInto(holder, row) {
    return function (error) {
      holder.textContent = '';
      holder.appendChild(row(failureText(error)));
    };
  }
  function failureLine(tag) { return function (text) { return el(tag, { class: 'error' }, text); }; }
  function vnDay(ms) { return new Date(ms + 7 * 3600000).toISOString().slice(0, 10); }
  function vnTime(ms) { return VN_FORMAT.format(ms).replace(',', ''); }

  /** Lines per category over the days, drawn by hand: one polyline and one dot a day. */
  function drawChart(holder, legend, stats) {
    holder.textContent = '';
    legend.textContent = '';
    var days = [];
    for (var d = Date.parse(stats.fromDay + 'T00:00:00Z'); d <= Date.parse(stats.toDay + 'T00:00:00Z'); d += 86400000) days.push(new Date(d).toISOString().slice(0, 10));
    var series = {};
    var max = 1;
    stats.byCategoryDay.forEach(function (row) {
      var key = row.category || '';
      series[key] = series[key] || {};
      series[key][row.day] = (series[key][row.day] || 0) + row.count;
      if (series[key][row.day] > max) max = series[key][row.day];
    });
    // Drawn at the width it is shown, so labels keep their size on a phone.
    var W = Math.max(300, Math.min(1100, Math.round(holder.clientWidth || 800))), H = W < 600 ? 220 : 260, L = 36, B = 30, T = 10, R = 12;
    var FONT = 12;
    var root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': 'Biểu đồ lượt chặn theo danh mục' });
    var x = function (i) { return L + (days.length < 2 ? 0 : i * (W - L - R) / (days.length - 1)); };
    var y = function (n) { return H - B - n * (H - B - T) / max; };
    root.appendChild(svg('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: '#999' }));
    [0, Math.ceil(max / 2), max].forEach(function (n) {
      var label = svg('text', { x: L - 6, y: y(n) + 4, 'text-anchor': 'end', 'font-size': FONT, fill: '#444' });
      label.textContent = String(n);
      root.appendChild(label);
    });
    days.forEach(function (day, i) {
      var every = Math.ceil(days.length / Math.max(2, Math.floor((W - L - R) / 56)));
      if (i % every !== 0 && i !== days.length - 1) return;
      if (i !== days.length - 1 && days.length - 1 - i < every / 2) return; // would overlap the last label
      var anchor = i === 0 ? 'start' : i === days.length - 1 ? 'end' : 'middle';
      var label = svg('text', { x: x(i), y: H - 10, 'text-anchor': anchor, 'font-size': FONT, fill: '#444' });
      label.textContent = day.slice(8, 10) + '/' + day.slice(5, 7);
      root.appendChild(label);
    });
    Object.keys(series).sort().forEach(function (key, index) {
      var color = COLORS[index % COLORS.length];
      var points = days.map(function (day, i) { return x(i) + ',' + y(series[key][day] || 0); }).join(' ');
      var group = svg('g', { 'data-category': key, 'data-total': Object.keys(series[key]).reduce(function (s, day) { return s + series[key][day]; }, 0) });
      group.appendChild(svg('polyline', { points: points, fill: 'none', stroke: color, 'stroke-width': 2 }));
      days.forEach(function (day, i) {
        var n = series[key][day] || 0;
        if (n === 0) return;
        var dot = svg('circle', { cx: x(i), cy: y(n), r: 3.5, fill: color, 'data-day': day, 'data-count': n });
        var title = svg('title', {});
        title.textContent = categoryName(key) + ', ' + day.slice(8, 10) + '/' + day.slice(5, 7) + '/' + day.slice(0, 4) + ': ' + n;
        dot.appendChild(title);
        group.appendChild(dot);
      });
      root.appendChild(group);
      var item = el('span', null, categoryName(key) + ' (' + group.getAttribute('data-total') + ')');
      item.style.setProperty('--c', color); // CSSOM, which the CSP allows (a style attribute it would not)
      legend.appendChild(item);
    });
    if (Object.keys(series).length === 0) holder.appendChild(el('p', null, 'Chưa có lượt chặn nào trong khoảng này.'));
    holder.appendChild(root);
  }

  function overview() {
    var today = vnDay(Date.now());
    var from14 = vnDay(Date.now() - 13 * 86400000);
    var chart = document.getElementById('chart');
    getJson('/api/v1/stats?from=' + from14 + '&to=' + today).then(function (stats) {
      drawChart(chart, document.getElementById('legend'), stats);
    }, failedInto(chart, failureLine('p')));
    var body = document.querySelector('#by-school tbody');
    getJson('/api/v1/stats').then(function (stats) {
      stats.bySchool.forEach(function (row) {
        var tr = el('tr');
        tr.appendChild(el('td', null, row.name || row.school));
        tr.appendChild(el('td', null, row.count));
        body.appendChild(tr);
      });
      if (stats.bySchool.length === 0) body.appendChild(el('tr')).appendChild(el('td', { colspan: 2 }, 'Chưa có dữ liệu.'));
    }, failedInto(body, function (text) {
      var tr = el('tr');
      tr.appendChild(el('td', { colspan: 2, class: 'error' }, text));
      return tr;
    }));
    var list = document.getElementById('silent');
    getJson('/api/v1/dashboard/schools').then(function (data) {
      data.schools.filter(function (s) { return s.silent; }).forEach(function (s) {
        list.appendChild(el('li', { class: 'silent', 'data-school': s.id }, s.name + ' — ' + (s.lastContact === null ? 'chưa từng liên lạc' : 'lần cuối ' + vnTime(s.lastContact))));
      });
      if (!list.firstChild) list.appendChild(el('li', null, 'Tất cả các trường đều đang liên lạc.'));
    }, failedInto(list, failureLine('li')));
    var holder = document.getElementById('top-hosts');
    getJson('/api/v1/dashboard/top-hosts').then(function (data) {
      data.categories.forEach(function (group) {
        holder.appendChild(el('h3', null, categoryName(group.category)));
        var table = el('table', { 'data-category': group.category || '' });
        var head = el('tr');
        ['Tên miền', 'Lượt chặn', 'Quy tắc', 'Tệp:dòng'].forEach(function (h) { head.appendChild(el('th', null, h)); });
        table.appendChild(head);
        group.hosts.forEach(function (h) {
          var tr = el('tr');
          tr.appendChild(el('td', null, h.host));
          tr.appendChild(el('td', null, h.count));
          tr.appendChild(el('td', null, h.rule || '—'));
          tr.appendChild(el('td', null, h.source || '—'));
          table.appendChild(tr);
        });
        holder.appendChild(el('div', { class: 'scroll' })).appendChild(table);
      });
      if (data.categories.length === 0) holder.appendChild(el('p', null, 'Chưa có dữ liệu.'));
    }, failedInto(holder, failureLine('p')));
  }

  function logs() {
    var form = document.getElementById('filters');
    var body = document.querySelector('#events tbody');
    var more = document.getElementById('more');
    var count = document.getElementById('count');
    var csv = document.getElementById('csv');
    var shown = 0;
    var cursor = null;
    var schoolNames = {};
    var schoolsLoaded = getJson('/api/v1/dashboard/schools').then(function (data) {
      var select = form.elements.namedItem('school');
      data.schools.forEach(function (s) {
        schoolNames[s.id] = s.name;
        select.appendChild(el('option', { value: s.id }, s.name));
      });
    });
    [['profile', PROFILE_NAMES], ['category', CATEGORY_NAMES]].forEach(function (pair) {
      var select = form.elements.namedItem(pair[0]);
      Object.keys(pair[1]).forEach(function (key) { select.appendChild(el('option', { value: key }, pair[1][key])); });
    });
    function query() {
      var params = new URLSearchParams();
      ['school', 'profile', 'category', 'host'].forEach(function (name) {
        var value = form.elements.namedItem(name).value.trim();
        if (value) params.set(name, value);
      });
      ['from', 'to'].forEach(function (name) {
        var value = form.elements.namedItem(name).value;
        // The inputs are Vietnam wall-clock time (UTC+7).
        if (value) params.set(name, String(Date.parse(value + ':00Z') - 7 * 3600000));
      });
      return params;
    }
    function load(reset) {
      var params = query();
      csv.setAttribute('href', '/api/v1/events.csv?' + params.toString());
      params.set('limit', '50');
      if (!reset && cursor) params.set('cursor', cursor);
      return getJson('/api/v1/events?' + params.toString()).then(function (page) {
        if (reset) { body.textContent = ''; shown = 0; }
        page.events.forEach(function (e) {
          var tr = el('tr', { 'data-id': e.id });
          [vnTime(e.time), schoolNames[e.school] || e.school, profileName(e.profile), categoryName(e.category), e.host, e.path, e.rule || '—', e.source || '—'].forEach(function (v) { tr.appendChild(el('td', null, v)); });
          body.appendChild(tr);
        });
        shown += page.events.length;
        cursor = page.nextCursor;
        more.hidden = !cursor;
        count.textContent = 'Đang hiển thị ' + shown + ' sự kiện' + (cursor ? '' : ' (hết)');
        document.body.setAttribute('data-loaded', String(Date.now()));
      });
    }
    form.addEventListener('submit', function (event) { event.preventDefault(); load(true); });
    more.addEventListener('click', function () { load(false); });
    schoolsLoaded.then(function () { load(true); }, function () { load(true); });
  }

  function users() {
    var form = document.getElementById('add-user');
    var result = document.getElementById('add-user-result');
    var csrf = document.querySelector('meta[name=csrf]').getAttribute('content');
    getJson('/api/v1/dashboard/schools').then(function (data) {
      var select = form.elements.namedItem('school');
      data.schools.forEach(function (s) { select.appendChild(el('option', { value: s.id }, s.name)); });
    });
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var body = {
        name: form.elements.namedItem('name').value.trim(),
        role: form.elements.namedItem('role').value,
        school: form.elements.namedItem('school').value || null,
        password: form.elements.namedItem('password').value
      };
      fetch('/api/v1/users', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
        body: JSON.stringify(body)
      }).then(function (r) {
        return r.json().then(function (answer) {
          if (r.ok) { location.reload(); return; }
          result.textContent = 'Không thêm được: ' + (r.status === 503 ? BUSY : answer.message || r.status);
          result.className = 'error';
        });
      });
    });
  }

  var page = document.body.getAttribute('data-page');
  if (page === 'overview') overview();
  if (page === 'logs') logs();
  if (page === 'users') users();
})();
`;
