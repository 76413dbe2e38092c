import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Policy } from '../policy/engine.js';
import { loadOrCreateSecretFile } from '../events/secret-file.js';
import { ProxyAuthenticator, isValidUserName } from '../proxy/auth.js';
import type { FlowClient } from '../proxy/flow.js';
import type { StaffPageHandler } from '../proxy/gateway-pages.js';
import { sendHtml } from '../proxy/responder.js';
import { readForm } from '../proxy/student-requests.js';
import { organisationOf } from '../rules/loader.js';
import { RateLimiter } from '../util/rate-limit.js';
import { classroomPage, forbiddenPage, loginPage } from './pages.js';
import type { Classroom } from './service.js';

/**
 * The staff page (docs/classroom.md), `/__lachan__/lop-hoc` on the proxy port or on any
 * host through the proxy. Only devices of a staff profile reach it; a teacher signs in
 * with the gateway's users file (the lab accounts), as a user mapped to a staff
 * profile. The session is a signed cookie, so that every worker process of the gateway
 * knows it; each form after login carries a CSRF token derived from the session.
 */
const COOKIE = 'lachan_lop';
const KEY_FILE = 'classroom.key';
const SESSION_MS = 4 * 3_600_000;
/** Per device: five tries, then one a minute. */
const LOGIN_BURST = 5;
const LOGIN_PER_SECOND = 1 / 60;
/** Logged-out sessions remembered by this process until they would have expired anyway. */
const REVOKED_LIMIT = 10_000;

export interface StaffPageOptions {
  readonly classroom: Classroom;
  readonly policy: () => Policy;
  readonly dataDir: string;
  readonly logger: Logger;
}

interface Session {
  readonly user: string;
  readonly token: string;
}

export class StaffPage implements StaffPageHandler {
  private readonly key: Buffer;
  private readonly logins = new RateLimiter(LOGIN_PER_SECOND, LOGIN_BURST);
  private readonly revoked = new Map<string, number>();

  constructor(private readonly options: StaffPageOptions) {
    this.key = sessionKey(options.dataDir, options.logger);
  }

  /** Answers one request for the page; `client` as the proxy settled it (address, profile). Never rejects. */
  async serve(req: IncomingMessage, res: ServerResponse, client: FlowClient, action: string): Promise<void> {
    try {
      await this.answer(req, res, client, action);
    } catch (error) {
      // The data folder refused a write (full, read-only) or the lock stayed held: nothing was changed.
      this.options.logger.error({ err: (error as Error).message }, 'classroom page: change not saved');
      if (res.headersSent) return void res.destroy();
      const school = organisationOf(this.options.policy()).school;
      sendHtml(res, 503, loginPage(action, 'Máy chủ lọc chưa lưu được thay đổi (thư mục dữ liệu đầy hoặc chỉ đọc). Hãy báo cán bộ tin học.', school), false);
    }
  }

  private async answer(req: IncomingMessage, res: ServerResponse, client: FlowClient, action: string): Promise<void> {
    const policy = this.options.policy();
    const school = organisationOf(policy).school;
    if (!this.options.classroom.live.isStaff(client.profile)) {
      req.resume();
      return sendHtml(res, 403, forbiddenPage(school), req.method === 'HEAD');
    }
    const session = this.sessionOf(req, policy);
    if (req.method === 'GET' || req.method === 'HEAD') {
      req.resume();
      if (session === null) return sendHtml(res, 200, loginPage(action, null, school), req.method === 'HEAD');
      return this.sendPage(res, 200, session, action, null, false);
    }
    if (req.method !== 'POST') {
      req.resume();
      return sendHtml(res, 405, loginPage(action, null, school), false, { allow: 'GET, POST' });
    }
    const body = await readForm(req);
    const form = body === null ? null : new URLSearchParams(body);
    if (form === null) return sendHtml(res, 400, loginPage(action, 'Biểu mẫu không hợp lệ.', school), false);
    const what = form.get('do') ?? '';
    if (what === 'login') return this.login(res, form, client, action, policy, school);
    if (session === null || !this.csrfMatches(session, form.get('csrf') ?? '')) {
      return sendHtml(res, 403, loginPage(action, 'Phiên đăng nhập đã hết hoặc không hợp lệ: hãy đăng nhập lại.', school), false);
    }
    const classroom = this.options.classroom;
    if (what === 'logout') {
      if (this.revoked.size >= REVOKED_LIMIT) this.revoked.clear();
      this.revoked.set(session.token, Date.now() + SESSION_MS);
      return sendHtml(res, 200, loginPage(action, null, school), false, { 'set-cookie': cookie('', action, 0) });
    }
    if (what === 'exam-start') {
      const outcome = await classroom.startExam({ room: form.get('room') ?? '', minutes: form.get('minutes') ?? '', by: session.user });
      if ('refused' in outcome) return this.sendPage(res, 400, session, action, outcome.refused, true);
      return this.sendPage(res, 200, session, action, `Đã bắt đầu giờ kiểm tra cho phòng ${outcome.ok.room}.`, false);
    }
    if (what === 'override-start') {
      const outcome = await classroom.startOverride({
        host: form.get('host') ?? '',
        profile: form.get('profile') ?? '',
        room: form.get('room') ?? '',
        minutes: form.get('minutes') ?? '',
        reason: form.get('reason') ?? '',
        by: session.user,
      });
      if ('refused' in outcome) return this.sendPage(res, 400, session, action, outcome.refused, true);
      return this.sendPage(res, 200, session, action, `Đã mở ${outcome.ok.host}.`, false);
    }
    if (what === 'end') {
      const ended = await classroom.end(form.get('id') ?? '', session.user);
      return this.sendPage(res, 200, session, action, ended ? 'Đã kết thúc.' : 'Mục này đã kết thúc từ trước.', !ended);
    }
    return this.sendPage(res, 400, session, action, 'Không rõ thao tác.', true);
  }

