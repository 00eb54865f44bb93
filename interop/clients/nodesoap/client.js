#!/usr/bin/env node
// node-soap interop client for the siobroker SyncChannel v10 SendMessage endpoint.
//
// It plays a state system written in Node.js: it loads the broker's WSDL with node-soap (soap@1.13.0,
// pinned in package.json), signs the request with node-soap's WSSecurityCert in its default shape
// (BinarySecurityToken + Timestamp + Body), calls SendMessage, parses the reply with the WSDL and
// verifies the reply's signature with xml-crypto, the library node-soap itself signs with. node-soap
// does not verify signed responses itself, so the verification here is xml-crypto's
// SignedXml.checkSignature, given the signer's certificate.
//
// Install the dependencies outside the repository and run:
//
//   NODE_PATH="$(interop/clients/nodesoap/install.sh)" node interop/clients/nodesoap/client.js \
//       --url http://127.0.0.1:8080/SyncChannel/v10 \
//       --cert data/pki/users/750312300458.pem --key data/pki/users/750312300458.key \
//       --ca data/pki/ca.pem --broker-cert data/pki/broker.pem \
//       --basis 1 --case 261500031000123 --article 216 --subject 810803325634 --services 1,5 \
//       --dump-request request.xml --dump-reply reply.xml
//
// stdout is one JSON object:
//   {"ok":bool,"fault":{"faultcode","faultstring","errorCode"}|null,"status":"SCSS001"|null,
//    "services":[{"no":1,"status":"ok","reason":"OK"},...],"replySignatureVerified":bool,
//    "verifyError":string|null}
// plus "error" (a string) when exit code is 2. "ok" is true when the reply is not a fault, was parsed,
// and its signature verified.
//
// Exit codes: 0 a reply was received and parsed (whether or not its signature verified: see
// replySignatureVerified/verifyError), 1 a SOAP fault, 2 anything else (usage, network, unparsable
// reply). Diagnostics go to stderr.
//
// --ws-options JSON is passed as WSSecurityCert's options argument (e.g.
// '{"signerOptions":{"idMode":"wssecurity"}}'); without it node-soap's defaults are used unchanged.
// --verify-reply FILE only verifies a saved reply (same JSON; exit 0 whether or not it verifies).
// --query-form object (default) passes q:query as a node-soap object with prefixed keys;
// --query-form xml passes it as raw XML through node-soap's $xml key.
//
// AsyncChannel v10 (--channel async; --url is then the AsyncChannel endpoint, e.g.
// http://127.0.0.1:8080/AsyncChannel/v10): the client loads that endpoint's WSDL (which imports
// ?wsdl=async-channel-v10-interface.wsdl and its XSDs) with node-soap and runs the gateway's whole
// flow through node-soap's generated methods (client.sendMessageAsync, ...), every call signed by one
// WSSecurityCert in its default shape (BinarySecurityToken + Timestamp + Body) and every answer
// verified with xml-crypto as above (--broker-cert, --ca):
//
//   sendMessage               messageInfo (serviceId, messageType REQUEST, no messageId or
//                             correlationId, messageDate now, sender) and messageData/data: q:query
//   getMessageStatus          of the acknowledged id, every --poll-interval seconds (default 0.2)
//                             until it is no longer ON_DELIVERY (at most --poll-timeout, default 20)
//   getMessages               by correlationId = the acknowledged id: the chain's RESPONSE, whose
//                             q:result node-soap parses into an object (data is xsd:anyType)
//   getMessages               by serviceId alone: the mailbox before the receipt
//   getMessageStatus          of the RESPONSE's messageId (before the receipt)
//   sendDeliveryNotification  MESSAGE_ACCEPTED / NOT_RESEND for the RESPONSE's messageId
//   getMessageStatus          of the RESPONSE's messageId (after the receipt)
//   getMessages               by serviceId alone: the mailbox after the receipt
//
// messageData/data is xsd:anyType in this WSDL, and node-soap writes what it is given there without
// a schema: a key 'q:x' keeps its prefix, but a repeated element (an array under 'q:service') loses
// it (<service>, in no namespace), and node-soap's attributes.xsi_type writes xsi:type="q:Query" on
// data but leaves the children unqualified, in the object's key order. So in --channel async:
//   --query-form object (default)  data: {query: {attributes: {xmlns: Q}, basis, case: {number, ...},
//                                  subject: {iin}, services: {service: [...]}, purpose}}: node-soap
//                                  writes <query xmlns="urn:kz:sio-pso:broker:v1">, every child in
//                                  that default namespace, in the XSD's order (the keys' order)
//   --query-form xml               data: {$xml: '<q:query xmlns:q="...">...</q:query>'}
// Every call's dates are taken to the millisecond, a fresh millisecond for every call: the broker
// refuses signed content (the Body) it has already received, node-soap's Timestamp has whole
// seconds, and the Ids WSSecurityCert gives the Body and the Timestamp come from xml-crypto's
// counter, which a reused WSSecurityCert carries on (_0 and _1, then _2 and _3, ...) but which
// starts at _0 in every process.
//
// --async-fault KIND[,KIND...] replaces the flow with the calls that provoke these faults, in order:
//   others-case      sendMessage of the query as given: --case must be a case not the signer's
//   unknown-id       getMessageStatus of --fault-id
//   unknown-chain    getMessages by correlationId --fault-id
//   unknown-receipt  sendDeliveryNotification (MESSAGE_ACCEPTED) of messageId --fault-id
// --fault-id defaults to a fresh UUID, an id the broker never issued.
// --dump-dir DIR writes each call's exact bytes as DIR/NN-OPERATION-request.xml and
// DIR/NN-OPERATION-reply.xml (--dump-request and --dump-reply are for the sync mode).
//
// Output, async: one JSON object on stdout, as the zeep and WSS4J clients print it:
//   {"ok","channel":"async","queryForm","ack":{"messageId","correlationId","responseDate",
//    "sessionId"}|null,"requestStates":[...],"polls","chainMessages","response":{"messageId",
//    "correlationId","serviceId","messageType","messageDate","senderId"}|null,"result":{
//    "requestMessageId","signerIin"}|null,"services":[{"no","status","reason"}],"parsedBy":
//    "node-soap"|null,"parseError","responseStates":{"beforeReceipt","afterReceipt"},"receipt":{
//    "notificationId","responseDate","sessionId"}|null,"mailbox":{"before":{"count","hasResponse"}|
//    null,"after":...},"calls":[{"operation","httpStatus","fault","signed","signatureVerified",
//    "verifyError","bodySigned","request","reply"}],"answersVerified","faults":[{"operation",
//    "provoked","faultcode","faultstring","errorCode","detailElement","detailNamespace"}],"error"}
// ok: the flow ran to its end with every answer that is not a fault verified (with --async-fault:
// every provoked call was refused with a fault). Exit status: 0 the flow ran to its end; 1 a SOAP
// fault ended it, or every provoked call was refused with a fault; 2 any other error.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');
const { parseArgs } = require('util');

