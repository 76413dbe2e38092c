/**
 * The proxy auto-configuration file served at /proxy.pac and /wpad.dat: local
 * names and private ranges go direct, everything else through the school proxy.
 */
export function pacFile(proxyHostPort: string): string {
  return `function FindProxyForURL(url, host) {
  if (isPlainHostName(host) || shExpMatch(host, "*.local") ||
      isInNet(dnsResolve(host), "10.0.0.0", "255.0.0.0") ||
      isInNet(dnsResolve(host), "172.16.0.0", "255.240.0.0") ||
      isInNet(dnsResolve(host), "192.168.0.0", "255.255.0.0") ||
      isInNet(dnsResolve(host), "127.0.0.0", "255.0.0.0")) {
    return "DIRECT";
  }
  return "PROXY ${proxyHostPort}";
}
`;
}
