import type Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import { hashPassword } from './passwords.js';
import { StoreError } from './store.js';

export const ROLES = ['admin', 'school-it', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/** Who is asking: a dashboard user, or a script holding the admin bearer token. */
export interface Principal {
  readonly name: string;
  readonly role: Role;
  /** Set for `school-it`: every query is limited to this school. */
  readonly school: string | null;
}

export interface User extends Principal {
  readonly passwordHash: string;
  readonly createdAt: number;
}

export interface Session {
  readonly user: Principal;
  readonly csrf: string;
  readonly expiresAt: number;
}

export interface AuditEntry {
  readonly at: number;
  readonly actor: string;
  readonly action: string;
  readonly target: string;
  readonly before: string | null;
  readonly after: string | null;
}

export const SESSION_TTL_MS = 12 * 3_600_000;
export const MAX_LOGIN_FAILURES = 5;
export const LOCKOUT_MS = 15 * 60_000;

const NAME_RE = /^[\p{L}\p{N}._@-]{1,64}$/u;

interface UserRow {
  name: string;
  role: Role;
  school: string | null;
  password_hash: string;
  created_at: number;
}

function hashSessionId(id: string): Buffer {
  return createHash('sha256').update(id).digest();
}

/**
 * Dashboard users, server-side sessions, login lockout and the audit log, in the
 * collector's database (tables from the second migration in sqlite-store.ts). Session
 * ids are stored hashed, so a copy of the database opens no session.
 */
export class AccountStore {
  readonly #db: Database.Database;
  readonly #q;

  constructor(db: Database.Database) {
    this.#db = db;
    this.#q = {
      insertUser: db.prepare('INSERT INTO users (name, role, school, password_hash, created_at) VALUES (?, ?, ?, ?, ?)'),
      user: db.prepare<[string], UserRow>('SELECT * FROM users WHERE name = ?'),
      users: db.prepare<[], UserRow>('SELECT * FROM users ORDER BY name'),
      school: db.prepare<[string], { id: string }>('SELECT id FROM schools WHERE id = ?'),
      insertSession: db.prepare('INSERT INTO sessions (id_hash, user, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)'),
      session: db.prepare<[Buffer, number], UserRow & { csrf: string; expires_at: number }>(
        'SELECT u.*, s.csrf, s.expires_at FROM sessions s JOIN users u ON u.name = s.user WHERE s.id_hash = ? AND s.expires_at > ?',
      ),
      deleteSession: db.prepare('DELETE FROM sessions WHERE id_hash = ?'),
      purgeSessions: db.prepare('DELETE FROM sessions WHERE expires_at <= ?'),
      failures: db.prepare<[string], { failures: number; first_at: number; locked_until: number | null }>('SELECT * FROM login_failures WHERE name = ?'),
      setFailures: db.prepare(
        'INSERT INTO login_failures (name, failures, first_at, locked_until) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET failures = excluded.failures, first_at = excluded.first_at, locked_until = excluded.locked_until',
      ),
      clearFailures: db.prepare('DELETE FROM login_failures WHERE name = ?'),
      audit: db.prepare('INSERT INTO audit_log (at, actor, action, target, before, after) VALUES (?, ?, ?, ?, ?, ?)'),
      auditList: db.prepare<[number], AuditEntry>('SELECT at, actor, action, target, before, after FROM audit_log ORDER BY seq DESC LIMIT ?'),
    };
  }

  /** Adds a user and records it in the audit log, in one transaction. */
  async addUser(actor: string, name: string, role: Role, school: string | null, password: string): Promise<void> {
    if (!NAME_RE.test(name)) throw new StoreError('LACHAN_BAD_USER', 'a user name is 1–64 letters, digits or . _ @ -');
    if (role === 'school-it' && school === null) throw new StoreError('LACHAN_BAD_USER', 'a school-it user needs a school (--school)');
    if (role !== 'school-it' && school !== null) throw new StoreError('LACHAN_BAD_USER', '--school applies only to the school-it role');
    if (school !== null && this.#q.school.get(school) === undefined) throw new StoreError('LACHAN_BAD_USER', `no school with id ${school}`);
    if (password.length < 10) throw new StoreError('LACHAN_WEAK_PASSWORD', 'a password is at least 10 characters');
    const passwordHash = await hashPassword(password);
    const now = Date.now();
    this.#db.transaction(() => {
      if (this.#q.user.get(name) !== undefined) throw new StoreError('LACHAN_USER_EXISTS', `user ${name} exists already`);
      this.#q.insertUser.run(name, role, school, passwordHash, now);
      this.#record(actor, 'user.add', `user:${name}`, null, { name, role, school });
    })();
  }

  user(name: string): User | null {
    const row = this.#q.user.get(name);
    return row === undefined ? null : toUser(row);
  }

  users(): User[] {
    return this.#q.users.all().map(toUser);
  }

  /** Starts a session; returns its secret id (the cookie) and CSRF token. */
  createSession(user: string, now = Date.now()): { id: string; csrf: string; expiresAt: number } {
    const id = randomBytes(32).toString('base64url');
    const csrf = randomBytes(24).toString('base64url');
    const expiresAt = now + SESSION_TTL_MS;
    this.#q.purgeSessions.run(now);
    this.#q.insertSession.run(hashSessionId(id), user, csrf, now, expiresAt);
    return { id, csrf, expiresAt };
  }

  session(id: string, now = Date.now()): Session | null {
    const row = this.#q.session.get(hashSessionId(id), now);
    if (row === undefined) return null;
    return { user: { name: row.name, role: row.role, school: row.school }, csrf: row.csrf, expiresAt: row.expires_at };
  }

  endSession(id: string): void {
    this.#q.deleteSession.run(hashSessionId(id));
  }

  /** Milliseconds until `name` may try again, or 0. */
  lockedFor(name: string, now = Date.now()): number {
    const row = this.#q.failures.get(name);
    if (row === undefined || row.locked_until === null) return 0;
    return Math.max(0, row.locked_until - now);
  }

  /** Counts a failed login; the fifth within the lockout window locks the name. Returns true when now locked. */
  loginFailed(name: string, now = Date.now()): boolean {
    const row = this.#q.failures.get(name);
    const fresh = row === undefined || now - row.first_at > LOCKOUT_MS || (row.locked_until !== null && row.locked_until <= now);
    const failures = fresh ? 1 : row.failures + 1;
    const firstAt = fresh ? now : row.first_at;
    const locked = failures >= MAX_LOGIN_FAILURES;
    this.#q.setFailures.run(name, failures, firstAt, locked ? now + LOCKOUT_MS : null);
    if (locked) this.#record('system', 'login.lockout', `user:${name}`, null, { failures, until: new Date(now + LOCKOUT_MS).toISOString() });
    return locked;
  }

  loginSucceeded(name: string): void {
    this.#q.clearFailures.run(name);
  }

  audit(actor: string, action: string, target: string, before: unknown, after: unknown): void {
    this.#record(actor, action, target, before, after);
  }

  auditLog(limit = 500): AuditEntry[] {
    return this.#q.auditList.all(limit);
  }

  #record(actor: string, action: string, target: string, before: unknown, after: unknown): void {
    const json = (value: unknown) => (value === null || value === undefined ? null : JSON.stringify(value));
    this.#q.audit.run(Date.now(), actor, action, target, json(before), json(after));
  }
}

function toUser(row: UserRow): User {
  return { name: row.name, role: row.role, school: row.school, passwordHash: row.password_hash, createdAt: row.created_at };
}
