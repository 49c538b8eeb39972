/**
 * Types for the part of node-forge 1.4 that src/kube/x509-issue.ts uses.
 * node-forge ships no declarations; only what is declared here may be used,
 * and the openssl contract tests (test/contract/kube-pki.test.ts) exercise
 * every member, so a change in node-forge shows up there.
 */
declare module 'node-forge' {
  /** A binary string: one character per byte (node-forge's byte representation). */
  type ForgeBytes = string;

  interface ForgeAttribute {
    /** OID, e.g. 2.5.4.3 for commonName. */
    type: string;
    value: ForgeBytes;
    /** ASN.1 universal tag of the value (asn1.Type.UTF8 ...). */
    valueTagClass?: number;
  }

  interface ForgeName {
    attributes: ForgeAttribute[];
  }

  interface ForgeAltName {
    /** 2 dNSName, 7 iPAddress. */
    type: 2 | 7;
    value?: string;
    ip?: string;
  }

  type ForgeExtension =
    | { name: 'basicConstraints'; critical: boolean; cA: boolean }
    | {
        name: 'keyUsage';
        critical: boolean;
        digitalSignature?: boolean;
        keyEncipherment?: boolean;
        keyCertSign?: boolean;
      }
    | { name: 'extKeyUsage'; critical?: boolean; serverAuth?: boolean; clientAuth?: boolean }
    | { name: 'subjectAltName'; critical?: boolean; altNames: ForgeAltName[] }
    | { name: 'subjectKeyIdentifier' }
    | { name: 'authorityKeyIdentifier'; keyIdentifier: ForgeBytes };

  interface ForgeParsedExtension {
    name: string;
    /** Present on a parsed subjectKeyIdentifier extension, as hex. */
    subjectKeyIdentifier?: string;
  }

  interface ForgePublicKey {
    readonly n: unknown;
  }

  interface ForgePrivateKey {
    readonly d: unknown;
  }

  interface ForgeMessageDigest {
    readonly algorithm: string;
  }

  interface ForgeCertificate {
    /** Hex digits of the INTEGER's content octets. */
    serialNumber: string;
    publicKey: ForgePublicKey;
    validity: { notBefore: Date; notAfter: Date };
    subject: ForgeName;
    issuer: ForgeName;
    setSubject(attributes: ForgeAttribute[]): void;
    setIssuer(attributes: ForgeAttribute[]): void;
    setExtensions(extensions: ForgeExtension[]): void;
    getExtension(name: string): ForgeParsedExtension | null;
    sign(key: ForgePrivateKey, md: ForgeMessageDigest): void;
  }

  interface Forge {
    pki: {
      createCertificate(): ForgeCertificate;
      certificateFromPem(pem: string): ForgeCertificate;
      certificateToPem(cert: ForgeCertificate): string;
      privateKeyFromPem(pem: string): ForgePrivateKey;
      publicKeyFromPem(pem: string): ForgePublicKey;
    };
    md: { sha256: { create(): ForgeMessageDigest } };
    asn1: { Type: { readonly UTF8: number } };
    util: { hexToBytes(hex: string): ForgeBytes };
  }

  const forge: Forge;
  export default forge;
  export type { Forge, ForgeAttribute, ForgeCertificate, ForgeExtension };
}