const soap = require('soap');
// The copies node-soap itself uses, wherever npm placed them.
const soapDir = path.dirname(require.resolve('soap/package.json'));
const fromSoap = (name) => require(require.resolve(name, { paths: [soapDir] }));
const xmlCrypto = fromSoap('xml-crypto');
const xmlCryptoDir = path.dirname(require.resolve('xml-crypto/package.json', { paths: [soapDir] }));
const fromXmlCrypto = (name) => require(require.resolve(name, { paths: [xmlCryptoDir] }));
const { DOMParser } = fromXmlCrypto('@xmldom/xmldom');
const xpath = fromXmlCrypto('xpath');
const axios = fromSoap('axios');

const NS = {
  soap11: 'http://schemas.xmlsoap.org/soap/envelope/',
  wsse: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd',
  wsu: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd',
  ds: 'http://www.w3.org/2000/09/xmldsig#',
  q: 'urn:kz:sio-pso:broker:v1',
};

const ASYNC_FAULTS = ['others-case', 'unknown-id', 'unknown-chain', 'unknown-receipt'];

class UsageError extends Error {}

function usage() {
  return [
    'usage: client.js --url URL --cert PEM --key PEM [--key-password PW] [--ca PEM] [--broker-cert PEM]',
    '                 --basis N --case NUMBER [--instruction-no S] [--requesting-body S] [--covering-letter-no S]',
    '                 [--year YYYY] [--court S] [--article A] (--subject IIN | --subject-bin BIN) --services 1,5',
    '                 [--purpose TEXT] [--sender-id ID] [--service-id ID] [--query-form object|xml]',
    '                 [--ws-options JSON] [--timeout MS] [--dump-request FILE] [--dump-reply FILE]',
    '       client.js --channel async --url ASYNC_URL ... [--query-form object|xml] [--async-fault KIND[,KIND...]]',
    '                 [--fault-id ID] [--dump-dir DIR] [--poll-interval SECONDS] [--poll-timeout SECONDS]',
    '       client.js --verify-reply FILE (--broker-cert PEM | --ca PEM | both)',
  ].join('\n');
}

