import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { ReviewRequest, StoredEvent } from '../events/log.js';
import { parseSince } from '../events/since.js';
import { CliError, SINCE_HINT } from './errors.js';

interface LogsOptions {
  data: string;
  since?: string;
  category?: string;
  profile?: string;
  json?: boolean;
  reviews?: boolean;
}

export function registerLogs(program: Command): void {
  program
    .command('logs')
    .description('các lần chặn máy chủ trường này đã ghi')
    .option('--data <dir>', 'thư mục dữ liệu của máy chủ trường', './var')
    .option('--since <when>', SINCE_HINT)
    .option('--category <name>', 'chỉ nhóm nội dung này')
    .option('--profile <id>', 'chỉ hồ sơ này')
    .option('--json', 'mỗi dòng một đối tượng JSON')
    .option('--reviews', 'thay vào đó: các đề nghị xem lại (từ trang chặn) và báo cáo trang chưa bị chặn')
    .action(async (options: LogsOptions) => {
      const { EVENTS_DB_FILE, readEventLog, readReviewRequests } = await import('../events/log.js');
      let since: number | undefined;
      if (options.since !== undefined) {
        const parsed = parseSince(options.since);
        if (parsed === null) throw new CliError(`--since: "${options.since}" không đúng dạng: ${SINCE_HINT}`);
        since = parsed;
      }
      if (!existsSync(path.join(options.data, EVENTS_DB_FILE))) {
        throw new CliError(`không có nhật ký chặn trong ${options.data} (không thấy ${EVENTS_DB_FILE}; --data có đúng là thư mục dữ liệu của máy chủ trường?)`);
      }
      quietOnClosedPipe();
      if (options.reviews) return printReviews(() => readReviewRequests(options.data, since), options.data, options.json === true);
      let events: StoredEvent[];
      try {
        events = readEventLog(options.data, { since, category: options.category, profile: options.profile });
      } catch (error) {
        throw new CliError(`không đọc được nhật ký chặn trong ${options.data}: ${(error as Error).message}`);
      }
      if (options.json) {
        const out = events.map((event) => JSON.stringify(jsonEvent(event))).join('\n');
        if (out.length > 0) process.stdout.write(`${out}\n`);
        return;
      }
      process.stdout.write(formatTable(events));
    });
}

function printReviews(read: () => ReviewRequest[], dataDir: string, json: boolean): void {
  let reviews: ReviewRequest[];
  try {
    reviews = read();
  } catch (error) {
    throw new CliError(`không đọc được các đề nghị xem lại trong ${dataDir}: ${(error as Error).message}`);
  }
  if (json) {
    for (const r of reviews) process.stdout.write(`${JSON.stringify({ ...r, time: new Date(r.time).toISOString() })}\n`);
    return;
  }
  if (reviews.length === 0) return void process.stdout.write('không có đề nghị nào\n');
  for (const r of reviews) {
    const sent = r.shippedAt === null ? 'not sent' : `sent ${localTime(r.shippedAt)}`;
    process.stdout.write(
      `${localTime(r.time)}  ${r.kind}  ${r.eventRef || '-'}  ${r.profile}  ${r.category ?? '-'}  ${r.host}${r.path}  ${r.client}  (${sent})\n    ${r.note.replace(/\s+/g, ' ')}\n`,
    );
  }
  process.stdout.write(`${reviews.length} đề nghị\n`);
}

function jsonEvent(event: StoredEvent): object {
  return {
    id: event.id,
    time: new Date(event.time).toISOString(),
    school: event.school,
    profile: event.profile,
    category: event.category,
    reason: event.reason,
    rule: event.rule,
    source: event.source,
    host: event.host,
    path: event.path,
    method: event.method,
    client: event.client,
    count: event.count ?? 1,
    shipped: event.shippedAt !== null,
  };
}

function localTime(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

const PATH_WIDTH = 40;

/** A plain table sized to its content; paths are cut so one event stays one line. */
export function formatTable(events: readonly StoredEvent[]): string {
  if (events.length === 0) return 'no blocked-access events\n';
  // COUNT: the requests of the visit (a page, its favicon and the CONNECT before them are one event).
  const header = ['TIME', 'PROFILE', 'CATEGORY', 'REASON', 'CLIENT', 'METHOD', 'COUNT', 'HOST', 'PATH'];
  const rows = events.map((e) => [
    localTime(e.time),
    e.profile,
    e.category ?? '-',
    e.reason,
    e.client,
    e.method,
    String(e.count ?? 1),
    e.host,
    e.path.length > PATH_WIDTH ? `${e.path.slice(0, PATH_WIDTH - 1)}…` : e.path,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return `${[line(header), ...rows.map(line)].join('\n')}\n${events.length} event${events.length === 1 ? '' : 's'}\n`;
}

/** `lachan logs | head` closes the pipe early: that is the reader's choice, not an error. */
export function quietOnClosedPipe(): void {
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
}
