import { X509Certificate } from 'node:crypto';

/**
 * What a certificate says about itself, read with Node's own X.509 parser
 * (no dependency to load): for the doctor and for the PKI's decision to keep
 * or reissue a certificate.
 */
export interface CertificateInfo {
  subject: DistinguishedName;
  issuer: DistinguishedName;
  /** dNSName entries, lowercase, in certificate order. */
  dnsNames: string[];
  /** iPAddress entries as Node prints them (IPv4 dotted, IPv6 as eight groups). */
  ipAddresses: string[];
  notBefore: Date;
  notAfter: Date;
  /** Uppercase hex, as openssl prints it. */
  serialNumber: string;
  isCa: boolean;
  /** Extended key usages by name (serverAuth, clientAuth) or OID when unnamed. */
  extendedKeyUsages: string[];
  /** SHA-256 fingerprint, colon-separated uppercase hex. */
  fingerprint256: string;
}

export interface DistinguishedName {
  commonName: string | undefined;
  /** O values; for a Kubernetes client certificate these are its groups. */
  organizations: string[];
  organizationalUnits: string[];
  /** One attribute per line, as Node prints the name (for messages). */
  text: string;
}

const EKU_NAMES: Readonly<Record<string, string>> = {
  '1.3.6.1.5.5.7.3.1': 'serverAuth',
  '1.3.6.1.5.5.7.3.2': 'clientAuth',
};

/** Throws the parser's error when the text holds no PEM certificate. */
export function certificateInfo(pem: string | X509Certificate): CertificateInfo {
  const cert = typeof pem === 'string' ? new X509Certificate(pem) : pem;
  const legacy = cert.toLegacyObject();
  const sans = parseSubjectAltNames(cert.subjectAltName ?? '');
  return {
    subject: distinguishedName(legacy.subject as unknown as NameObject, cert.subject),
    issuer: distinguishedName(legacy.issuer as unknown as NameObject, cert.issuer),
    dnsNames: sans.dns,
    ipAddresses: sans.ips,
    notBefore: cert.validFromDate,
    notAfter: cert.validToDate,
    serialNumber: cert.serialNumber.toUpperCase(),
    isCa: cert.ca,
    extendedKeyUsages: (cert.keyUsage ?? []).map((oid) => EKU_NAMES[oid] ?? oid),
    fingerprint256: cert.fingerprint256,
  };
}

/** Node gives a repeated attribute as an array, a single one as a string. */
type NameObject = Record<string, string | string[] | undefined>;

function distinguishedName(name: NameObject, text: string): DistinguishedName {
  const all = (key: string): string[] => {
    const v = name[key];
    return v === undefined ? [] : Array.isArray(v) ? v : [v];
  };
  return { commonName: all('CN')[0], organizations: all('O'), organizationalUnits: all('OU'), text };
}

/**
 * Splits Node's subjectAltName text ("DNS:a, IP Address:10.0.0.1"). Node
 * quotes a value as a JSON string when it holds a comma, quote or other
 * special character, so entries are split on ", " only outside quotes.
 * Entry types other than DNS and IP Address are left out.
 */
export function parseSubjectAltNames(text: string): { dns: string[]; ips: string[] } {
  const dns: string[] = [];
  const ips: string[] = [];
  let rest = text;
  while (rest.length > 0) {
    const colon = rest.indexOf(':');
    if (colon < 0) break;
    const type = rest.slice(0, colon);
    rest = rest.slice(colon + 1);
    let value: string;
    if (rest.startsWith('"')) {
      const end = closingQuote(rest);
      value = JSON.parse(rest.slice(0, end + 1)) as string;
      rest = rest.slice(end + 1);
    } else {
      const comma = rest.indexOf(', ');
      value = comma < 0 ? rest : rest.slice(0, comma);
      rest = comma < 0 ? '' : rest.slice(comma);
    }
    if (rest.startsWith(', ')) rest = rest.slice(2);
    if (type === 'DNS') dns.push(value.toLowerCase());
    else if (type === 'IP Address') ips.push(value);
  }
  return { dns, ips };
}

function closingQuote(s: string): number {
  for (let i = 1; i < s.length; i++) {
    if (s[i] === '\\') i++;
    else if (s[i] === '"') return i;
  }
  throw new Error(`unterminated quoted value in subjectAltName: ${s}`);
}