function parseCli(argv) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      'url': { type: 'string' },
      'cert': { type: 'string' },
      'key': { type: 'string' },
      'key-password': { type: 'string', default: '' },
      'ca': { type: 'string' },
      'broker-cert': { type: 'string' },
      'basis': { type: 'string' },
      'case': { type: 'string' },
      'instruction-no': { type: 'string' },
      'requesting-body': { type: 'string' },
      'covering-letter-no': { type: 'string' },
      'year': { type: 'string' },
      'court': { type: 'string' },
      'article': { type: 'string' },
      'subject': { type: 'string' },
      'subject-bin': { type: 'string' },
      'services': { type: 'string' },
      'purpose': { type: 'string', default: 'проверка по материалам дела' },
      'sender-id': { type: 'string', default: 'SIO_PSO_CLIENT' },
      'service-id': { type: 'string', default: 'SIO_PSO_QUERY' },
      'query-form': { type: 'string', default: 'object' },
      'ws-options': { type: 'string' },
      'timeout': { type: 'string', default: '30000' },
      'dump-request': { type: 'string' },
      'dump-reply': { type: 'string' },
      'verify-reply': { type: 'string' },
      'channel': { type: 'string', default: 'sync' },
      'async-fault': { type: 'string' },
      'fault-id': { type: 'string' },
      'dump-dir': { type: 'string' },
      'poll-interval': { type: 'string', default: '0.2' },
      'poll-timeout': { type: 'string', default: '20' },
      'help': { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stderr.write(usage() + '\n');
    process.exit(0);
  }
  if (values['verify-reply']) {
    if (!values['broker-cert'] && !values.ca) throw new UsageError('--verify-reply needs --broker-cert or --ca');
    return values;
  }
  for (const req of ['url', 'cert', 'key', 'basis', 'case', 'services']) {
    if (!values[req]) throw new UsageError(`--${req} is required`);
  }
  if (!values.subject === !values['subject-bin']) throw new UsageError('exactly one of --subject and --subject-bin is required');
  if (!['object', 'xml'].includes(values['query-form'])) throw new UsageError('--query-form is object or xml');
  if (!['sync', 'async'].includes(values.channel)) throw new UsageError('--channel is sync or async');
  if (values['async-fault'] !== undefined) {
    const kinds = values['async-fault'].split(',').map((k) => k.trim()).filter(Boolean);
    if (values.channel !== 'async' || kinds.length === 0 || kinds.some((k) => !ASYNC_FAULTS.includes(k))) {
      throw new UsageError(`--async-fault takes ${ASYNC_FAULTS.join(', ')}, with --channel async (got ${values['async-fault']})`);
    }
    values.asyncFaults = kinds;
  }
  for (const flag of ['poll-interval', 'poll-timeout']) {
    if (!/^\d+(\.\d+)?$/.test(values[flag])) throw new UsageError(`--${flag} is in seconds`);
  }
  const services = values.services.split(',').map((s) => s.trim()).filter(Boolean);
  if (services.length === 0 || services.some((s) => !/^\d+$/.test(s))) throw new UsageError('--services is a comma-separated list of service numbers');
  values.serviceList = services;
  if (!/^\d+$/.test(values.timeout)) throw new UsageError('--timeout is in milliseconds');
  if (values['ws-options']) {
    try {
      values.wsOptions = JSON.parse(values['ws-options']);
    } catch (e) {
      throw new UsageError(`--ws-options: ${e.message}`);
    }
  }
  return values;
}

// The first PEM block of the given label; the demo PKI puts a comment line before it.
function readPem(file, labelRe) {
  const text = fs.readFileSync(file, 'utf8');
  const m = text.match(new RegExp(`-----BEGIN (${labelRe})-----[\\s\\S]*?-----END \\1-----`));
  if (!m) throw new UsageError(`${file}: no PEM block matching ${labelRe}`);
  return m[0] + '\n';
}

// xs:dateTime at Astana time (+05:00), milliseconds included.
function astanaNow() {
  const d = new Date(Date.now() + 5 * 3600 * 1000);
  return d.toISOString().replace('Z', '+05:00');
}

