import { parseCidr } from '../../src/host/ipv4.ts';
import { invalid, oneOf } from '../../src/profile/setting-parsers.ts';
import type { SettingDefinition } from '../../src/profile/setting-parsers.ts';

/**
 * A Hyper-V switch or adapter name as the user typed it: it enters scripts
 * only as a quoted literal, so any character is safe there; control
 * characters and surrounding blanks are refused because they could only be
 * a mistake, and Hyper-V's own limit is well under 256 characters.
 */
function parseObjectName(what: string) {
  return (raw: string, origin: string): string => {
    const v = raw.trim();
    if (v === '') return '';
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(v) || v.length > 255) throw invalid(origin, raw, `${what}: up to 255 characters, no control characters (or empty for none)`);
    return v;
  };
}

function parseNatSubnet(raw: string, origin: string): string {
  const v = raw.trim();
  if (v === 'auto') return v;
  const net = parseCidr(v);
  if (net === undefined || !v.includes('/') || net.prefix < 16 || net.prefix > 29) {
    throw invalid(origin, raw, 'auto, or an IPv4 network with a prefix between /16 and /29 such as 172.31.240.0/24');
  }
  return v;
}

/** The Hyper-V driver's own settings; `start` offers each as a flag. */
export const HYPERV_SETTINGS: readonly SettingDefinition[] = [
  {
    key: 'hyperv-nat',
    driver: 'hyperv',
    description: 'how the devcluster switch reaches the outside: winnat (a NetNat and a static guest address; the address survives reboots) or ics (Internet Connection Sharing, DHCP in 192.168.137.0/24)',
    scope: 'any',
    defaultValue: 'winnat',
    accepts: 'winnat | ics',
    parse: oneOf(['winnat', 'ics']),
  },
  {
    key: 'hyperv-nat-subnet',
    driver: 'hyperv',
    description: 'the subnet of the devcluster switch with --hyperv-nat=winnat: auto picks a /24 no route, address or other NetNat uses',
    scope: 'any',
    defaultValue: 'auto',
    accepts: 'auto | an IPv4 CIDR (/16 to /29)',
    parse: parseNatSubnet,
  },
  {
    key: 'hyperv-virtual-switch',
    driver: 'hyperv',
    description: 'use this existing virtual switch instead of creating one ("Default Switch" is found by its fixed Id, whatever its localized name); the address then comes from its DHCP',
    scope: 'any',
    defaultValue: '',
    accepts: 'a switch name, or empty for devcluster\'s own switch',
    parse: parseObjectName('a switch name'),
  },
  {
    key: 'hyperv-external-adapter',
    driver: 'hyperv',
    description: 'bridge the VM onto this physical adapter (name or description) through an External switch, created when none is bound to it',
    scope: 'any',
    defaultValue: '',
    accepts: 'an adapter name or description, or empty',
    parse: parseObjectName('an adapter name'),
  },
];
