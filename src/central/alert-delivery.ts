/**
 * Tells a school's contacts about a new alert, or one that became high or critical
 * (docs/safeguarding.md §5): an e-mail to each address (when the collector has an SMTP
 * server) and a POST to the school's webhook. The store queues each message in the
 * transaction that stores the alert (the outbox, alerts.ts); this sends what is due,
 * beside ingest, never delaying or failing it. A failed message is due again later, a
 * few times, then given up and logged; one taken but not settled (the process stopped)
 * is taken again when its lease ends, so a message is sent at least once.
 * The message carries no search terms and no device id: those stay on the dashboard.
 */
import nodemailer, { type Transporter } from 'nodemailer';
import { ALERT_CATEGORY_LABELS, type AlertChange, type AlertStore, type CentralAlert, type DeliveryJob, SEVERITY_LABELS, shouldNotify } from './alerts.js';
import { vnDateTime } from './dashboard/vn-time.js';
import type { CollectorLogger } from './server.js';

/** Waits before each new attempt: a mail server restarting, a webhook briefly down. */
export const DELIVERY_RETRY_DELAYS_MS: readonly number[] = [2_000, 15_000, 60_000, 300_000, 1_800_000, 7_200_000];
const WEBHOOK_TIMEOUT_MS = 10_000;
/** Longer than any one attempt may take (SMTP and webhook time out well before). */
const LEASE_MS = 120_000;
/** How often the outbox is read when no ingest wakes it (a retry falling due, another process's alert). */
const POLL_MS = 1_000;
const BATCH = 20;

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
  readonly event: DeliveryJob['event'];
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

export class AlertDelivery {
  readonly #options: AlertDeliveryOptions;
  readonly #mailer: Transporter | null;
  readonly #timer: NodeJS.Timeout;
  #running = false;
  #again = false;
  #stopped = false;

  constructor(options: AlertDeliveryOptions) {
    this.#options = options;
    this.#mailer =
      options.smtpUrl === undefined
        ? null
        : nodemailer.createTransport({ url: options.smtpUrl, connectionTimeout: 15_000, greetingTimeout: 15_000, socketTimeout: 30_000 });
    this.#timer = setInterval(() => this.#wake(), POLL_MS);
    this.#timer.unref();
  }

  /** After an ingest: sends what it queued now rather than at the next poll. Never throws. */
  notify(changes: readonly AlertChange[]): void {
    if (changes.some(shouldNotify)) this.#wake();
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#mailer?.close();
  }

  #wake(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    this.#drain()
      .catch((error: unknown) => this.#options.logger.error({ err: error }, 'alert delivery: outbox unreadable'))
      .finally(() => {
        this.#running = false;
        if (this.#again) {
          this.#again = false;
          this.#wake();
        }
      });
  }

  async #drain(): Promise<void> {
    for (;;) {
      const jobs = await this.#options.alerts.claimDeliveries(Date.now(), LEASE_MS, BATCH);
      if (jobs.length === 0 || this.#stopped) return;
      await Promise.all(jobs.map((job) => this.#deliver(job)));
      if (jobs.length < BATCH) return;
    }
  }

  async #deliver(job: DeliveryJob): Promise<void> {
    const what = `${job.channel} ${job.target} ${job.alert?.ref ?? '(expired)'}`;
    const { logger } = this.#options;
    try {
      if (job.alert === null) return await this.#options.alerts.settleDelivery(job.id, null);
      if (job.channel === 'email' && this.#mailer === null) {
        // Retrying would not help: the collector has no mail server until it is restarted with one.
        logger.warn({ delivery: what }, 'alert e-mail dropped: no mail server (lachan central serve --smtp)');
        return await this.#options.alerts.settleDelivery(job.id, null);
      }
      await this.#send(job, job.alert);
      logger.info({ delivery: what, attempt: job.attempts + 1 }, 'alert delivered');
      await this.#options.alerts.settleDelivery(job.id, null);
    } catch (error) {
      const wait = (this.#options.retryDelaysMs ?? DELIVERY_RETRY_DELAYS_MS)[job.attempts];
      const reason = error instanceof Error ? error.message : String(error);
      if (wait === undefined) logger.error({ delivery: what, attempts: job.attempts + 1, reason }, 'alert delivery failed for good');
      else logger.warn({ delivery: what, attempt: job.attempts + 1, retryInMs: wait, reason }, 'alert delivery failed, will retry');
      await this.#options.alerts.settleDelivery(job.id, wait === undefined ? null : Date.now() + wait);
    }
  }

  async #send(job: DeliveryJob, alert: CentralAlert): Promise<void> {
    if (job.channel === 'webhook') return postWebhook(job.target, webhookBody(alert, job.event));
    if (this.#mailer === null) throw new Error('no mail server');
    const severity = SEVERITY_LABELS[alert.severity];
    const category = ALERT_CATEGORY_LABELS[alert.category];
    const school = alert.schoolName ?? alert.school;
    await this.#mailer.sendMail({
      from: this.#options.mailFrom ?? 'lachan@localhost',
      to: job.target,
      subject: `[Lá chắn] Cảnh báo ${job.event === 'alert.new' ? 'mới' : 'tăng mức'}: ${category} (mức ${severity}) — ${school}`,
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

function webhookBody(alert: CentralAlert, event: DeliveryJob['event']): AlertWebhookBody {
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