function escapeXml(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

// The q:query in document order of sio-query-v1.xsd, as [localName, value] pairs (value: string,
// array of strings for repeats, or nested pairs).
function queryFields(o) {
  const kase = [['number', o.case]];
  for (const [flag, name] of [['instruction-no', 'instructionNo'], ['requesting-body', 'requestingBody'], ['covering-letter-no', 'coveringLetterNo'], ['year', 'year'], ['court', 'court']]) {
    if (o[flag] !== undefined) kase.push([name, o[flag]]);
  }
  const fields = [['basis', o.basis], ['case', kase]];
  if (o.article !== undefined) fields.push(['article', o.article]);
  fields.push(['subject', [o.subject ? ['iin', o.subject] : ['bin', o['subject-bin']]]]);
  fields.push(['services', [['service', o.serviceList]]]);
  fields.push(['purpose', o.purpose]);
  return fields;
}

function queryObject(fields) {
  const obj = {};
  for (const [name, value] of fields) {
    if (Array.isArray(value) && Array.isArray(value[0])) obj[`q:${name}`] = queryObject(value);
    else obj[`q:${name}`] = value;
  }
  return obj;
}

function queryXml(fields) {
  return fields.map(([name, value]) => {
    if (Array.isArray(value) && Array.isArray(value[0])) return `<q:${name}>${queryXml(value)}</q:${name}>`;
    const values = Array.isArray(value) ? value : [value];
    return values.map((v) => `<q:${name}>${escapeXml(v)}</q:${name}>`).join('');
  }).join('');
}

function buildArgs(o, messageId, messageDate) {
  const fields = queryFields(o);
  let data;
  if (o['query-form'] === 'xml') {
    data = { $xml: `<q:query xmlns:q="${NS.q}">${queryXml(fields)}</q:query>` };
  } else {
    data = { 'q:query': { attributes: { 'xmlns:q': NS.q }, ...queryObject(fields) } };
  }
  return {
    request: {
      requestInfo: {
        messageId,
        serviceId: o['service-id'],
        messageDate,
        sender: { senderId: o['sender-id'] },
      },
      requestData: { data },
    },
  };
}

// The bytes that go on the wire: every chunk written to an outgoing POST, whoever (axios,
// follow-redirects) writes it.
function captureOutgoingPosts() {
  const posts = [];
  const proto = http.ClientRequest.prototype;
  const origWrite = proto.write;
  const origEnd = proto.end;
  const grab = (req, chunk, enc) => {
    if (req.method !== 'POST' || chunk == null || typeof chunk === 'function') return;
    if (!req.__sioChunks) {
      req.__sioChunks = [];
      posts.push(req.__sioChunks);
    }
    req.__sioChunks.push(Buffer.isBuffer(chunk) ? Buffer.from(chunk) : Buffer.from(chunk, typeof enc === 'string' ? enc : 'utf8'));
  };
  proto.write = function (chunk, enc, cb) {
    grab(this, chunk, enc);
    return origWrite.apply(this, arguments);
  };
  proto.end = function (chunk, enc, cb) {
    grab(this, chunk, enc);
    return origEnd.apply(this, arguments);
  };
  const last = () => (posts.length ? Buffer.concat(posts[posts.length - 1]) : null);
  last.count = () => posts.length; // posts made so far, to tell a call's own post from the previous one
  return last;
}

function localChild(node, localName, ns) {
  if (!node) return null;
  for (let c = node.firstChild; c; c = c.nextSibling) {
    if (c.nodeType === 1 && c.localName === localName && (ns === undefined || c.namespaceURI === ns)) return c;
  }
  return null;
}

// The Id-like attribute values xml-crypto resolves a Reference URI against: any attribute whose
// local name is Id, ID or id, in any namespace (wsu:Id and plain Id alike).
function idValues(el) {
  const out = [];
  for (let i = 0; i < el.attributes.length; i++) {
    const a = el.attributes[i];
    if (['Id', 'ID', 'id'].includes(a.localName)) out.push(a.value);
  }
  return out;
}

function certOf(pem) {
  return new crypto.X509Certificate(pem);
}

// The signer's certificate from KeyInfo: X509Data/X509Certificate (what xml-crypto's
// SignedXml.getCertFromKeyInfo reads), or wsse:SecurityTokenReference/wsse:Reference to a
// wsse:BinarySecurityToken in the same message (the shape node-soap sends; xml-crypto does not
// follow it on its own).
function certFromKeyInfo(keyInfo) {
  if (!keyInfo) return { pem: null, how: 'no KeyInfo' };
  const x509 = xmlCrypto.SignedXml.getCertFromKeyInfo(keyInfo);
  if (x509) return { pem: x509, how: 'KeyInfo/X509Data/X509Certificate' };
  const ref = xpath.select1(".//*[local-name(.)='SecurityTokenReference']/*[local-name(.)='Reference']/@URI", keyInfo);
  if (ref && ref.value && ref.value.startsWith('#')) {
    const id = ref.value.slice(1);
    const tokens = xpath.select("//*[local-name(.)='BinarySecurityToken']", keyInfo.ownerDocument).filter((t) => idValues(t).includes(id));
    if (tokens.length === 1) {
      const b64 = tokens[0].textContent.replace(/\s+/g, '');
      return { pem: `-----BEGIN CERTIFICATE-----\n${b64.match(/.{1,64}/g).join('\n')}\n-----END CERTIFICATE-----\n`, how: 'KeyInfo/SecurityTokenReference -> BinarySecurityToken' };
    }
    return { pem: null, how: `SecurityTokenReference to #${id}: ${tokens.length} BinarySecurityTokens carry that id` };
  }
  return { pem: null, how: 'KeyInfo has neither X509Data nor a SecurityTokenReference' };
}

// Verifies the WS-Security signature of a reply; returns null when it verifies, else the reason.
function verifyReply(xml, o) {
  const parseErrors = [];
  const doc = new DOMParser({ errorHandler: (level, msg) => { if (level !== 'warning') parseErrors.push(String(msg)); } }).parseFromString(xml, 'text/xml');
  if (parseErrors.length || !doc.documentElement) return `reply is not well-formed XML: ${parseErrors.join('; ')}`;
  const env = doc.documentElement;
  if (env.localName !== 'Envelope' || env.namespaceURI !== NS.soap11) return 'reply root is not a SOAP 1.1 Envelope';
  const body = localChild(env, 'Body', NS.soap11);
  if (!body) return 'reply has no soap:Body';
  const sigs = xpath.select(`//*[local-name(.)='Signature' and namespace-uri(.)='${NS.ds}']`, doc);
  if (sigs.length === 0) return 'no ds:Signature in the reply';
  if (sigs.length > 1) return `${sigs.length} ds:Signature elements in the reply; expected one`;
  const sig = sigs[0];
  const security = localChild(localChild(env, 'Header', NS.soap11), 'Security', NS.wsse);
  if (!security || sig.parentNode !== security) return 'the ds:Signature is not a child of soap:Header/wsse:Security';

  // The key: the pinned --broker-cert, or the certificate the signature carries, chained to --ca.
  const keyInfo = localChild(sig, 'KeyInfo', NS.ds);
  const carried = certFromKeyInfo(keyInfo);
  let signerPem;
  if (o['broker-cert']) {
    signerPem = readPem(o['broker-cert'], 'CERTIFICATE');
    if (carried.pem && !certOf(carried.pem).raw.equals(certOf(signerPem).raw)) return `the certificate in the reply (${carried.how}) is not --broker-cert`;
  } else {
    if (!o.ca) return 'neither --broker-cert nor --ca given: nothing to trust the reply signer with';
    if (!carried.pem) return `no signer certificate in the reply: ${carried.how}`;
    signerPem = carried.pem;
  }
  const signer = certOf(signerPem);
  if (o.ca) {
    const ca = certOf(readPem(o.ca, 'CERTIFICATE'));
    if (!signer.checkIssued(ca) || !signer.verify(ca.publicKey)) return `the reply signer (${signer.subject.replace(/\n/g, ', ')}) is not issued by --ca`;
    const now = Date.now();
    for (const c of [signer, ca]) {
      if (now < Date.parse(c.validFrom) || now > Date.parse(c.validTo)) return `certificate ${c.subject.replace(/\n/g, ', ')} is not valid now (${c.validFrom} .. ${c.validTo})`;
    }
  }

  const sx = new xmlCrypto.SignedXml({ publicCert: signerPem });
  try {
    sx.loadSignature(sig);
    const good = sx.checkSignature(xml);
    if (!good) {
      const why = sx.getReferences().map((r) => r.validationError && r.validationError.message).filter(Boolean);
      return `xml-crypto: ${why.join('; ') || 'a reference did not validate'}`;
    }
  } catch (e) {
    return `xml-crypto: ${e.message}`;
  }
  // What xml-crypto proved is that the referenced elements are intact; make sure the soap:Body
  // of this envelope is one of them (and not some other element carrying a copy).
  const uris = sx.getReferences().map((r) => r.uri || '');
  const bodyIds = idValues(body);
  if (!uris.some((u) => u.startsWith('#') && bodyIds.includes(u.slice(1)))) {
    return `the signature does not reference the soap:Body (references ${uris.join(', ') || 'nothing'}, Body ids ${bodyIds.join(', ') || 'none'})`;
  }
  for (const t of sx.getReferences().map((r) => r.transforms).flat()) {
    if (!['http://www.w3.org/2001/10/xml-exc-c14n#', 'http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315'].includes(t)) return `unexpected transform ${t}`;
  }
  return null;
}

function text(v) {
  if (v == null) return null;
  if (typeof v === 'object') return v.$value != null ? String(v.$value) : null;
  return String(v);
}

function asArray(v) {
  if (v == null) return [];
  return Array.isArray(v) ? v : [v];
}

function faultFromRoot(root) {
  const fault = root && root.Envelope && root.Envelope.Body && root.Envelope.Body.Fault;
  if (!fault) return null;
  let errorCode = null;
  const detail = fault.detail;
  if (detail && typeof detail === 'object') {
    for (const k of Object.keys(detail)) {
      if (detail[k] && typeof detail[k] === 'object' && detail[k].errorCode != null) {
        errorCode = text(detail[k].errorCode);
        break;
      }
    }
  }
  return { faultcode: text(fault.faultcode), faultstring: text(fault.faultstring), errorCode };
}

function emit(obj, code) {
  process.stdout.write(JSON.stringify(obj) + '\n');
  process.exitCode = code;
}

async function main() {
  let o;
  try {
    o = parseCli(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${e.message}\n${usage()}\n`);
    emit({ ok: false, fault: null, status: null, services: [], replySignatureVerified: false, verifyError: null, error: `usage: ${e.message}` }, 2);
    return;
  }
  if (o.channel === 'async' && !o['verify-reply']) {
    await mainAsync(o);
    return;
  }
  const result = { ok: false, fault: null, status: null, services: [], replySignatureVerified: false, verifyError: null };
  if (o['verify-reply']) {
    try {
      result.verifyError = verifyReply(fs.readFileSync(o['verify-reply'], 'utf8'), o);
      result.replySignatureVerified = result.verifyError === null;
      result.ok = result.replySignatureVerified;
      emit(result, 0);
    } catch (e) {
      emit({ ...result, error: e.message || String(e) }, 2);
    }
    return;
  }
  const wirePost = captureOutgoingPosts();
  let rawReply = null;
  let client;
  let requestWritten = false;
  const dumpRequest = (fallback) => {
    if (!o['dump-request'] || requestWritten) return;
    const bytes = wirePost() || (fallback != null ? Buffer.from(fallback, 'utf8') : null);
    if (!bytes) return;
    if (fallback != null && !bytes.equals(Buffer.from(fallback, 'utf8'))) process.stderr.write('warning: the bytes posted differ from client.lastRequest; dumping the bytes posted\n');
    fs.writeFileSync(o['dump-request'], bytes);
    requestWritten = true;
  };
  const dumpReply = () => {
    if (o['dump-reply'] && rawReply != null) fs.writeFileSync(o['dump-reply'], rawReply);
  };
  try {
    const keyPem = readPem(o.key, '(?:RSA |EC )?PRIVATE KEY');
    const certPem = readPem(o.cert, 'CERTIFICATE');

    // An axios instance of node-soap's own axios, to keep the reply's text as received (node-soap's
    // lastResponse is trimmed to the Envelope).
    const request = axios.create();
    request.interceptors.response.use((res) => {
      if (res.config && res.config.method === 'post') rawReply = typeof res.data === 'string' ? res.data : Buffer.isBuffer(res.data) ? res.data.toString('utf8') : null;
      return res;
    }, (err) => {
      if (err.response && typeof err.response.data === 'string') rawReply = err.response.data;
      return Promise.reject(err);
    });

    client = await soap.createClientAsync(`${o.url}?wsdl`, { endpoint: o.url, request });
    client.setSecurity(new soap.WSSecurityCert(keyPem, certPem, o['key-password'], o.wsOptions || undefined));

    const messageId = crypto.randomUUID();
    const messageDate = astanaNow();
    process.stderr.write(`messageId ${messageId} messageDate ${messageDate}\n`);
    let response;
    try {
      [response] = await client.SendMessageAsync(buildArgs(o, messageId, messageDate), { timeout: Number(o.timeout) });
    } finally {
      dumpRequest(client.lastRequest);
      if (rawReply == null && typeof client.lastResponse === 'string') rawReply = client.lastResponse;
      dumpReply();
    }

    const r = response && response.response;
    if (!r || !r.responseInfo) throw new Error('reply parsed, but it has no SendMessageResponse/response/responseInfo');
    result.status = text(r.responseInfo.status && r.responseInfo.status.code);
    const data = r.responseData && r.responseData.data;
    const res = data && data.result;
    for (const s of asArray(res && res.service)) {
      const a = (s && s.attributes) || {};
      result.services.push({ no: a.no != null ? Number(a.no) : null, status: a.status != null ? a.status : null, reason: a.reason != null ? a.reason : null });
    }
    result.verifyError = rawReply == null ? 'the reply text was not captured' : verifyReply(rawReply, o);
    result.replySignatureVerified = result.verifyError === null;
    result.ok = result.replySignatureVerified;
    emit(result, 0);
  } catch (e) {
    const fault = faultFromRoot(e.root);
    if (fault) {
      result.fault = fault;
      if (rawReply == null && e.body && typeof e.body === 'string') rawReply = e.body;
      dumpReply();
      result.verifyError = rawReply == null ? 'the reply text was not captured' : verifyReply(rawReply, o);
      result.replySignatureVerified = result.verifyError === null;
      emit(result, 1);
      return;
    }
    process.stderr.write(`error: ${e.stack || e}\n`);
    emit({ ...result, error: e.message || String(e) }, 2);
  }
}

// ---------------------------------------------------------------- AsyncChannel v10

// A call of the flow answered with a SOAP fault (recorded in out.faults).
class AsyncFault extends Error {}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Every date a call carries is taken here, each call's in a millisecond of its own, so that the
// signed Body of every call differs by its date and not only by the Id xml-crypto's counter gives
// it (which starts at _0 again in every process): the broker refuses signed content it has already
// received, and node-soap's Timestamp has whole seconds.
let lastStamp = 0;
async function freshNow() {
  while (Date.now() <= lastStamp) await sleep(1);
  lastStamp = Date.now();
  return new Date(lastStamp + 5 * 3600 * 1000).toISOString().replace('Z', '+05:00');
}

// The q:query as node-soap is to write it in messageData/data (xsd:anyType, so without a schema):
// an object whose query element declares the namespace as the default one (a prefixed key would
// do, but node-soap drops the prefix of a repeated element there), or raw XML.
function asyncQueryData(o) {
  const fields = queryFields(o);
  if (o['query-form'] === 'xml') return { $xml: `<q:query xmlns:q="${NS.q}">${queryXml(fields)}</q:query>` };
  const plain = (pairs) => {
    const obj = {};
    for (const [name, value] of pairs) obj[name] = Array.isArray(value) && Array.isArray(value[0]) ? plain(value) : value;
    return obj;
  };
  return { query: { attributes: { xmlns: NS.q }, ...plain(fields) } };
}

// What a reply's wsse:Security holds: whether it has a ds:Signature, and whether a Reference of
// it names the soap:Body (null without a signature). verifyReply says whether it verifies.
function inspectReply(xml) {
  const doc = new DOMParser({ errorHandler: () => {} }).parseFromString(xml, 'text/xml');
  const env = doc && doc.documentElement;
  const body = localChild(env, 'Body', NS.soap11);
  const sig = localChild(localChild(localChild(env, 'Header', NS.soap11), 'Security', NS.wsse), 'Signature', NS.ds);
  if (!sig) return { signed: false, bodySigned: null };
  const uris = xpath.select(`./*[local-name(.)='SignedInfo']/*[local-name(.)='Reference']/@URI`, sig).map((a) => a.value);
  const ids = body ? idValues(body) : [];
  return { signed: true, bodySigned: uris.some((u) => u.startsWith('#') && ids.includes(u.slice(1))) };
}

// The name and namespace of a fault's detail element (the operation's own, by the WSDL): node-soap
// parses the detail without its namespace.
function detailElement(xml) {
  const none = { detailElement: null, detailNamespace: null };
  if (xml == null) return none;
  const doc = new DOMParser({ errorHandler: () => {} }).parseFromString(xml, 'text/xml');
  const fault = localChild(localChild(doc && doc.documentElement, 'Body', NS.soap11), 'Fault', NS.soap11);
  const detail = localChild(fault, 'detail');
  for (let c = detail && detail.firstChild; c; c = c.nextSibling) {
    if (c.nodeType === 1) return { detailElement: c.localName, detailNamespace: c.namespaceURI || null };
  }
  return none;
}

// asyncCaller makes node-soap's calls of the AsyncChannel v10 operations and records each one: its
// exact bytes (--dump-dir), the verification of its answer, and its fault, if any.
function asyncCaller(client, wirePost, exchange, o, out) {
  return async (operation, request, provoked = null) => {
    const c = {
      operation, httpStatus: null, fault: false, signed: null, signatureVerified: false,
      verifyError: null, bodySigned: null, request: null, reply: null,
    };
    out.calls.push(c);
    const prefix = `${String(out.calls.length).padStart(2, '0')}-${operation}-`;
    exchange.reply = null;
    exchange.status = null;
    const before = wirePost.count();
    let answer;
    let err = null;
    try {
      [answer] = await client[`${operation}Async`]({ request }, { timeout: Number(o.timeout) });
    } catch (e) {
      err = e;
    }
    const posted = wirePost.count() > before ? wirePost() : null;
    let raw = exchange.reply;
    if (raw == null && err && typeof err.body === 'string') raw = err.body;
    c.httpStatus = exchange.status != null ? exchange.status : (err && err.response && err.response.status) || null;
    if (o['dump-dir']) {
      for (const [kind, bytes] of [['request', posted], ['reply', raw == null ? null : Buffer.from(raw, 'utf8')]]) {
        if (bytes == null) continue;
        fs.writeFileSync(path.join(o['dump-dir'], `${prefix}${kind}.xml`), bytes);
        c[kind] = `${prefix}${kind}.xml`;
      }
    }
    if (raw != null) {
      Object.assign(c, inspectReply(raw));
      c.verifyError = verifyReply(raw, o);
      c.signatureVerified = c.verifyError === null;
      if (c.verifyError && !err) process.stderr.write(`${operation}: answer signature: ${c.verifyError}\n`);
    }
    if (err) {
      const fault = faultFromRoot(err.root);
      if (!fault) throw err;
      c.fault = true;
      const record = { operation, provoked, ...fault, ...detailElement(raw) };
      out.faults.push(record);
      process.stderr.write(`${operation}: fault ${fault.errorCode}: ${fault.faultstring}\n`);
      throw new AsyncFault(`${operation}: fault ${fault.errorCode}`);
    }
    if (!answer || !answer.response) throw new Error(`${operation}: node-soap parsed no ${operation}Response/response from the answer`);
    return answer.response;
  };
}

function messageInfoJson(mi) {
  return {
    messageId: text(mi.messageId), correlationId: text(mi.correlationId), serviceId: text(mi.serviceId),
    messageType: text(mi.messageType), messageDate: text(mi.messageDate),
    senderId: mi.sender ? text(mi.sender.senderId) : null,
  };
}

// The q:result in a message's data, as node-soap parsed it (without a schema: local names, the
// attributes under "attributes").
function readResult(data, out) {
  const res = data && typeof data === 'object' ? data.result : null;
  if (!res || typeof res !== 'object') {
    out.parseError = `no q:result in the message's data: ${JSON.stringify(data)}`;
    return;
  }
  out.result = { requestMessageId: text(res.requestMessageId), signerIin: text(res.signerIin) };
  out.services = asArray(res.service).map((s) => {
    const a = (s && s.attributes) || {};
    return { no: a.no != null && /^\d{1,9}$/.test(a.no) ? Number(a.no) : a.no != null ? a.no : null, status: a.status != null ? a.status : null, reason: a.reason != null ? a.reason : null };
  });
  out.parsedBy = 'node-soap';
}

async function asyncFlow(call, o, out) {
  const sender = { senderId: o['sender-id'] };
  const serviceId = o['service-id'];
  const ack = await call('sendMessage', {
    messageInfo: { serviceId, messageType: 'REQUEST', messageDate: await freshNow(), sender },
    messageData: { data: asyncQueryData(o) },
  });
  out.ack = { messageId: text(ack.messageId), correlationId: text(ack.correlationId), responseDate: text(ack.responseDate), sessionId: text(ack.sessionId) };
  if (!out.ack.messageId) throw new Error('the acknowledgement has no messageId');

  const deadline = Date.now() + Number(o['poll-timeout']) * 1000;
  let st;
  let state;
  for (;;) {
    st = await call('getMessageStatus', { messageId: out.ack.messageId, requestDate: await freshNow(), sender });
    out.polls++;
    state = text(st.messageState);
    if (out.requestStates.length === 0 || out.requestStates[out.requestStates.length - 1] !== state) out.requestStates.push(state);
    if (state !== 'ON_DELIVERY') break;
    if (Date.now() > deadline) throw new Error(`the request is still ON_DELIVERY after ${o['poll-timeout']}s`);
    await sleep(Number(o['poll-interval']) * 1000);
  }
  if (state !== 'DELIVERED') {
    const s = st.status || {};
    throw new Error(`the request ended ${state} (${text(s.statusCode)}: ${text(s.statusMessage)}), not DELIVERED`);
  }

  const chain = await call('getMessages', { correlationId: out.ack.correlationId, requestDate: await freshNow(), serviceId, sender });
  const messages = asArray(chain.messages);
  out.chainMessages = messages.length;
  const message = messages.find((m) => m && m.messageInfo && text(m.messageInfo.messageType) === 'RESPONSE');
  if (!message) throw new Error(`getMessages by the chain ${out.ack.correlationId} returned no RESPONSE`);
  out.response = messageInfoJson(message.messageInfo);
  readResult(message.messageData && message.messageData.data, out);
  const responseId = out.response.messageId;

  out.mailbox.before = await mailbox(call, o, sender, responseId);
  st = await call('getMessageStatus', { messageId: responseId, requestDate: await freshNow(), sender });
  out.responseStates.beforeReceipt = text(st.messageState);
  const date = await freshNow();
  const receipt = await call('sendDeliveryNotification', {
    notification: {
      messageId: responseId, serviceId, notificationDate: date,
      deliveryStatus: { receiveStatus: 'MESSAGE_ACCEPTED', statusDate: date, resendMessage: 'NOT_RESEND' },
    },
    requestDate: date,
    sender,
  });
  out.receipt = { notificationId: text(receipt.notificationId), responseDate: text(receipt.responseDate), sessionId: text(receipt.sessionId) };
  st = await call('getMessageStatus', { messageId: responseId, requestDate: await freshNow(), sender });
  out.responseStates.afterReceipt = text(st.messageState);
  out.mailbox.after = await mailbox(call, o, sender, responseId);
}

// getMessages by serviceId alone: how many messages, and whether the RESPONSE is one of them.
async function mailbox(call, o, sender, responseId) {
  const got = await call('getMessages', { requestDate: await freshNow(), serviceId: o['service-id'], sender });
  const ids = asArray(got.messages).map((m) => m && m.messageInfo && text(m.messageInfo.messageId));
  return { count: ids.length, hasResponse: ids.includes(responseId) };
}

// The calls that provoke the faults asked for; whether every one was refused with a fault.
async function asyncFaults(call, o, out) {
  const sender = { senderId: o['sender-id'] };
  const serviceId = o['service-id'];
  const id = o['fault-id'] || crypto.randomUUID();
  const calls = {
    'others-case': async () => call('sendMessage', {
      messageInfo: { serviceId, messageType: 'REQUEST', messageDate: await freshNow(), sender },
      messageData: { data: asyncQueryData(o) },
    }, 'others-case'),
    'unknown-id': async () => call('getMessageStatus', { messageId: id, requestDate: await freshNow(), sender }, 'unknown-id'),
    'unknown-chain': async () => call('getMessages', { correlationId: id, requestDate: await freshNow(), serviceId, sender }, 'unknown-chain'),
    'unknown-receipt': async () => {
      const date = await freshNow();
      return call('sendDeliveryNotification', {
        notification: {
          messageId: id, serviceId, notificationDate: date,
          deliveryStatus: { receiveStatus: 'MESSAGE_ACCEPTED', statusDate: date, resendMessage: 'NOT_RESEND' },
        },
        requestDate: date,
        sender,
      }, 'unknown-receipt');
    },
  };
  const answered = [];
  for (const kind of o.asyncFaults) {
    try {
      await calls[kind]();
      answered.push(kind);
    } catch (e) {
      if (!(e instanceof AsyncFault)) throw e;
    }
  }
  if (answered.length) out.error = `answered, not refused: ${answered.join(', ')}`;
  return answered.length === 0;
}

async function mainAsync(o) {
  const out = {
    ok: false, channel: 'async', queryForm: o['query-form'], ack: null, requestStates: [], polls: 0,
    chainMessages: null, response: null, result: null, services: [], parsedBy: null, parseError: null,
    responseStates: { beforeReceipt: null, afterReceipt: null }, receipt: null,
    mailbox: { before: null, after: null }, calls: [], answersVerified: false, faults: [], error: null,
  };
  let code = 2;
  try {
    if (o['dump-dir']) fs.mkdirSync(o['dump-dir'], { recursive: true });
    const keyPem = readPem(o.key, '(?:RSA |EC )?PRIVATE KEY');
    const certPem = readPem(o.cert, 'CERTIFICATE');
    const wirePost = captureOutgoingPosts();
    // node-soap's own axios, to keep each answer's text as received and its HTTP status.
    const exchange = { reply: null, status: null };
    const request = axios.create();
    request.interceptors.response.use((res) => {
      if (res.config && res.config.method === 'post') {
        exchange.status = res.status;
        exchange.reply = typeof res.data === 'string' ? res.data : Buffer.isBuffer(res.data) ? res.data.toString('utf8') : null;
      }
      return res;
    }, (err) => {
      if (err.response && err.config && err.config.method === 'post') {
        exchange.status = err.response.status;
        if (typeof err.response.data === 'string') exchange.reply = err.response.data;
      }
      return Promise.reject(err);
    });
    const client = await soap.createClientAsync(`${o.url}?wsdl`, { endpoint: o.url, request });
    // One WSSecurityCert for every call, as an application would set it once on its client.
    client.setSecurity(new soap.WSSecurityCert(keyPem, certPem, o['key-password'], o.wsOptions || undefined));
    const call = asyncCaller(client, wirePost, exchange, o, out);
    if (o.asyncFaults) {
      code = (await asyncFaults(call, o, out)) ? 1 : 2;
    } else {
      await asyncFlow(call, o, out);
      code = 0;
    }
  } catch (e) {
    if (e instanceof AsyncFault) {
      code = o.asyncFaults ? 2 : 1;
      out.error = e.message;
    } else {
      process.stderr.write(`error: ${e.stack || e}\n`);
      out.error = e.message || String(e);
      code = 2;
    }
  }
  const answers = out.calls.filter((c) => !c.fault && c.httpStatus != null);
  out.answersVerified = answers.length > 0 && answers.every((c) => c.signatureVerified);
  out.ok = o.asyncFaults ? code === 1 : code === 0 && out.answersVerified;
  emit(out, code);
}

if (require.main === module) {
  main();
} else {
  module.exports = { verifyReply };
}
