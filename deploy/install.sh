#!/usr/bin/env bash
# Installs lachan on a Debian or Ubuntu gateway from this source tree (built: npm ci &&
# npm run build), or removes it. Safe to run again: it upgrades the program and keeps
# the school's rules, configuration, CA and data.
#
#   sudo deploy/install.sh                          proxy on port 3128 (IPv4 and IPv6)
#   sudo deploy/install.sh --transparent vlan20 --student-nets "10.10.0.0/20"
#                                                   plus transparent mode on that interface
#   sudo deploy/install.sh --uninstall              removes the program, keeps config and data
#   sudo deploy/install.sh --uninstall --purge      removes everything, the user included
#   deploy/install.sh --root DIR …                  lays the files out under DIR only: no user,
#                                                   no systemctl, no nft (for CI and packaging)
#
# Layout: /opt/lachan (program and rules), /etc/lachan (lachan.env, hosts, certs/, the
# nftables rules), /var/lib/lachan (the data folder: deploy/README.md), systemd units in
# /etc/systemd/system, logs in journald.
set -euo pipefail

SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT=/
ACTION=install
PURGE=no
STUDENT_IF=
STUDENT_NETS4="10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16"
STUDENT_NETS6="::/0"
PORT=3128
TRANSPARENT_HTTP=3080
TRANSPARENT_HTTPS=3443

say() { printf 'lachan-install: %s\n' "$*"; }
die() { printf 'lachan-install: lỗi: %s\n' "$*" >&2; exit 2; }

usage() {
  sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  echo
  echo "Options: --root DIR  --transparent IF  --student-nets 'CIDR, …'  --student-nets6 'CIDR, …'"
  echo "         --port N  --transparent-http N  --transparent-https N  --uninstall [--purge]"
}

port_arg() {
  [[ "$2" =~ ^[0-9]+$ ]] && (( $2 >= 1 && $2 <= 65535 )) || die "$1 phải là số cổng (1–65535), không phải \"$2\""
  printf '%s' "$2"
}

while (( $# > 0 )); do
  case "$1" in
    --root) ROOT="${2:?--root cần một thư mục}"; shift 2 ;;
    --uninstall) ACTION=uninstall; shift ;;
    --purge) PURGE=yes; shift ;;
    --transparent) STUDENT_IF="${2:?--transparent cần tên giao diện mạng của học sinh}"; shift 2 ;;
    --student-nets) STUDENT_NETS4="${2:?}"; shift 2 ;;
    --student-nets6) STUDENT_NETS6="${2:?}"; shift 2 ;;
    --port) PORT="$(port_arg --port "${2:-}")"; shift 2 ;;
    --transparent-http) TRANSPARENT_HTTP="$(port_arg --transparent-http "${2:-}")"; shift 2 ;;
    --transparent-https) TRANSPARENT_HTTPS="$(port_arg --transparent-https "${2:-}")"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "không hiểu tuỳ chọn \"$1\" (xem --help)" ;;
  esac
done
[[ "$STUDENT_IF" =~ ^[A-Za-z0-9_.@-]{1,15}$ || -z "$STUDENT_IF" ]] || die "--transparent: \"$STUDENT_IF\" không phải tên giao diện mạng"
for nets in "$STUDENT_NETS4" "$STUDENT_NETS6"; do
  [[ "$nets" =~ ^[0-9A-Fa-f.:/,\ ]+$ ]] || die "--student-nets: \"$nets\" không phải danh sách địa chỉ mạng (CIDR, cách nhau bằng dấu phẩy)"
done

ROOT="$(mkdir -p "$ROOT" && cd "$ROOT" && pwd)"
LIVE=no
[[ "$ROOT" == / ]] && LIVE=yes
P="${ROOT%/}"   # prefix for every path below; empty on the live system
OPT="$P/opt/lachan"
ETC="$P/etc/lachan"
VAR="$P/var/lib/lachan"
UNITS="$P/etc/systemd/system"
JOURNALD="$P/etc/systemd/journald.conf.d/lachan.conf"

