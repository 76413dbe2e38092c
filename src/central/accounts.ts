import type { SqlConnection } from '../storage/sql.js';
import { createHash, randomBytes } from 'node:crypto';
import { LoginThrottle } from './login-throttle.js';
import { hashPassword } from './passwords.js';
import { StoreError } from './store.js';

/** `tu-van`: a school's counsellor, who reads and handles that school's safeguarding alerts only (docs/safeguarding.md). */
export const ROLES = ['admin', 'school-it', 'viewer', 'tu-van'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/** Who is asking: a dashboard user, or a script holding the admin bearer token. */
export interface Principal {
  readonly name: string;
  readonly role: Role;
  /** Set for `school-it` and `tu-van`: every query is limited to this school. */
  readonly school: string | null;
  /** The school's name, for pages (sessions carry it; the id is for queries). */
  readonly schoolName?: string | null;
}

export interface User extends Principal {
  readonly passwordHash: string;
  readonly createdAt: number;
  /** Set while the account is disabled: it cannot log in and has no sessions. */
  readonly disabledAt: number | null;
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

const NAME_RE = /^[\p{L}\p{N}._@-]{1,64}$/u;

interface UserRow {
  name: string;
  role: Role;
  school: string | null;
  password_hash: string;
  created_at: number;
  disabled_at: number | null;
}

function hashSessionId(id: string): Buffer {
  return createHash('sha256').update(id).digest();
}

/**
 * Dashboard users, server-side sessions, login throttling and the audit log, in the
 * collector's database (tables from the second migration in sqlite-store.ts). Session
 * ids are stored hashed, so a copy of the database opens no session.
 */
export class AccountStore {
  readonly #db: SqlConnection;
  readonly #q;
  /** Failed logins per source address and per (address, name). */
  readonly throttle: LoginThrottle;

  constructor(db: SqlConnection) {
    this.#db = db;
    this.throttle = new LoginThrottle(db, (action, target, after) => this.#record('system', action, target, null, after));
    this.#q = {
      insertUser: db.prepare('INSERT INTO users (name, role, school, password_hash, created_at) VALUES (?, ?, ?, ?, ?)'),
      user: db.prepare<[string], UserRow>('SELECT * FROM users WHERE name = ?'),
      users: db.prepare<[], UserRow>('SELECT * FROM users ORDER BY name'),
      school: db.prepare<[string], { id: string }>('SELECT id FROM schools WHERE id = ?'),
      insertSession: db.prepare('INSERT INTO sessions (id_hash, "user", csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)'),
      session: db.prepare<[Buffer, number], UserRow & { csrf: string; expires_at: number; school_name: string | null }>(
        'SELECT u.*, s.csrf, s.expires_at, (SELECT name FROM schools WHERE id = u.school) AS school_name FROM sessions s JOIN users u ON u.name = s."user" WHERE s.id_hash = ? AND s.expires_at > ? AND u.disabled_at IS NULL',
      ),
      endUserSessions: db.prepare('DELETE FROM sessions WHERE "user" = ?'),
      setDisabled: db.prepare('UPDATE users SET disabled_at = ? WHERE name = ?'),
      setPassword: db.prepare('UPDATE users SET password_hash = ? WHERE name = ?'),
      deleteUser: db.prepare('DELETE FROM users WHERE name = ?'),
      activeAdmins: db.prepare<[], { n: number }>("SELECT count(*) AS n FROM users WHERE role = 'admin' AND disabled_at IS NULL"),
      deleteSession: db.prepare('DELETE FROM sessions WHERE id_hash = ?'),
      purgeSessions: db.prepare('DELETE FROM sessions WHERE expires_at <= ?'),
      audit: db.prepare('INSERT INTO audit_log (at, actor, action, target, before, after) VALUES (?, ?, ?, ?, ?, ?)'),
      auditList: db.prepare<[number], AuditEntry>('SELECT at, actor, action, target, before, after FROM audit_log ORDER BY seq DESC LIMIT ?'),
    };
  }

  /** Adds a user and records it in the audit log, in one transaction. */
  async addUser(actor: string, name: string, role: Role, school: string | null, password: string): Promise<void> {
    if (!NAME_RE.test(name)) throw new StoreError('LACHAN_BAD_USER', 'a user name is 1–64 letters, digits or . _ @ -');
    const ofSchool = role === 'school-it' || role === 'tu-van';
    if (ofSchool && school === null) throw new StoreError('LACHAN_BAD_USER', `a ${role} user needs a school (--school)`);
    if (!ofSchool && school !== null) throw new StoreError('LACHAN_BAD_USER', '--school applies only to the school-it and tu-van roles');
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

  /**
   * Disables (or enables again) an account. Disabling ends its sessions in the same
   * transaction, so a browser still logged in is refused at its next request.
   */
  setDisabled(actor: string, name: string, disabled: boolean): void {
    this.#db.transaction(() => {
      const user = this.#existing(name);
      if (disabled && user.disabledAt === null) this.#keepAnAdmin(user);
      this.#q.setDisabled.run(disabled ? (user.disabledAt ?? Date.now()) : null, name);
      if (disabled) this.#q.endUserSessions.run(name);
      this.#record(actor, disabled ? 'user.disable' : 'user.enable', `user:${name}`, { disabled: user.disabledAt !== null }, { disabled });
    })();
  }

  /** Deletes an account and its sessions; the audit log keeps what it did. */
  deleteUser(actor: string, name: string): void {
    this.#db.transaction(() => {
      const user = this.#existing(name);
      if (user.disabledAt === null) this.#keepAnAdmin(user);
      this.#q.endUserSessions.run(name);
      this.#q.deleteUser.run(name);
      this.#record(actor, 'user.delete', `user:${name}`, { name, role: user.role, school: user.school }, null);
    })();
  }

  /** Sets a new password and ends the account's sessions (whoever knew the old one is logged out). */
  async resetPassword(actor: string, name: string, password: string): Promise<void> {
    if (password.length < 10) throw new StoreError('LACHAN_WEAK_PASSWORD', 'a password is at least 10 characters');
    this.#existing(name);
    const passwordHash = await hashPassword(password);
    this.#db.transaction(() => {
      this.#existing(name);
      this.#q.setPassword.run(passwordHash, name);
      this.#q.endUserSessions.run(name);
      this.#record(actor, 'user.password.reset', `user:${name}`, null, { sessionsEnded: true });
    })();
  }

  #existing(name: string): User {
    const user = this.user(name);
    if (user === null) throw new StoreError('LACHAN_NO_USER', `no user ${name}`);
    return user;
  }

  /** Nobody could manage the dashboard after the last active administrator went. */
  #keepAnAdmin(user: User): void {
    if (user.role === 'admin' && (this.#q.activeAdmins.get()?.n ?? 0) <= 1) {
      throw new StoreError('LACHAN_LAST_ADMIN', `${user.name} is the last active administrator`);
    }
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
    return { user: { name: row.name, role: row.role, school: row.school, schoolName: row.school_name }, csrf: row.csrf, expiresAt: row.expires_at };
  }

  endSession(id: string): void {
    this.#q.deleteSession.run(hashSessionId(id));
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
  return { name: row.name, role: row.role, school: row.school, passwordHash: row.password_hash, createdAt: row.created_at, disabledAt: row.disabled_at };
}
