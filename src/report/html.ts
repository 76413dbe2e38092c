import type { ReportDocument, ReportTable } from './document.js';

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `body{font-family:"Times New Roman",Tinos,"Liberation Serif",serif;font-size:14pt;line-height:1.35;color:#000;background:#fff;margin:0}
main{max-width:17cm;margin:0 auto;padding:2cm 1.5cm 2cm 3cm}
.head{display:grid;grid-template-columns:2fr 3fr;gap:1rem;text-align:center;font-size:13pt}
.head p{margin:0}.head .issuer,.head .nation,.head .motto{font-weight:bold}.head .motto{font-size:14pt}
.head .rule{display:inline-block;border-top:1px solid #000;width:40%;margin:.2rem 0}.head .motto+.rule{width:60%}
.head .date{font-style:italic;margin-top:.4rem}
h1{font-size:14pt;text-align:center;margin:1.2rem 0 0}.subject{text-align:center;font-weight:bold;margin:0 0 .8rem}
.to{text-align:center;margin:0 0 1rem}
p{margin:.3rem 0;text-align:justify;text-indent:1cm}h2{font-size:14pt;margin:.8rem 0 .3rem}
table{border-collapse:collapse;width:100%;font-size:13pt;margin:.3rem 0}th,td{border:1px solid #000;padding:.15rem .4rem}th{font-weight:bold}
td.right{text-align:right}
.end{display:grid;grid-template-columns:1fr 1fr;gap:1rem;margin-top:1.2rem}
.end .to-list{font-size:11pt}.end .to-list b{font-size:12pt;font-style:italic}.end .to-list p{text-indent:0;margin:0}
.sign{text-align:center;font-weight:bold}.sign .name{margin-top:3.5rem}
@media (max-width:40rem){main{padding:1rem}.head,.end{grid-template-columns:1fr}}
@media print{main{padding:0}@page{size:A4;margin:2cm 1.5cm 2cm 3cm}}`;

function table(t: ReportTable): string {
  const head = `<tr>${t.header.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr>`;
  const body =
    t.rows.length === 0
      ? `<tr><td colspan="${t.header.length}">Không có số liệu.</td></tr>`
      : t.rows
          .map((row) => `<tr>${row.map((cell, i) => `<td${t.align[i] === 'right' ? ' class="right"' : ''}>${escapeHtml(cell)}</td>`).join('')}</tr>`)
          .join('\n');
  return `<table><thead>${head}</thead><tbody>\n${body}\n</tbody></table>`;
}

/** The report as a printable HTML page (A4 when printed), in the decree's layout. */
export function renderReportHtml(doc: ReportDocument): string {
  const sections = doc.sections
    .map((s) => `<h2>${escapeHtml(s.title)}</h2>${s.paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`).join('')}${s.table === null ? '' : table(s.table)}`)
    .join('\n');
  return `<!DOCTYPE html>
<html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(`${doc.kind} ${doc.subject}`)}</title><style>${STYLE}</style></head>
<body><main>
<div class="head">
<div>${doc.parent === null ? '' : `<p>${escapeHtml(doc.parent)}</p>`}<p class="issuer">${escapeHtml(doc.issuer)}</p><span class="rule"></span><p>${escapeHtml(doc.number)}</p></div>
<div><p class="nation">${escapeHtml(doc.nation)}</p><p class="motto">${escapeHtml(doc.motto)}</p><span class="rule"></span><p class="date">${escapeHtml(doc.placeAndDate)}</p></div>
</div>
<h1>${escapeHtml(doc.kind)}</h1>
<p class="subject">${escapeHtml(doc.subject)}</p>
<p class="to">${escapeHtml(doc.recipient)}</p>
${doc.intro.map((p) => `<p>${escapeHtml(p)}</p>`).join('\n')}
${sections}
<div class="end">
<div class="to-list"><b>Nơi nhận:</b>${doc.recipients.map((r) => `<p>- ${escapeHtml(r)}</p>`).join('')}</div>
<div class="sign"><p>${escapeHtml(doc.signerTitle)}</p><p class="name">${escapeHtml(doc.signerName ?? '')}</p></div>
</div>
</main></body></html>
`;
}
