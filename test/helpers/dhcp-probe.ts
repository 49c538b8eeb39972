/**
 * A minimal DHCP client for tests (no udhcpc/dhclient needed): DISCOVER,
 * OFFER, REQUEST, ACK with the broadcast flag, for a given client MAC, then
 * prints what the server offered as one JSON line. Run inside a network
 * namespace whose only link faces the DHCP server, with an on-link default
 * route so the limited broadcast has a way out.
 *
 *   node dhcp-probe.ts 52:54:00:12:34:56
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';

const mac = process.argv[2] ?? '';
const chaddr = Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
if (chaddr.length !== 6) throw new Error(`usage: dhcp-probe.ts <mac>, got ${mac}`);
const xid = randomBytes(4).readUInt32BE(0);

const DISCOVER = 1;
const OFFER = 2;
const REQUEST = 3;
const ACK = 5;

function packet(type: number, options: Buffer[] = []): Buffer {
  const head = Buffer.alloc(240);
  head[0] = 1; // BOOTREQUEST
  head[1] = 1; // ethernet
  head[2] = 6;
  head.writeUInt32BE(xid, 4);
  head.writeUInt16BE(0x8000, 10); // broadcast replies: we have no address yet
  chaddr.copy(head, 28);
  head.writeUInt32BE(0x63825363, 236);
  return Buffer.concat([head, Buffer.from([53, 1, type]), ...options, Buffer.from([255])]);
}

function ip(buf: Buffer, at = 0): string {
  return [0, 1, 2, 3].map((i) => buf[at + i]).join('.');
}

interface Reply {
  type: number;
  yiaddr: string;
  options: Map<number, Buffer>;
}

function parse(buf: Buffer): Reply | undefined {
  if (buf.length < 240 || buf[0] !== 2 || buf.readUInt32BE(4) !== xid || buf.readUInt32BE(236) !== 0x63825363) return undefined;
  const options = new Map<number, Buffer>();
  for (let i = 240; i < buf.length; ) {
    const code = buf[i] ?? 255;
    if (code === 255) break;
    if (code === 0) {
      i += 1;
      continue;
    }
    const len = buf[i + 1] ?? 0;
    options.set(code, buf.subarray(i + 2, i + 2 + len));
    i += 2 + len;
  }
  return { type: options.get(53)?.[0] ?? 0, yiaddr: ip(buf, 16), options };
}

const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
const send = (p: Buffer) => sock.send(p, 67, '255.255.255.255');
let offer: Reply | undefined;
const giveUp = setTimeout(() => {
  process.stdout.write(`${JSON.stringify({ ok: false, error: offer === undefined ? 'no OFFER' : 'no ACK' })}\n`);
  process.exit(1);
}, 20_000);
const resend = setInterval(() => send(packet(DISCOVER)), 2000);

sock.on('message', (msg) => {
  const r = parse(msg);
  if (r === undefined) return;
  if (r.type === OFFER && offer === undefined) {
    offer = r;
    const server = r.options.get(54) ?? Buffer.alloc(4);
    send(packet(REQUEST, [Buffer.from([50, 4, ...r.yiaddr.split('.').map(Number)]), Buffer.from([54, 4, ...server])]));
  } else if (r.type === ACK && offer !== undefined) {
    clearTimeout(giveUp);
    clearInterval(resend);
    const opt = (code: number) => {
      const b = r.options.get(code);
      return b === undefined ? undefined : Array.from({ length: b.length / 4 }, (_, i) => ip(b, i * 4));
    };
    process.stdout.write(`${JSON.stringify({ ok: true, offered: offer.yiaddr, acked: r.yiaddr, netmask: opt(1)?.[0], router: opt(3), dns: opt(6), server: opt(54)?.[0] })}\n`);
    sock.close();
  }
});
sock.bind(68, '0.0.0.0', () => {
  sock.setBroadcast(true);
  send(packet(DISCOVER));
});
