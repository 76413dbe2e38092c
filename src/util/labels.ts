/**
 * Vietnamese names of the shipped categories (and of the UT1 ones a school may import)
 * and of the shipped profiles, for every page and report a person reads. One table, so
 * the block page, the dashboard and the yearly report call a category the same thing.
 */
export const CATEGORY_NAMES: Readonly<Record<string, string>> = {
  adult: 'Nội dung người lớn',
  gambling: 'Cờ bạc, cá độ',
  drugs: 'Ma túy, chất cấm',
  drogue: 'Ma túy, chất cấm',
  violence: 'Bạo lực',
  agressif: 'Bạo lực',
  'self-harm': 'Tự gây hại',
  dating: 'Hẹn hò',
  games: 'Trò chơi trực tuyến',
  'social-networks': 'Mạng xã hội',
  social_networks: 'Mạng xã hội',
  vpn: 'VPN / vượt tường lửa',
  redirector: 'Vượt tường lửa',
  strict_redirector: 'Vượt tường lửa',
  doh: 'DNS mã hóa (DoH)',
  malware: 'Phần mềm độc hại',
  phishing: 'Lừa đảo',
  chat: 'Trò chuyện trực tuyến',
  mixed_adult: 'Nội dung người lớn',
  lingerie: 'Nội dung người lớn',
  warez: 'Phần mềm lậu',
  hacking: 'Tấn công mạng',
  sect: 'Tà giáo',
  shortener: 'Rút gọn liên kết',
  custom: 'Danh sách riêng của trường',
  district: 'Danh sách chung của cơ quan quản lý',
};

/** The categories `rules/` ships, in the order the dashboard offers them. */
export const SHIPPED_CATEGORIES: readonly string[] = [
  'adult',
  'gambling',
  'drugs',
  'violence',
  'self-harm',
  'dating',
  'games',
  'social-networks',
  'vpn',
  'doh',
];

export const PROFILE_NAMES: Readonly<Record<string, string>> = {
  'mam-non': 'Mầm non',
  'tieu-hoc': 'Tiểu học',
  thcs: 'Trung học cơ sở',
  thpt: 'Trung học phổ thông',
  'giao-vien': 'Giáo viên',
};

/** The profiles `rules/` ships, youngest first. */
export const SHIPPED_PROFILES: readonly string[] = Object.keys(PROFILE_NAMES);

/** The category as a Vietnamese reader knows it; unknown names are shown as they are. */
export function categoryLabel(category: string | null): string {
  if (category === null) return 'Quy định chung';
  return CATEGORY_NAMES[category] ?? category;
}

export function profileLabel(profile: string): string {
  return PROFILE_NAMES[profile] ?? profile;
}
