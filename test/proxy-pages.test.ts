import { describe, expect, it } from 'vitest';
import { blockPage, categoryLabel, errorPage, errorStatus } from '../src/proxy/pages.js';
import { DEFAULT_ORGANISATION } from '../src/rules/organisation.js';

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

  it('speaks plainly to a child: no jargon, no status code, a way back', () => {
    const page = blockPage({ ...base, host: 'bet.test', reference: 'AB12' });
    for (const jargon of ['Nhóm truy cập', 'Mã tham chiếu', 'mã 403', '403']) expect(page).not.toContain(jargon);
    expect(page).toContain('Em không làm gì sai cả');
    expect(page).toContain('history.back()');
    expect(page).toContain('Đừng ghi họ tên');
  });

  it('says a blocked search was blocked, not the search engine, and offers another search', () => {
    const search = blockPage({ ...base, category: 'adult', host: 'www.google.com', reference: 'S1', reason: 'keyword' });
    expect(search).toContain('<h1>Tìm kiếm này đã bị chặn</h1>');
    expect(search).not.toContain('Trang này đã bị chặn');
    expect(search).not.toContain('không mở trang <b>www.google.com</b>');
    expect(search).toContain('href="//www.google.com/"');
    // The same engine blocked by its domain is a blocked site.
    const site = blockPage({ ...base, category: 'adult', host: 'www.google.com', reference: 'S2', reason: 'domain' });
    expect(site).toContain('<h1>Trang này đã bị chặn</h1>');
    // A keyword on an ordinary site blocks that page.
    expect(blockPage({ ...base, host: 'tin.test', reference: 'S3', reason: 'keyword' })).toContain('<h1>Trang này đã bị chặn</h1>');
  });

  it('takes the school and the provincial hotline from the organisation; 111 stays', () => {
    const organisation = {
      ...DEFAULT_ORGANISATION,
      school: 'Trường Tiểu học Kim Đồng',
      hotline: { number: '02143840111', display: '0214 3840 111', label: 'Đường dây nóng tỉnh Lào Cai' },
    };
    const page = blockPage({ ...base, host: 'bet.test', reference: 'AB12', organisation });
    expect(page).toContain('tel:02143840111');
    expect(page).toContain('Đường dây nóng tỉnh Lào Cai');
    expect(page).not.toContain('18001776');
    expect(page).not.toContain('Yên Bái');
    expect(page).toContain('tel:111');
    expect(page).toContain('Trường Tiểu học Kim Đồng');
    // The default page, rendered from its own cached template, is unchanged.
    expect(blockPage({ ...base, host: 'bet.test', reference: 'AB12' })).toContain('Đường dây hỗ trợ Yên Bái');
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
    ['bad-request', 400, 'yêu cầu lạ'],
    ['headers-too-large', 431, 'quá lớn'],
    ['port', 403, 'không được phép'],
    ['dns', 502, 'Không tìm thấy'],
    ['refused', 502, 'Trang web đang tắt'],
    ['connect', 502, 'Trang web bị lỗi'],
    ['timeout', 504, 'không trả lời kịp'],
  ] as const)('%s → %i, in Vietnamese, with a way back and no status code shown', (kind, status, text) => {
    expect(errorStatus(kind)).toBe(status);
    const page = errorPage(kind, 'vi.test');
    expect(page).toContain('<html lang="vi">');
    expect(page).toContain(text);
    expect(page).toContain('vi.test');
    expect(page).toContain('Quay lại');
    expect(page).not.toMatch(/mã \d{3}/);
  });

  it('tells a refused site (down: try later) from a slow one (wait and reload)', () => {
    const refused = errorPage('refused', 'a.test');
    const slow = errorPage('timeout', 'a.test');
    expect(refused).toContain('đang tắt');
    expect(refused).not.toContain('chậm');
    expect(slow).toContain('chậm');
    expect(slow).not.toContain('đang tắt');
  });
});
