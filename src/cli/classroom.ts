import type { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { readClassroom, type ExamEntry, type OverrideEntry } from '../classroom/store.js';
import { formatVietnamTime } from '../privacy/vietnam-time.js';
import { CliError } from './errors.js';

/**
 * `lachan classroom list` (docs/classroom.md): the exams and teachers' overrides in
 * force on this gateway, for IT staff. Read-only: teachers start and end them on the
 * staff page, where each change is audited.
 */
export function registerClassroom(program: Command): void {
  const classroom = program.command('classroom').description('giờ kiểm tra và trang thầy cô mở tạm thời');
  classroom
    .command('list')
    .description('các giờ kiểm tra và trang được mở đang có hiệu lực')
    .option('--data <dir>', 'thư mục dữ liệu của máy chủ trường', './var')
    .option('--json', 'mỗi dòng một đối tượng JSON')
    .action((options: { data: string; json?: boolean }) => {
      if (!existsSync(options.data) || !statSync(options.data).isDirectory()) throw new CliError(`không có thư mục dữ liệu ${options.data}`);
      let unreadable: string | null = null;
      const state = readClassroom(options.data, (why) => {
        unreadable = why;
      });
      if (unreadable !== null) throw new CliError(`không đọc được ${options.data}/classroom.json: ${unreadable}`);
      const now = Date.now();
      const exams = state.exams.filter((e) => e.endsAt > now);
      const overrides = state.overrides.filter((o) => o.endsAt > now);
      if (options.json) {
        const lines = [...exams.map((e) => ({ kind: 'exam', ...e })), ...overrides.map((o) => ({ kind: 'override', ...o }))];
        if (lines.length > 0) process.stdout.write(`${lines.map((line) => JSON.stringify(line)).join('\n')}\n`);
        return;
      }
      if (exams.length === 0 && overrides.length === 0) {
        process.stdout.write('không có giờ kiểm tra hay trang nào đang được mở\n');
        return;
      }
      for (const exam of exams) process.stdout.write(`${examLine(exam)}\n`);
      for (const override of overrides) process.stdout.write(`${overrideLine(override)}\n`);
    });
}

function examLine(exam: ExamEntry): string {
  return `kiểm tra  phòng ${exam.room}  đến ${formatVietnamTime(exam.endsAt)}  (${exam.by}, ${exam.id})`;
}

function overrideLine(override: OverrideEntry): string {
  const scope = 'profile' in override.scope ? `hồ sơ ${override.scope.profile}` : `phòng ${override.scope.room}`;
  return `mở        ${override.host} cho ${scope}  đến ${formatVietnamTime(override.endsAt)}  "${override.reason}"  (${override.by}, ${override.id})`;
}
