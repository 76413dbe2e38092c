import type { ServerResponse } from 'node:http';
import type { Principal } from '../central/accounts.js';
import { HttpError } from '../central/http.js';
import type { CentralStore } from '../central/store.js';
import type { Organisation } from '../rules/organisation.js';
import { buildReportDocument } from './document.js';
import { isReportFormat, renderReport, REPORT_FORMATS } from './render.js';
import { buildYearlyReport } from './yearly.js';

/** Where the dashboard serves the yearly report: `GET /report?year=2026&format=pdf`. */
export const REPORT_DOWNLOAD_PATH = '/report';

/** The reporting year in progress, in Vietnam time: the one the overview's links offer. */
export function currentReportYear(now: Date = new Date()): number {
  return new Date(now.getTime() + 7 * 3_600_000).getUTCFullYear();
}

/**
 * Sends the yearly report as a file to save. It covers every school, so only accounts
 * not limited to one school (administrators and viewers, or the admin token) get it.
 */
export async function sendYearlyReport(response: ServerResponse, who: Principal, url: URL, store: CentralStore, organisation: Organisation): Promise<void> {
  if (who.school !== null) throw new HttpError(403, 'forbidden', 'the yearly report covers every school: office accounts only');
  const yearText = url.searchParams.get('year') ?? String(currentReportYear());
  const format = url.searchParams.get('format') ?? 'pdf';
  if (!/^\d{4}$/.test(yearText) || Number(yearText) < 2020 || Number(yearText) > 2100) throw new HttpError(400, 'bad_request', 'year: a year such as 2026');
  if (!isReportFormat(format)) throw new HttpError(400, 'bad_request', `format: one of ${Object.keys(REPORT_FORMATS).join(', ')}`);
  const report = await buildYearlyReport(store, Number(yearText), organisation);
  const document = buildReportDocument(report, organisation);
  const body = await renderReport(document, format);
  response.writeHead(200, {
    'content-type': REPORT_FORMATS[format],
    'content-length': body.length,
    'content-disposition': `attachment; filename="${document.fileStem}.${format}"`,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  response.end(body);
}
