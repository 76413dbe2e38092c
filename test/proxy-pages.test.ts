import { describe, expect, it } from 'vitest';
import { blockPage, categoryLabel, errorPage, errorStatus } from '../src/proxy/pages.js';

const base = { category: 'gambling', profileId: 'tieu-hoc', profileName: 'Tiểu học' } as const;

describe('block page', () => {
  it('fills the cached template with each host and reference, escaped', () => {
    const first = blockPage({ ...base, host: 'bet.test', reference: 'AB12' });
    const second = blockPage({ ...base, host: 'xn--c-bac-9ya.test', reference: 'CD34' });
    expect(first).toContain('bet.test');
    expect(first).toContain('AB12');
    expect(first).not.toContain('CD34');
    expect(second).toContain('xn--c-bac-9ya.test');
    expect(second).not.toContain('bet.test');
    expect(second).not.toContain('\u0000');
    const hostile = blockPage({ ...base, host: 'a"><script>x</script>', reference: '<b>' });
    expect(hostile).not.toContain('<script>');
    expect(hostile).toContain('&#60;script&#62;');
    // Every slot is filled: the host shows in the text, the details and the review form.
    expect(first.split('bet.test').length - 1).toBe(3);
  });

  it('is Vietnamese, self-contained and carries the hotlines', () => {
    const page = blockPage({ ...base, host: 'bet.test', reference: 'AB12' });
    expect(page).toMatch(/^<!DOCTYPE html>\n<html lang="vi">/);
    expect(page).toContain('Cờ bạc');
    expect(page).toContain('Tiểu học');
    expect(page).toContain('tel:111');
    expect(page).toContain('tel:18001776');
    // Nothing from elsewhere: the one absolute URL is the trust probe, which the gateway answers itself.
    expect(page.replaceAll('src="https://lachan-probe.invalid/', '')).not.toMatch(/(src|href)="https?:/);
  });

  it('puts help first, with caring words, for self-harm', () => {
    const page = blockPage({ ...base, category: 'self-harm', host: 'harm.test', reference: 'ZZ99' });
    const body = page.slice(page.indexOf('<body>'));
    expect(body.indexOf('tel:111')).toBeLessThan(body.indexOf('harm.test'));
    expect(page).toContain('Em không một mình');
    expect(page).not.toContain('Trang này đã bị chặn');
  });

  it('names categories in Vietnamese, UT1 French names too, and unknown ones as they are', () => {
    expect(categoryLabel('adult')).toBe('Nội dung người lớn');
    expect(categoryLabel('drogue')).toContain('Ma túy');
    expect(categoryLabel('agressif')).toBe('Bạo lực');
    expect(categoryLabel('doh')).toBe('DNS mã hóa (DoH)');
    expect(categoryLabel('vpn')).toBe('VPN / vượt tường lửa');
    expect(categoryLabel('truong-rieng')).toBe('truong-rieng');
  });
});

describe('error pages', () => {
  it.each([
    ['bad-request', 400, 'Yêu cầu không hợp lệ'],
    ['headers-too-large', 431, 'quá lớn'],
    ['port', 403, 'Cổng'],
    ['dns', 502, 'Không tìm thấy'],
    ['connect', 502, 'Không kết nối được'],
    ['timeout', 504, 'không trả lời kịp'],
  ] as const)('%s → %i, in Vietnamese', (kind, status, text) => {
    expect(errorStatus(kind)).toBe(status);
    const page = errorPage(kind, 'vi.test');
    expect(page).toContain('<html lang="vi">');
    expect(page).toContain(text);
    expect(page).toContain('vi.test');
  });
});