  private login(res: ServerResponse, form: URLSearchParams, client: FlowClient, action: string, policy: Policy, school: string | null): void {
    const wait = this.logins.take(client.address);
    if (wait > 0) {
      return sendHtml(res, 429, loginPage(action, `Thử sai nhiều lần: hãy đợi ${wait} giây rồi thử lại.`, school), false, { 'retry-after': String(wait) });
    }
    const name = (form.get('name') ?? '').trim();
    const password = form.get('password') ?? '';
    if (!this.verify(policy, name, password)) return sendHtml(res, 401, loginPage(action, 'Sai tên tài khoản hoặc mật khẩu.', school), false);
    const token = this.sign(name, Date.now() + SESSION_MS);
    const session = { user: name, token };
    res.setHeader('set-cookie', cookie(token, action, SESSION_MS / 1000));
    this.sendPage(res, 200, session, action, null, false);
  }

  /** A staff account: in the users file, with the right password, mapped to a staff profile. */
  private verify(policy: Policy, name: string, password: string): boolean {
    const { usersFile, profiles } = policy.proxyAuth;
    const profile = profiles.get(name);
    if (usersFile === null || !isValidUserName(name) || profile === undefined || !this.options.classroom.live.isStaff(profile)) return false;
    try {
      const result = new ProxyAuthenticator(usersFile).check(`Basic ${Buffer.from(`${name}:${password}`).toString('base64')}`);
      return typeof result === 'object' && result.user === name;
    } catch {
      return false;
    }
  }

  private sendPage(res: ServerResponse, status: number, session: Session, action: string, message: string | null, isError: boolean): void {
    const policy = this.options.policy();
    const live = this.options.classroom.live;
    const { exams, overrides } = this.options.classroom.current();
    const profiles = policy
      .profileIds()
      .filter((id) => !live.isStaff(id))
      .map((id) => [id, policy.profile(id)?.name ?? id] as const);
    const html = classroomPage({
      action,
      user: session.user,
      csrf: this.csrfOf(session.token),
      exams,
      overrides,
      profiles,
      message,
      isError,
      school: organisationOf(policy).school,
    });
    sendHtml(res, status, html, false);
  }

  private sessionOf(req: IncomingMessage, policy: Policy): Session | null {
    const token = readCookie(req.headers.cookie, COOKIE);
    if (token === null) return null;
    const dot = token.lastIndexOf('.');
    if (dot <= 0) return null;
    const payload = token.slice(0, dot);
    if (!safeEqual(token.slice(dot + 1), this.mac(payload))) return null;
    const [user, expires] = Buffer.from(payload, 'base64url').toString('utf8').split('\n');
    const until = Number(expires);
    if (user === undefined || !(until > Date.now()) || (this.revoked.get(token) ?? 0) > Date.now()) return null;
    // An account removed from the staff since it signed in is signed out.
    const profile = policy.proxyAuth.profiles.get(user);
    if (profile === undefined || !this.options.classroom.live.isStaff(profile)) return null;
    return { user, token };
  }

  private sign(user: string, until: number): string {
    const payload = Buffer.from(`${user}\n${until}\n${randomBytes(8).toString('hex')}`).toString('base64url');
    return `${payload}.${this.mac(payload)}`;
  }

  private mac(text: string): string {
    return createHmac('sha256', this.key).update(text).digest('base64url');
  }

  private csrfOf(token: string): string {
    return this.mac(`csrf\n${token}`);
  }

  private csrfMatches(session: Session, csrf: string): boolean {
    return safeEqual(csrf, this.csrfOf(session.token));
  }
}

/**
 * The key sessions are signed with, shared by the gateway's processes through the data
 * folder. A data folder that cannot hold it (read-only disk) must not stop the gateway:
 * this process then signs with a key of its own, and a teacher may have to sign in
 * again when another worker answers.
 */
function sessionKey(dataDir: string, logger: Logger): Buffer {
  try {
    return Buffer.from(
      loadOrCreateSecretFile(path.join(dataDir, KEY_FILE), () => randomBytes(32).toString('hex')),
      'hex',
    );
  } catch (error) {
    logger.warn({ err: (error as Error).message }, 'classroom: cannot keep the session key in the data folder; sessions last as long as this process');
    return randomBytes(32);
  }
}

function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function cookie(value: string, action: string, maxAgeSeconds: number): string {
  return `${COOKIE}=${value}; Path=${action}; Max-Age=${Math.floor(maxAgeSeconds)}; HttpOnly; SameSite=Strict`;
}

function readCookie(header: string | undefined, name: string): string | null {
  if (header === undefined) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}
