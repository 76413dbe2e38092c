/**
 * Tells a school's contacts about a new alert, or one that became high or critical
 * (docs/safeguarding.md §5): an e-mail to each address (when the collector has an SMTP
 * server) and a POST to the school's webhook. Delivery runs beside ingest and never
 * delays or fails it; a failed delivery is tried again later, a few times, then logged.
 * The message carries no search terms and no device id: those stay on the dashboard.
 */
import nodemailer, { type Transporter } from 'nodemailer';
import { ALERT_CATEGORY_LABELS, type AlertChange, type AlertStore, type CentralAlert, SEVERITY_LABELS, shouldNotify } from './alerts.js';
import { vnDateTime } from './dashboard/vn-time.js';
import type { CollectorLogger } from './server.js';

/** Waits before each new attempt: a mail server restarting, a webhook briefly down. */
export const DELIVERY_RETRY_DELAYS_MS: readonly number[] = [2_000, 15_000, 60_000, 300_000, 1_800_000, 7_200_000];
const WEBHOOK_TIMEOUT_MS = 10_000;

export interface AlertDeliveryOptions {
  readonly alerts: AlertStore;
  readonly logger: CollectorLogger;
  /** `smtp://host:port` (or smtps://, with user:password@ when the server wants it); without it no e-mail. */
  readonly smtpUrl?: string;
  readonly mailFrom?: string;
  readonly retryDelaysMs?: readonly number[];
}

/** What a webhook receives (JSON). */
export interface AlertWebhookBody {
  readonly event: 'alert.new' | 'alert.escalated';
  readonly ref: string;
  readonly school: string;
  readonly schoolName: string | null;
  readonly category: CentralAlert['category'];
  readonly severity: CentralAlert['severity'];
  readonly count: number;
  readonly time: number;
  readonly lastTime: number;
  readonly status: CentralAlert['status'];
}

interface Delivery {
  readonly what: string;
  readonly send: () => Promise<void>;
}

export class AlertDelivery {
  readonly #options: AlertDeliveryOptions;
  readonly #mailer: Transporter | null;
  readonly #timers = new Set<NodeJS.Timeout>();
  #stopped = false;

  constructor(options: AlertDeliveryOptions) {
    this.#options = options;
    this.#mailer = options.smtpUrl === undefined ? null : nodemailer.createTransport(options.smtpUrl);
  }

  /** Queues what `changes` call for; returns at once and never throws. */
  notify(changes: readonly AlertChange[]): void {
    const due = changes.filter(shouldNotify);
    if (due.length === 0 || this.#stopped) return;
    void this.#queue(due).catch((error: unknown) => this.#options.logger.error({ err: error }, 'alert delivery: contacts unreadable'));
  }

  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#mailer?.close();
  }

  async #queue(changes: readonly AlertChange[]): Promise<void> {
    for (const change of changes) {
      const { alert } = change;
      const contacts = await this.#options.alerts.contacts(alert.school);
      const event = change.outcome === 'new' ? 'alert.new' : 'alert.escalated';
      const mailer = this.#mailer;
      if (mailer !== null) {
        for (const to of contacts.emails) {
          this.#attempt({ what: `mail ${to} ${alert.ref}`, send: () => this.#mail(mailer, to, alert, event) }, 0);
        }
      }
      const webhook = contacts.webhook;
      if (webhook !== null) this.#attempt({ what: `webhook ${alert.school} ${alert.ref}`, send: () => postWebhook(webhook, webhookBody(alert, event)) }, 0);
    }
  }

  #attempt(delivery: Delivery, attempt: number): void {
    if (this.#stopped) return;
    delivery.send().then(
      () => this.#options.logger.info({ delivery: delivery.what, attempt: attempt + 1 }, 'alert delivered'),
      (error: unknown) => {
        const delays = this.#options.retryDelaysMs ?? DELIVERY_RETRY_DELAYS_MS;
        const wait = delays[attempt];
        const reason = error instanceof Error ? error.message : String(error);
        if (wait === undefined || this.#stopped) {
          this.#options.logger.error({ delivery: delivery.what, attempts: attempt + 1, reason }, 'alert delivery failed for good');
          return;
        }
        this.#options.logger.warn({ delivery: delivery.what, attempt: attempt + 1, retryInMs: wait, reason }, 'alert delivery failed, will retry');
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          this.#attempt(delivery, attempt + 1);
        }, wait);
        timer.unref();
        this.#timers.add(timer);
      },
    );
  }

  async #mail(mailer: Transporter, to: string, alert: CentralAlert, event: AlertWebhookBody['event']): Promise<void> {
    const severity = SEVERITY_LABELS[alert.severity];
    const category = ALERT_CATEGORY_LABELS[alert.category];
    const school = alert.schoolName ?? alert.school;
    await mailer.sendMail({
      from: this.#options.mailFrom ?? 'lachan@localhost',
      to,
      subject: `[Lá chắn] Cảnh báo ${event === 'alert.new' ? 'mới' : 'tăng mức'}: ${category} (mức ${severity}) — ${school}`,
      text: [
        `Trường: ${school}`,
        `Nhóm: ${category}`,
        `Mức độ: ${severity}`,
        `Lần đầu: ${vnDateTime(alert.time)} (giờ Việt Nam)`,
        `Gần nhất: ${vnDateTime(alert.lastTime)}`,
        `Số tín hiệu: ${alert.count}`,
        `Mã cảnh báo: ${alert.ref}`,
        '',
        'Hãy đăng nhập bảng điều khiển Lá chắn, trang "Cảnh báo", để xem chi tiết, tiếp nhận và xử lý.',
        'Thư này không chứa từ khoá tìm kiếm hay mã thiết bị; máy chủ huyện không biết học sinh là ai.',
      ].join('\n'),
    });
  }
}

function webhookBody(alert: CentralAlert, event: AlertWebhookBody['event']): AlertWebhookBody {
  return {
    event,
    ref: alert.ref,
    school: alert.school,
    schoolName: alert.schoolName,
    category: alert.category,
    severity: alert.severity,
    count: alert.count,
    time: alert.time,
    lastTime: alert.lastTime,
    status: alert.status,
  };
}

async function postWebhook(url: string, body: AlertWebhookBody): Promise<void> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': 'lachan-central' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
    redirect: 'error',
  });
  await response.body?.cancel();
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
}
