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

class UsageError extends Error {}

function usage() {
  return [
    'usage: client.js --url URL --cert PEM --key PEM [--key-password PW] [--ca PEM] [--broker-cert PEM]',
    '                 --basis N --case NUMBER [--instruction-no S] [--requesting-body S] [--covering-letter-no S]',
    '                 [--year YYYY] [--court S] [--article A] (--subject IIN | --subject-bin BIN) --services 1,5',
    '                 [--purpose TEXT] [--sender-id ID] [--service-id ID] [--query-form object|xml]',
    '                 [--ws-options JSON] [--timeout MS] [--dump-request FILE] [--dump-reply FILE]',
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
  return () => (posts.length ? Buffer.concat(posts[posts.length - 1]) : null);
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

if (require.main === module) {
  main();
} else {
  module.exports = { verifyReply };
}
