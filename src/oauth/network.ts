/**
 * Which addresses the gateway may connect to when it talks to identity providers. Unless private
 * networks are allowed (`oauth.allowPrivateNetworks`, development and tests), loopback, private,
 * shared, link-local and unique-local addresses are refused: an admin key must not make the
 * gateway a probe of its own network. Literal addresses are refused when a URL is written (a clear
 * BAD_USER_INPUT) and host names when a connection is made, against the address DNS actually
 * returned for that connection, so a name that resolves elsewhere later (DNS rebinding) gains nothing.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { Agent, buildConnector, type Dispatcher } from 'undici';

/** Every range that is not the public internet, IPv4 and IPv6, including the unspecified addresses. */
const PRIVATE_RANGES: readonly (readonly [string, number, 'ipv4' | 'ipv6'])[] = [
  ['0.0.0.0', 8, 'ipv4'], // "this network"; 0.0.0.0 reaches the local host
  ['10.0.0.0', 8, 'ipv4'],
  ['100.64.0.0', 10, 'ipv4'], // carrier-grade NAT, shared address space
  ['127.0.0.0', 8, 'ipv4'],
  ['169.254.0.0', 16, 'ipv4'], // link-local, cloud metadata services among them
  ['172.16.0.0', 12, 'ipv4'],
  ['192.168.0.0', 16, 'ipv4'],
  ['224.0.0.0', 4, 'ipv4'], // multicast
  ['240.0.0.0', 4, 'ipv4'], // reserved, broadcast
  ['::', 128, 'ipv6'],
  ['::1', 128, 'ipv6'],
  ['fc00::', 7, 'ipv6'], // unique local
  ['fe80::', 10, 'ipv6'], // link-local
  ['ff00::', 8, 'ipv6'], // multicast
];

const PRIVATE = new BlockList();
for (const [network, prefix, family] of PRIVATE_RANGES) PRIVATE.addSubnet(network, prefix, family);

/**
 * IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is refused whatever IPv4 address it carries: no provider
 * publishes one. (Not a BlockList range: BlockList matches IPv4 addresses against such a rule too.)
 */
const IPV4_MAPPED = new BlockList();
IPV4_MAPPED.addSubnet('::ffff:0:0', 96, 'ipv6');

/** The rule, as messages state it. */
export const PRIVATE_NETWORK_RULE =
  'loopback, private and link-local addresses are refused (oauth.allowPrivateNetworks is off)';

function unbracketed(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** True for an IP address (IPv6 possibly in brackets, as in URLs) in a non-public range; false for names. */
export function isPrivateAddress(host: string): boolean {
  const address = unbracketed(host);
  const family = isIP(address);
  if (family === 0) return false;
  if (family === 4) return PRIVATE.check(address, 'ipv4');
  return PRIVATE.check(address, 'ipv6') || IPV4_MAPPED.check(address, 'ipv6');
}

/** The `code` of a PrivateNetworkRefused, as the fetch hook finds it among a failure's causes. */
export const PRIVATE_NETWORK_REFUSED_CODE = 'PRIVATE_NETWORK_REFUSED';

/** Raised at connect time; the transport layer reports it as a refusal, not as an unreachable host. */
export class PrivateNetworkRefused extends Error {
  readonly code = PRIVATE_NETWORK_REFUSED_CODE;

  constructor() {
    super(`identity provider endpoint resolves to a refused address: ${PRIVATE_NETWORK_RULE}`);
    this.name = 'PrivateNetworkRefused';
  }
}

/** `dns.lookup`, refusing the name when any address it resolves to is private. */
const guardedLookup = ((hostname: string, options: LookupOptions, callback: (...args: unknown[]) => void): void => {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
    if (error) return callback(error);
    if (addresses.length === 0 || addresses.some((a) => isPrivateAddress(a.address)))
      return callback(new PrivateNetworkRefused());
    if (options.all === true) return callback(null, addresses);
    const [first] = addresses as [LookupAddress];
    return callback(null, first.address, first.family);
  });
}) as LookupFunction;

/**
 * The dispatcher every identity provider request goes through. Without private networks, each
 * new connection checks the address it is about to use: literal ones here, names in the lookup.
 */
export function createProviderDispatcher(options: { readonly allowPrivateNetworks: boolean }): Dispatcher {
  if (options.allowPrivateNetworks) return new Agent();
  const connectTo = buildConnector({ lookup: guardedLookup });
  return new Agent({
    connect: (target, callback) => {
      if (isPrivateAddress(target.hostname)) {
        callback(new PrivateNetworkRefused(), null);
        return;
      }
      connectTo(target, callback);
    },
  });
}