if [[ "$LIVE" == yes ]]; then
  (( EUID == 0 )) || die "cần chạy bằng root (sudo), hoặc dùng --root DIR"
  command -v systemctl >/dev/null || die "không thấy systemd (systemctl)"
fi

uninstall() {
  if [[ "$LIVE" == yes ]]; then
    systemctl disable --now lachan.service lachan-nftables.service 2>/dev/null || true
    nft delete table inet lachan 2>/dev/null || true
  fi
  rm -rf "$OPT"
  rm -f "$UNITS/lachan.service" "$UNITS/lachan-nftables.service" "$JOURNALD"
  rmdir "$P/etc/systemd/journald.conf.d" 2>/dev/null || true
  [[ "$LIVE" == yes ]] && systemctl daemon-reload
  if [[ "$PURGE" == yes ]]; then
    rm -rf "$ETC" "$VAR"
    if [[ "$LIVE" == yes ]] && id lachan >/dev/null 2>&1; then userdel lachan; fi
    say "đã gỡ bỏ hết: chương trình, cấu hình, CA của trường và dữ liệu"
  else
    say "đã gỡ bỏ chương trình; cấu hình ($ETC) và dữ liệu ($VAR) vẫn giữ (--purge để xoá)"
  fi
}

# Production dependencies only: the tree's node_modules also holds the test tools.
copy_dependencies() {
  local target="$OPT/node_modules.new" previous=""
  rm -rf "$target" && mkdir -p "$target"
  (cd "$SOURCE" && npm ls --omit=dev --all --parseable 2>/dev/null) | tail -n +2 | sed "s#^$SOURCE/##" | sort | while read -r package; do
    # A package nested in one already copied came with it.
    if [[ -n "$previous" && "$package" == "$previous"/* ]]; then continue; fi
    previous="$package"
    mkdir -p "$OPT/$(dirname "${package/node_modules/node_modules.new}")"
    cp -R "$SOURCE/$package" "$OPT/${package/node_modules/node_modules.new}"
  done
  rm -rf "$OPT/node_modules" && mv "$target" "$OPT/node_modules"
}

install_program() {
  [[ -f "$SOURCE/dist/src/cli/main.js" ]] || die "chưa build: chạy 'npm ci && npm run build' trong $SOURCE trước"
  local node
  node="$(command -v node)" || die "chưa có Node.js 20 (apt-get install nodejs)"
  "$node" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || die "cần Node.js 20 trở lên, đang có $("$node" --version)"

  mkdir -p "$OPT"
  for part in dist deploy; do
    rm -rf "$OPT/$part.new" && cp -R "$SOURCE/$part" "$OPT/$part.new"
    rm -rf "$OPT/$part" && mv "$OPT/$part.new" "$OPT/$part"
  done
  rm -rf "$OPT/dist/test" "$OPT/dist/bench"
  cp "$SOURCE/package.json" "$SOURCE/package-lock.json" "$SOURCE/README.md" "$OPT/"
  copy_dependencies
  # The rules are the school's: installed once; later runs refresh only the bundled lists.
  if [[ -d "$OPT/rules" ]]; then
    rm -rf "$OPT/rules/bundled" && cp -R "$SOURCE/rules/bundled" "$OPT/rules/bundled"
  else
    cp -R "$SOURCE/rules" "$OPT/rules"
  fi

  mkdir -p "$ETC/certs" "$VAR" "$UNITS"
  [[ -f "$ETC/hosts" ]] || printf '# Local names for lachan, /etc/hosts format (docs/contract.md §4).\n' >"$ETC/hosts"
  local options="--host :: --port $PORT" lowest=$PORT
  if [[ -n "$STUDENT_IF" ]]; then
    options+=" --transparent-http $TRANSPARENT_HTTP --transparent-https $TRANSPARENT_HTTPS"
    (( TRANSPARENT_HTTP < lowest )) && lowest=$TRANSPARENT_HTTP
    (( TRANSPARENT_HTTPS < lowest )) && lowest=$TRANSPARENT_HTTPS
  fi
  # lachan.env is the school's to edit afterwards: rewritten only when options are given again.
  if [[ ! -f "$ETC/lachan.env" || -n "$STUDENT_IF" || "$PORT" != 3128 ]]; then
    printf '# Options of `lachan serve` for this gateway (systemctl restart lachan after editing).\nLACHAN_SERVE_OPTIONS="%s"\n' "$options" >"$ETC/lachan.env"
  fi

  sed -e "s#^ExecStart=/usr/bin/node #ExecStart=$node #" "$SOURCE/deploy/lachan.service" >"$UNITS/lachan.service"
  if (( lowest < 1024 )); then
    sed -i -e 's/^CapabilityBoundingSet=$/CapabilityBoundingSet=CAP_NET_BIND_SERVICE/' -e 's/^AmbientCapabilities=$/AmbientCapabilities=CAP_NET_BIND_SERVICE/' "$UNITS/lachan.service"
  fi
  if [[ ! -f "$JOURNALD" ]]; then
    mkdir -p "$(dirname "$JOURNALD")" && cp "$SOURCE/deploy/journald-lachan.conf" "$JOURNALD"
  fi

  if [[ -n "$STUDENT_IF" ]]; then
    sed -e "s#^define STUDENT_IF = .*#define STUDENT_IF = \"$STUDENT_IF\"#" \
      -e "s#^define STUDENT_NETS4 = .*#define STUDENT_NETS4 = { $STUDENT_NETS4 }#" \
      -e "s#^define STUDENT_NETS6 = .*#define STUDENT_NETS6 = { $STUDENT_NETS6 }#" \
      -e "s#^define PROXY_HTTP = .*#define PROXY_HTTP = $TRANSPARENT_HTTP#" \
      -e "s#^define PROXY_HTTPS = .*#define PROXY_HTTPS = $TRANSPARENT_HTTPS#" \
      "$SOURCE/deploy/nftables-transparent.nft" >"$ETC/nftables-transparent.nft"
    cp "$SOURCE/deploy/lachan-nftables.service" "$UNITS/lachan-nftables.service"
    if command -v nft >/dev/null; then nft -c -f "$ETC/nftables-transparent.nft" || die "quy tắc nftables sai: $ETC/nftables-transparent.nft"; fi
  fi

  if [[ "$LIVE" == yes ]]; then
    id lachan >/dev/null 2>&1 || useradd --system --home-dir /var/lib/lachan --no-create-home --shell /usr/sbin/nologin lachan
    chown -R root:root "$OPT" && chmod -R go-w "$OPT"
    chown root:lachan "$ETC" "$ETC/hosts" "$ETC/lachan.env" && chmod 0750 "$ETC"
    chown lachan:lachan "$ETC/certs" "$VAR" && chmod 0750 "$ETC/certs" "$VAR"
    systemctl daemon-reload
    [[ -f "$JOURNALD" ]] && systemctl try-restart systemd-journald.service || true
    if [[ -n "$STUDENT_IF" ]]; then
      command -v nft >/dev/null || apt-get install -y nftables
      systemctl enable lachan-nftables.service && systemctl restart lachan-nftables.service
    fi
    systemctl enable lachan.service && systemctl restart lachan.service
    say "đã cài và chạy: kiểm tra bằng  curl -s http://127.0.0.1:3129/healthz  và  journalctl -u lachan"
  else
    say "đã cài vào $ROOT (không tạo người dùng, không chạy systemctl hay nft)"
  fi
}

if [[ "$ACTION" == uninstall ]]; then uninstall; else install_program; fi
