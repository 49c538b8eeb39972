import { createPrivateKey, randomBytes } from 'node:crypto';
import type { Forge, ForgeAttribute, ForgeExtension } from 'node-forge';
import type { ExtendedKeyUsage, SubjectSpec } from './pki-plan.ts';

/**
 * Builds and signs X.509 certificates. Node's crypto signs and parses but
 * cannot build a certificate, so node-forge encodes it; it is imported on
 * first use only, so commands that make no certificate never load it.
 * Extensions follow kubeadm's (pkiutil NewSelfSignedCACert, NewSignedCert):
 * CAs get CA:TRUE and keyCertSign, leaves CA:FALSE and one extended usage;
 * all get digitalSignature and keyEncipherment, as kubeadm's RSA keys do.
 */

export interface CertificateTemplate {
  subject: SubjectSpec;
  notBefore: Date;
  notAfter: Date;
  /** The certified public key, SPKI PEM. */
  publicKeyPem: string;
  ca: boolean;
  usage?: ExtendedKeyUsage;
  dns?: readonly string[];
  ips?: readonly string[];
}

/** Who signs: the certificate's own key (a self-signed CA) or an existing CA. */
export type CertificateSigner = { selfSigned: { keyPem: string } } | { ca: { certPem: string; keyPem: string } };

const OID = { commonName: '2.5.4.3', organization: '2.5.4.10', organizationalUnit: '2.5.4.11' } as const;

let forgeModule: Promise<Forge> | undefined;

function loadForge(): Promise<Forge> {
  forgeModule ??= import('node-forge').then((m) => m.default);
  return forgeModule;
}

/** Returns the signed certificate as PEM. Signing keys must be RSA (kubeadm's default algorithm, RSA-2048). */
export async function issueCertificate(template: CertificateTemplate, signer: CertificateSigner): Promise<string> {
  const forge = await loadForge();
  const cert = forge.pki.createCertificate();
  cert.serialNumber = serialNumberHex();
  cert.publicKey = forge.pki.publicKeyFromPem(template.publicKeyPem);
  cert.validity.notBefore = template.notBefore;
  cert.validity.notAfter = template.notAfter;
  const subject = nameAttributes(forge, template.subject);
  cert.setSubject(subject);

  const extensions: ForgeExtension[] = [
    { name: 'basicConstraints', critical: true, cA: template.ca },
    { name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: true, ...(template.ca ? { keyCertSign: true } : {}) },
  ];
  if (template.usage !== undefined) extensions.push({ name: 'extKeyUsage', [template.usage]: true });
  const altNames = [
    ...(template.dns ?? []).map((value) => ({ type: 2 as const, value })),
    ...(template.ips ?? []).map((ip) => ({ type: 7 as const, ip })),
  ];
  if (altNames.length > 0) extensions.push({ name: 'subjectAltName', altNames });
  if (template.ca) extensions.push({ name: 'subjectKeyIdentifier' });

  let signingKeyPem: string;
  if ('selfSigned' in signer) {
    cert.setIssuer(subject);
    signingKeyPem = signer.selfSigned.keyPem;
  } else {
    const caCert = forge.pki.certificateFromPem(signer.ca.certPem);
    // The issuer must be the CA's subject byte for byte (Go matches parents
    // by raw name): the parsed attributes keep their tags, so they re-encode
    // to the same bytes.
    cert.setIssuer(caCert.subject.attributes);
    const ski = caCert.getExtension('subjectKeyIdentifier')?.subjectKeyIdentifier;
    if (ski !== undefined) extensions.push({ name: 'authorityKeyIdentifier', keyIdentifier: forge.util.hexToBytes(ski) });
    signingKeyPem = signer.ca.keyPem;
  }
  cert.setExtensions(extensions);
  cert.sign(forge.pki.privateKeyFromPem(asPkcs1(signingKeyPem)), forge.md.sha256.create());
  return forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n');
}

/** O, OU, CN in that order, as Go's pkix.Name writes them; UTF8String as RFC 5280 asks of new certificates. */
function nameAttributes(forge: Forge, subject: SubjectSpec): ForgeAttribute[] {
  const utf8 = forge.asn1.Type.UTF8;
  return [
    ...subject.organizations.map((value) => ({ type: OID.organization, value, valueTagClass: utf8 })),
    ...subject.organizationalUnits.map((value) => ({ type: OID.organizationalUnit, value, valueTagClass: utf8 })),
    { type: OID.commonName, value: subject.commonName, valueTagClass: utf8 },
  ];
}

/**
 * 128 random bits as a positive DER INTEGER: the first octet is 0x40-0x7f,
 * so the sign bit is clear and no leading zero octet is needed.
 */
function serialNumberHex(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x3f) | 0x40;
  return bytes.toString('hex');
}

/** node-forge reads RSA keys only as PKCS#1 or unencrypted PKCS#8; Node converts whatever it can read. */
function asPkcs1(keyPem: string): string {
  return createPrivateKey(keyPem).export({ type: 'pkcs1', format: 'pem' }).toString();
}
