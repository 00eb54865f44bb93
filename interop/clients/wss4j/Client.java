/*
 * WSS4J 1.6 interoperability client for the siobroker SyncChannel v10 endpoint, and for its
 * AsyncChannel v10 (--channel async, below).
 *
 * It plays a Java state system that signs its requests the way Apache CXF's WSS4JOutInterceptor
 * does with action="Timestamp Signature" (WSS4J 1.6 driven directly: WSSecHeader, WSSecTimestamp,
 * WSSecSignature), posts the request, and verifies the broker's signed reply the way CXF's
 * WSS4JInInterceptor does with action="Signature" (WSSecurityEngine.processSecurityHeader).
 *
 * Build and run (Debian libwss4j-java 1.6.19, libxml-security-java 2.1.7, OpenJDK 17):
 *
 *   CP=/usr/share/java/wss4j.jar:/usr/share/java/xmlsec.jar:/usr/share/java/commons-logging.jar
 *   CP=$CP:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-jdk14.jar
 *   javac -cp "$CP" -d "$OUT" interop/clients/wss4j/Client.java
 *
 * (Debian's xmlsec.jar needs slf4j-api at run time; slf4j-jdk14 routes its logging, and
 * WSS4J's commons-logging, to java.util.logging on stderr.)
 *   java -cp "$OUT:$CP" Client --url http://127.0.0.1:8080/SyncChannel/v10 \
 *       --cert data/pki/users/750312300458.pem --key data/pki/users/750312300458.key \
 *       --ca data/pki/ca.pem --key-id bst --basis 1 --case 261500031000123 --article 216 \
 *       --subject 810803325634 --services 1,5
 *
 * Flags:
 *   --url URL               endpoint (default http://127.0.0.1:8080/SyncChannel/v10)
 *   --cert FILE --key FILE  the signer: PEM certificate and PEM PKCS#8 private key (RSA or EC);
 *                           lines outside the PEM block (comments) are ignored
 *   --ca FILE               PEM CA certificate(s): the truststore for the reply's signer
 *   --broker-cert FILE      PEM broker certificate, put into the verification keystore (needed
 *                           when the reply names its key by IssuerSerial, SKI or thumbprint;
 *                           note that WSS4J then trusts that certificate directly)
 *   --crl FILE              PEM CRL: enables revocation checking of the reply's signer
 *   --key-id FORM           bst (default) | issuerserial | ski | thumbprint | x509
 *   --basis N --case NUMBER [--instruction-no X] [--requesting-body X] [--covering-letter-no X]
 *   [--year YYYY] [--court X] [--article A] --subject IIN [--subject-bin BIN]
 *   --services 1,5          [--purpose TEXT] [--sender-id X] [--service-id X]
 *   --sig-alg URI           signature method (default rsa-sha256, or ecdsa-sha256 for an EC key)
 *   --digest-alg URI        digest method (default xmlenc#sha256)
 *   --no-timestamp          action="Signature" only: no wsu:Timestamp, the Body alone is signed
 *   --parts LIST            what is signed: timestamp,body (default; CXF signatureParts
 *                           "{Element}{wsu}Timestamp;{Element}{soapenv}Body") or body (CXF's default
 *                           when signatureParts is not set: the Timestamp then goes unsigned)
 *   --ttl SECONDS           Timestamp time to live (default 300, as CXF)
 *   --dump-request FILE     the exact bytes posted
 *   --dump-reply FILE       the exact bytes received
 *   --no-send               only build, sign and dump the request
 *   --verify-file FILE      do not sign or send: verify a saved reply (or request) with WSS4J
 *   --in-action LIST        the CXF inbound "action" the reply's results must match in any order,
 *                           e.g. "Signature" (default) or "Timestamp Signature"; "none" skips it
 *   --bsp true|false        WS-I BSP compliance of the verifier (CXF isBSPCompliant; default true)
 *   --timeout SECONDS       HTTP connect/read timeout (default 30)
 *
 * AsyncChannel v10 (--channel async; --url is then the AsyncChannel endpoint, e.g.
 * http://127.0.0.1:8080/AsyncChannel/v10): the gateway's whole flow, each call's envelope built by
 * hand as CXF's wrapped document/literal client writes it (typ:OPERATION, unqualified children),
 * signed with WSS4J as above (--key-id, --no-timestamp, --parts ...) and each answer verified with
 * WSSecurityEngine as above (--in-action ...):
 *   sendMessage               REQUEST (no messageId, no correlationId), q:query in messageData/data
 *   getMessageStatus          of the acknowledged id, every --poll-interval seconds (default 0.2)
 *                             until it is no longer ON_DELIVERY (at most --poll-timeout, default 20)
 *   getMessages               by correlationId = the acknowledged id: the chain's RESPONSE
 *   getMessages               by serviceId alone: the mailbox before the receipt
 *   getMessageStatus          of the RESPONSE's messageId, before the receipt
 *   sendDeliveryNotification  MESSAGE_ACCEPTED / NOT_RESEND for the RESPONSE's messageId
 *   getMessageStatus          of the RESPONSE's messageId, after the receipt
 *   getMessages               by serviceId alone: the mailbox after the receipt
 *   --async-fault LIST      instead of the flow, the calls that provoke these faults, in order:
 *                           others-case (sendMessage of the query as given: --case not the
 *                           signer's), unknown-id (getMessageStatus of --fault-id), unknown-chain
 *                           (getMessages by correlationId --fault-id), unknown-receipt
 *                           (sendDeliveryNotification of --fault-id)
 *   --fault-id ID           default: a fresh UUID, an id the broker never issued
 *   --dump-dir DIR          each call's exact bytes: DIR/NN-OPERATION-request.xml and -reply.xml
 * Its JSON: {"ok","channel":"async","keyId","ack":{"messageId","correlationId","responseDate",
 *   "sessionId"},"requestStates":[...],"polls","chainMessages","response":{"messageId",
 *   "correlationId","serviceId","messageType","messageDate","senderId"},"result":{
 *   "requestMessageId","signerIin"},"services":[{"no","status","reason"}],"responseStates":{
 *   "beforeReceipt","afterReceipt"},"receipt":{"notificationId","responseDate","sessionId"},
 *   "mailbox":{"before":{"count","hasResponse"},"after":...},"calls":[{"operation","httpStatus",
 *   "fault","signed","signatureVerified","verifyError","bodySigned","keyReference","signedIds",
 *   "request","reply"}],"answersVerified","faults":[{"operation","provoked","faultcode",
 *   "faultstring","errorCode","detailElement","detailNamespace"}],"error"}; ok: the flow ran to
 * its end and every answer verified (with --async-fault: every provoked call was refused).
 * Exit status: 0 the flow ran to its end, 1 a SOAP fault ended it (or, with --async-fault, every
 * provoked call was refused with a fault), 2 any other error.
 *
 * Output: one JSON object on stdout,
 *   {"ok":bool,"fault":{"faultcode":..,"faultstring":..,"errorCode":..}|null,"status":..|null,
 *    "services":[{"no":1,"status":"ok","reason":"OK"},...],"replySignatureVerified":bool,
 *    "verifyError":str|null, ...diagnostic fields}
 * ok is true when a non-fault reply was received, its status code starts with SCSS and its
 * signature verified (with --no-send: when the request was signed). Diagnostics go to stderr.
 * Exit status: 0 a reply was received and parsed (even when its signature did not verify),
 * 1 a SOAP fault, 2 any other error.
 */

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.CertStore;
import java.security.cert.CertificateFactory;
import java.security.cert.CollectionCertStoreParameters;
import java.security.cert.X509CRL;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.time.OffsetDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import javax.xml.XMLConstants;
import javax.xml.parsers.DocumentBuilder;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.transform.OutputKeys;
import javax.xml.transform.Transformer;
import javax.xml.transform.TransformerFactory;
import javax.xml.transform.dom.DOMSource;
import javax.xml.transform.stream.StreamResult;

import org.apache.ws.security.WSConstants;
import org.apache.ws.security.WSDataRef;
import org.apache.ws.security.WSEncryptionPart;
import org.apache.ws.security.WSSConfig;
import org.apache.ws.security.WSSecurityEngine;
import org.apache.ws.security.WSSecurityEngineResult;
import org.apache.ws.security.WSSecurityException;
import org.apache.ws.security.components.crypto.Merlin;
import org.apache.ws.security.handler.RequestData;
import org.apache.ws.security.handler.WSHandlerConstants;
import org.apache.ws.security.message.WSSecHeader;
import org.apache.ws.security.message.WSSecSignature;
import org.apache.ws.security.message.WSSecTimestamp;
import org.apache.ws.security.util.WSSecurityUtil;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.Node;

public class Client {

    static final String SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/";
    static final String TYPES_NS = "http://bip.bee.kz/SyncChannel/v10/Types";
    static final String ASYNC_TYPES_NS = "http://bip.bee.kz/AsyncChannel/v10/Types";
    static final String Q_NS = "urn:kz:sio-pso:broker:v1";
    static final String RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
    static final String ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
    static final String SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256";
    static final String ALIAS = "signer";
    static final char[] STOREPASS = "changeit".toCharArray();

    /** A usage or setup error: exit 2. */
    static final class UsageException extends Exception {
        private static final long serialVersionUID = 1L;
        UsageException(String m) { super(m); }
    }

    static final java.util.logging.Logger QUIET =
        java.util.logging.Logger.getLogger("org.apache.jcp.xml.dsig.internal.dom.DOMReference");

    final Map<String, String> opt = new LinkedHashMap<String, String>();

    public static void main(String[] args) {
        Client c = new Client();
        int rc;
        try {
            rc = c.run(args);
        } catch (Throwable t) {
            System.err.println("wss4j client: " + describe(t));
            t.printStackTrace(System.err);
            System.out.println("{\"ok\":false,\"fault\":null,\"status\":null,\"services\":[],"
                + "\"replySignatureVerified\":false,\"verifyError\":null,\"error\":"
                + js(describe(t)) + "}");
            rc = 2;
        }
        System.out.flush();
        System.exit(rc);
    }

    // ---------------------------------------------------------------- arguments

    void parseArgs(String[] args) throws UsageException {
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (!a.startsWith("--")) {
                throw new UsageException("unexpected argument " + a);
            }
            String name = a.substring(2);
            String value = null;
            int eq = name.indexOf('=');
            if (eq >= 0) {
                value = name.substring(eq + 1);
                name = name.substring(0, eq);
            } else if (name.equals("no-send") || name.equals("no-timestamp")) {
                value = "true";
            } else {
                if (i + 1 >= args.length) {
                    throw new UsageException("flag --" + name + " needs a value");
                }
                value = args[++i];
            }
            if (!KNOWN.contains(name)) {
                throw new UsageException("unknown flag --" + name);
            }
            opt.put(name, value);
        }
    }

    static final java.util.Set<String> KNOWN = new java.util.HashSet<String>(java.util.Arrays.asList(
        "url", "cert", "key", "ca", "broker-cert", "crl", "key-id", "basis", "case", "instruction-no",
        "requesting-body", "covering-letter-no", "year", "court", "article", "subject", "subject-bin",
        "services", "purpose", "sender-id", "service-id", "sig-alg", "digest-alg", "no-timestamp",
        "parts", "ttl", "dump-request", "dump-reply", "no-send", "verify-file", "in-action", "bsp",
        "timeout", "channel", "async-fault", "fault-id", "dump-dir", "poll-interval", "poll-timeout"));

    String get(String name, String def) {
        String v = opt.get(name);
        return v == null ? def : v;
    }

    String need(String name) throws UsageException {
        String v = opt.get(name);
        if (v == null || v.isEmpty()) {
            throw new UsageException("flag --" + name + " is required");
        }
        return v;
    }

    boolean flag(String name) {
        return "true".equalsIgnoreCase(get(name, "false"));
    }

    // ---------------------------------------------------------------- main flow

    int run(String[] args) throws Exception {
        try {
            parseArgs(args);
        } catch (UsageException e) {
            return usageError(e.getMessage());
        }
        // Santuario 2.1 warns "The input bytes to the digest operation are null" for every
        // Reference it digests by streaming; that is noise here.
        QUIET.setLevel(java.util.logging.Level.SEVERE);
        WSSConfig.init();

        if (opt.containsKey("verify-file")) {
            byte[] reply = Files.readAllBytes(Paths.get(opt.get("verify-file")));
            return handleReply(reply, -1);
        }
        String channel = get("channel", "sync");
        if ("async".equals(channel)) {
            return new Async().run();
        }
        if (!"sync".equals(channel)) {
            return usageError("--channel must be sync or async, not " + channel);
        }
        if (opt.containsKey("async-fault")) {
            return usageError("--async-fault needs --channel async");
        }

        String keyId;
        Merlin signCrypto;
        Document doc;
        try {
            keyId = get("key-id", "bst");
            int keyIdType = keyIdentifierType(keyId);
            X509Certificate cert = readCertificates(need("cert")).get(0);
            PrivateKey key = readPrivateKey(need("key"));
            signCrypto = signingCrypto(cert, key);
            doc = buildEnvelope();
            String sigAlg = get("sig-alg", "EC".equals(key.getAlgorithm()) ? ECDSA_SHA256 : RSA_SHA256);
            sign(doc, signCrypto, keyIdType, sigAlg, get("digest-alg", SHA256));
        } catch (UsageException e) {
            return usageError(e.getMessage());
        }
        byte[] request = serialize(doc);
        if (opt.containsKey("dump-request")) {
            Files.write(Paths.get(opt.get("dump-request")), request);
        }
        if (flag("no-send")) {
            System.out.println("{\"ok\":true,\"fault\":null,\"status\":null,\"services\":[],"
                + "\"replySignatureVerified\":false,\"verifyError\":null,\"sent\":false,"
                + "\"keyId\":" + js(keyId) + "}");
            return 0;
        }

        byte[] reply;
        int httpStatus;
        try {
            int[] status = new int[1];
            reply = post(request, status);
            httpStatus = status[0];
        } catch (IOException e) {
            System.err.println("wss4j client: HTTP: " + describe(e));
            System.out.println("{\"ok\":false,\"fault\":null,\"status\":null,\"services\":[],"
                + "\"replySignatureVerified\":false,\"verifyError\":null,\"error\":"
                + js("HTTP: " + describe(e)) + "}");
            return 2;
        }
        if (opt.containsKey("dump-reply")) {
            Files.write(Paths.get(opt.get("dump-reply")), reply);
        }
        return handleReply(reply, httpStatus);
    }

    /** POSTs a SOAP 1.1 request as CXF's HTTPConduit does; the answer's bytes, status in status[0]. */
    byte[] post(byte[] request, int[] status) throws IOException {
        HttpURLConnection conn = null;
        try {
            int timeout = Integer.parseInt(get("timeout", "30")) * 1000;
            conn = (HttpURLConnection) new URL(get("url", "http://127.0.0.1:8080/SyncChannel/v10"))
                .openConnection();
            conn.setConnectTimeout(timeout);
            conn.setReadTimeout(timeout);
            conn.setRequestMethod("POST");
            conn.setDoOutput(true);
            conn.setFixedLengthStreamingMode(request.length);
            conn.setRequestProperty("Content-Type", "text/xml; charset=utf-8");
            conn.setRequestProperty("SOAPAction", "\"\"");
            conn.setRequestProperty("Accept", "text/xml, */*");
            try (OutputStream os = conn.getOutputStream()) {
                os.write(request);
            }
            status[0] = conn.getResponseCode();
            InputStream in = status[0] >= 400 ? conn.getErrorStream() : conn.getInputStream();
            return in == null ? new byte[0] : readAll(in);
        } finally {
            if (conn != null) {
                conn.disconnect();
            }
        }
    }

    int usageError(String msg) {
        System.err.println("wss4j client: " + msg);
        System.out.println("{\"ok\":false,\"fault\":null,\"status\":null,\"services\":[],"
            + "\"replySignatureVerified\":false,\"verifyError\":null,\"error\":" + js(msg) + "}");
        return 2;
    }

    // ---------------------------------------------------------------- key material

    static int keyIdentifierType(String form) throws UsageException {
        switch (form) {
        case "bst": return WSConstants.BST_DIRECT_REFERENCE;
        case "issuerserial": return WSConstants.ISSUER_SERIAL;
        case "ski": return WSConstants.SKI_KEY_IDENTIFIER;
        case "thumbprint": return WSConstants.THUMBPRINT_IDENTIFIER;
        case "x509": return WSConstants.X509_KEY_IDENTIFIER;
        default:
            throw new UsageException("--key-id must be bst, issuerserial, ski, thumbprint or x509, not " + form);
        }
    }

    /** The base64 bodies of the PEM blocks of the given type in a file; other lines are ignored. */
    static List<byte[]> pemBlocks(String file, String type) throws IOException, UsageException {
        List<String> lines = Files.readAllLines(Paths.get(file), StandardCharsets.UTF_8);
        List<byte[]> out = new ArrayList<byte[]>();
        StringBuilder b64 = null;
        for (String raw : lines) {
            String line = raw.trim();
            if (b64 == null) {
                if (line.equals("-----BEGIN " + type + "-----")) {
                    b64 = new StringBuilder();
                }
            } else if (line.equals("-----END " + type + "-----")) {
                out.add(Base64.getMimeDecoder().decode(b64.toString()));
                b64 = null;
            } else if (!line.contains(":")) { // skip RFC 1421 headers, if any
                b64.append(line);
            }
        }
        if (out.isEmpty()) {
            throw new UsageException(file + ": no PEM " + type + " block");
        }
        return out;
    }

    static List<X509Certificate> readCertificates(String file) throws Exception {
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        List<X509Certificate> certs = new ArrayList<X509Certificate>();
        for (byte[] der : pemBlocks(file, "CERTIFICATE")) {
            certs.add((X509Certificate) cf.generateCertificate(new ByteArrayInputStream(der)));
        }
        return certs;
    }

    static PrivateKey readPrivateKey(String file) throws Exception {
        byte[] der = pemBlocks(file, "PRIVATE KEY").get(0);
        Exception last = null;
        for (String alg : new String[] {"RSA", "EC"}) {
            try {
                return KeyFactory.getInstance(alg).generatePrivate(new PKCS8EncodedKeySpec(der));
            } catch (Exception e) {
                last = e;
            }
        }
        throw new UsageException(file + ": not an RSA or EC PKCS#8 private key: " + describe(last));
    }

    static Merlin signingCrypto(X509Certificate cert, PrivateKey key) throws Exception {
        KeyStore ks = KeyStore.getInstance("PKCS12");
        ks.load(null, null);
        ks.setKeyEntry(ALIAS, key, STOREPASS, new java.security.cert.Certificate[] {cert});
        Merlin crypto = new Merlin();
        crypto.setKeyStore(ks);
        return crypto;
    }

    /** The verification Crypto: truststore = --ca, keystore = --broker-cert (if given). */
    Merlin verificationCrypto() throws Exception {
        KeyStore ts = KeyStore.getInstance("JKS");
        ts.load(null, null);
        int i = 0;
        for (X509Certificate ca : readCertificates(need("ca"))) {
            ts.setCertificateEntry("ca" + (i++), ca);
        }
        Merlin crypto = new Merlin();
        crypto.setTrustStore(ts);
        if (opt.containsKey("broker-cert")) {
            KeyStore ks = KeyStore.getInstance("JKS");
            ks.load(null, null);
            int j = 0;
            for (X509Certificate bc : readCertificates(opt.get("broker-cert"))) {
                ks.setCertificateEntry("broker" + (j++), bc);
            }
            crypto.setKeyStore(ks);
        }
        if (opt.containsKey("crl")) {
            CertificateFactory cf = CertificateFactory.getInstance("X.509");
            List<X509CRL> crls = new ArrayList<X509CRL>();
            for (byte[] der : pemBlocks(opt.get("crl"), "X509 CRL")) {
                crls.add((X509CRL) cf.generateCRL(new ByteArrayInputStream(der)));
            }
            crypto.setCRLCertStore(
                CertStore.getInstance("Collection", new CollectionCertStoreParameters(crls)));
        }
        return crypto;
    }

    // ---------------------------------------------------------------- the request

    static String x(String s) {
        StringBuilder b = new StringBuilder(s.length() + 8);
        for (int i = 0; i < s.length(); i++) {
            char ch = s.charAt(i);
            switch (ch) {
            case '&': b.append("&amp;"); break;
            case '<': b.append("&lt;"); break;
            case '>': b.append("&gt;"); break;
            case '"': b.append("&quot;"); break;
            default: b.append(ch);
            }
        }
        return b.toString();
    }

    void el(StringBuilder b, String name, String value) {
        if (value != null && !value.isEmpty()) {
            b.append('<').append(name).append('>').append(x(value)).append("</").append(name).append('>');
        }
    }

    /** The unsigned SOAP 1.1 envelope, as document/literal SyncChannel v10 SendMessage. */
    Document buildEnvelope() throws Exception {
        String messageId = UUID.randomUUID().toString();
        String now = OffsetDateTime.now().format(DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSSXXX"));
        StringBuilder b = new StringBuilder();
        b.append("<soapenv:Envelope xmlns:soapenv=\"").append(SOAP11_NS).append("\">");
        b.append("<soapenv:Header/>");
        b.append("<soapenv:Body>");
        b.append("<typ:SendMessage xmlns:typ=\"").append(TYPES_NS).append("\"><request><requestInfo>");
        el(b, "messageId", messageId);
        el(b, "serviceId", get("service-id", "SIO_PSO_QUERY"));
        el(b, "messageDate", now);
        b.append("<sender>");
        el(b, "senderId", get("sender-id", "SIO_PSO_CLIENT"));
        b.append("</sender></requestInfo><requestData><data>");
        appendQuery(b);
        b.append("</data></requestData></request></typ:SendMessage>");
        b.append("</soapenv:Body></soapenv:Envelope>");
        return parse(b.toString().getBytes(StandardCharsets.UTF_8));
    }

    /** The q:query of the flags. */
    void appendQuery(StringBuilder b) throws UsageException {
        b.append("<q:query xmlns:q=\"").append(Q_NS).append("\">");
        el(b, "q:basis", need("basis"));
        b.append("<q:case>");
        el(b, "q:number", need("case"));
        el(b, "q:instructionNo", get("instruction-no", null));
        el(b, "q:requestingBody", get("requesting-body", null));
        el(b, "q:coveringLetterNo", get("covering-letter-no", null));
        el(b, "q:year", get("year", null));
        el(b, "q:court", get("court", null));
        b.append("</q:case>");
        el(b, "q:article", get("article", null));
        b.append("<q:subject>");
        if (opt.containsKey("subject-bin")) {
            el(b, "q:bin", opt.get("subject-bin"));
        } else {
            el(b, "q:iin", need("subject"));
        }
        b.append("</q:subject><q:services>");
        for (String s : need("services").split(",")) {
            if (!s.trim().isEmpty()) {
                el(b, "q:service", s.trim());
            }
        }
        b.append("</q:services>");
        el(b, "q:purpose", get("purpose", "проверка по материалам дела"));
        b.append("</q:query>");
    }

    /**
     * Signs as WSS4J's handler does for action="Timestamp Signature" (TimestampAction, then
     * SignatureAction): the Timestamp is prepended to the header, the Signature is prepended
     * before it, the BinarySecurityToken (if any) is prepended last: BST, Signature, Timestamp.
     */
    void sign(Document doc, Merlin crypto, int keyIdType, String sigAlg, String digestAlg)
        throws Exception {
        WSSConfig cfg = WSSConfig.getNewInstance(); // BSP compliant, ms precision, inclusive prefixes
        WSSecHeader secHeader = new WSSecHeader();
        secHeader.setMustUnderstand(true); // WSHandlerConstants.MUST_UNDERSTAND defaults to true
        secHeader.insertSecurityHeader(doc);

        boolean timestamp = !flag("no-timestamp");
        if (timestamp) {
            WSSecTimestamp ts = new WSSecTimestamp(cfg);
            ts.setTimeToLive(Integer.parseInt(get("ttl", "300")));
            ts.build(doc, secHeader);
        }

        WSSecSignature sig = new WSSecSignature(cfg);
        sig.setUserInfo(ALIAS, new String(STOREPASS));
        sig.setKeyIdentifierType(keyIdType);
        sig.setSignatureAlgorithm(sigAlg);
        sig.setDigestAlgo(digestAlg);
        sig.setSigCanonicalization(WSConstants.C14N_EXCL_OMIT_COMMENTS);
        sig.setUseSingleCertificate(true);

        // --parts timestamp,body: CXF signatureParts "{Element}{wsu}Timestamp;{Element}{soapenv}Body";
        // --parts body: CXF's default when signatureParts is not set (WSHandler adds the Body
        // alone, so a Timestamp, if any, goes unsigned).
        String partsOpt = get("parts", timestamp ? "timestamp,body" : "body");
        List<WSEncryptionPart> parts = new ArrayList<WSEncryptionPart>();
        for (String p : partsOpt.split(",")) {
            if ("timestamp".equals(p.trim())) {
                if (!timestamp) {
                    throw new UsageException("--parts timestamp with --no-timestamp");
                }
                parts.add(new WSEncryptionPart(WSConstants.TIMESTAMP_TOKEN_LN, WSConstants.WSU_NS, "Element"));
            } else if ("body".equals(p.trim())) {
                parts.add(new WSEncryptionPart(WSConstants.ELEM_BODY, SOAP11_NS, "Element"));
            } else {
                throw new UsageException("--parts takes timestamp and/or body, not " + p);
            }
        }
        sig.setParts(parts);

        sig.prepare(doc, crypto, secHeader);
        List<javax.xml.crypto.dsig.Reference> refs = sig.addReferencesToSign(parts, secHeader);
        sig.computeSignature(refs, true, null);
        sig.prependBSTElementToHeader(secHeader);
    }

    // ---------------------------------------------------------------- AsyncChannel v10

    static final String[] ASYNC_FAULTS = {"others-case", "unknown-id", "unknown-chain", "unknown-receipt"};

    /** A call of the flow answered with a SOAP fault (recorded in the output's faults). */
    static final class AsyncFault extends Exception {
        private static final long serialVersionUID = 1L;
        AsyncFault(String m) { super(m); }
    }

    /** The flow cannot go on: an answer is not what the contract or the flow expects. */
    static final class FlowError extends Exception {
        private static final long serialVersionUID = 1L;
        FlowError(String m) { super(m); }
    }

    static String now() {
        return OffsetDateTime.now().format(DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSSXXX"));
    }

    /** The AsyncChannel v10 flow: one signed call after another, each answer verified. */
    final class Async {
        final Map<String, Object> out = new LinkedHashMap<String, Object>();
        final List<Object> calls = new ArrayList<Object>();
        final List<Object> faults = new ArrayList<Object>();
        final List<Object> states = new ArrayList<Object>();
        Merlin crypto;
        int keyIdType;
        String sigAlg;
        String sender;
        String serviceId;

        int run() throws Exception {
            String keyId = get("key-id", "bst");
            out.put("ok", false);
            out.put("channel", "async");
            out.put("keyId", keyId);
            out.put("ack", null);
            out.put("requestStates", states);
            out.put("polls", 0);
            out.put("chainMessages", null);
            out.put("response", null);
            out.put("result", null);
            out.put("services", new ArrayList<Object>());
            Map<String, Object> responseStates = new LinkedHashMap<String, Object>();
            responseStates.put("beforeReceipt", null);
            responseStates.put("afterReceipt", null);
            out.put("responseStates", responseStates);
            out.put("receipt", null);
            Map<String, Object> mailbox = new LinkedHashMap<String, Object>();
            mailbox.put("before", null);
            mailbox.put("after", null);
            out.put("mailbox", mailbox);
            out.put("calls", calls);
            out.put("answersVerified", false);
            out.put("faults", faults);
            out.put("error", null);

            List<String> provoke = new ArrayList<String>();
            int rc;
            try {
                keyIdType = keyIdentifierType(keyId);
                X509Certificate cert = readCertificates(need("cert")).get(0);
                PrivateKey key = readPrivateKey(need("key"));
                crypto = signingCrypto(cert, key);
                sigAlg = get("sig-alg", "EC".equals(key.getAlgorithm()) ? ECDSA_SHA256 : RSA_SHA256);
                sender = get("sender-id", "SIO_PSO_CLIENT");
                serviceId = get("service-id", "SIO_PSO_QUERY");
                if (opt.containsKey("async-fault")) {
                    for (String k : opt.get("async-fault").split(",")) {
                        if (!java.util.Arrays.asList(ASYNC_FAULTS).contains(k.trim())) {
                            throw new UsageException("--async-fault takes " + String.join(", ", ASYNC_FAULTS) + ", not " + k);
                        }
                        provoke.add(k.trim());
                    }
                }
                if (opt.containsKey("dump-dir")) {
                    Files.createDirectories(Paths.get(opt.get("dump-dir")));
                }
            } catch (UsageException e) {
                out.put("error", e.getMessage());
                System.err.println("wss4j client: " + e.getMessage());
                System.out.println(json(out));
                return 2;
            }
            try {
                if (!provoke.isEmpty()) {
                    rc = provokeFaults(provoke) ? 1 : 2;
                } else {
                    flow(responseStates, mailbox);
                    rc = 0;
                }
            } catch (AsyncFault e) {
                out.put("error", e.getMessage());
                rc = provoke.isEmpty() ? 1 : 2;
            } catch (Exception e) {
                out.put("error", describe(e));
                System.err.println("wss4j client: " + describe(e));
                e.printStackTrace(System.err);
                rc = 2;
            }
            boolean verified = false;
            for (Object c : calls) {
                @SuppressWarnings("unchecked")
                Map<String, Object> m = (Map<String, Object>) c;
                if (Boolean.TRUE.equals(m.get("fault")) || m.get("httpStatus") == null) {
                    continue;
                }
                if (!Boolean.TRUE.equals(m.get("signatureVerified"))) {
                    verified = false;
                    break;
                }
                verified = true;
            }
            out.put("answersVerified", verified);
            out.put("ok", provoke.isEmpty() ? rc == 0 && verified : rc == 1);
            System.out.println(json(out));
            return rc;
        }

        void flow(Map<String, Object> responseStates, Map<String, Object> mailbox) throws Exception {
            Element ack = call("sendMessage", sendMessageRequest(), null);
            Map<String, Object> a = new LinkedHashMap<String, Object>();
            for (String f : new String[] {"messageId", "correlationId", "responseDate", "sessionId"}) {
                a.put(f, text(child(ack, null, f)));
            }
            out.put("ack", a);
            String id = (String) a.get("messageId");
            if (id == null || id.isEmpty()) {
                throw new FlowError("the acknowledgement has no messageId");
            }

            long deadline = System.nanoTime() + (long) (Double.parseDouble(get("poll-timeout", "20")) * 1e9);
            long interval = (long) (Double.parseDouble(get("poll-interval", "0.2")) * 1000);
            String state;
            Element st;
            int polls = 0;
            while (true) {
                st = call("getMessageStatus", statusRequest(id), null);
                out.put("polls", ++polls);
                state = text(child(st, null, "messageState"));
                if (states.isEmpty() || !states.get(states.size() - 1).equals(state)) {
                    states.add(state);
                }
                if (!"ON_DELIVERY".equals(state)) {
                    break;
                }
                if (System.nanoTime() > deadline) {
                    throw new FlowError("the request is still ON_DELIVERY after " + get("poll-timeout", "20") + "s");
                }
                Thread.sleep(interval);
            }
            if (!"DELIVERED".equals(state)) {
                throw new FlowError("the request ended " + state + " (" + text(path(st, "status", "statusMessage")) + "), not DELIVERED");
            }

            Element chain = call("getMessages", messagesRequest(null, (String) a.get("correlationId")), null);
            List<Element> messages = new ArrayList<Element>();
            for (Element m : children(chain)) {
                if ("messages".equals(m.getLocalName())) {
                    messages.add(m);
                }
            }
            out.put("chainMessages", messages.size());
            Element message = null;
            for (Element m : messages) {
                if ("RESPONSE".equals(text(path(m, "messageInfo", "messageType")))) {
                    message = m;
                    break;
                }
            }
            if (message == null) {
                throw new FlowError("getMessages by the chain " + a.get("correlationId") + " returned no RESPONSE");
            }
            Element mi = child(message, null, "messageInfo");
            Map<String, Object> info = new LinkedHashMap<String, Object>();
            for (String f : new String[] {"messageId", "correlationId", "serviceId", "messageType", "messageDate"}) {
                info.put(f, text(child(mi, null, f)));
            }
            info.put("senderId", text(path(mi, "sender", "senderId")));
            out.put("response", info);
            Element data = path(message, "messageData", "data");
            Element result = data == null ? null : child(data, Q_NS, "result");
            if (result != null) {
                Map<String, Object> r = new LinkedHashMap<String, Object>();
                r.put("requestMessageId", text(child(result, Q_NS, "requestMessageId")));
                r.put("signerIin", text(child(result, Q_NS, "signerIin")));
                out.put("result", r);
                List<Object> services = new ArrayList<Object>();
                for (Element s : children(result)) {
                    if (Q_NS.equals(s.getNamespaceURI()) && "service".equals(s.getLocalName())) {
                        Map<String, Object> sv = new LinkedHashMap<String, Object>();
                        String no = s.getAttribute("no");
                        sv.put("no", no.matches("[0-9]{1,9}") ? (Object) Integer.valueOf(no) : no);
                        sv.put("status", s.getAttribute("status"));
                        sv.put("reason", s.hasAttribute("reason") ? s.getAttribute("reason") : null);
                        services.add(sv);
                    }
                }
                out.put("services", services);
            }
            String responseId = (String) info.get("messageId");

            mailbox.put("before", mailbox(responseId));
            st = call("getMessageStatus", statusRequest(responseId), null);
            responseStates.put("beforeReceipt", text(child(st, null, "messageState")));
            Element receipt = call("sendDeliveryNotification", notificationRequest(responseId), null);
            Map<String, Object> rc = new LinkedHashMap<String, Object>();
            for (String f : new String[] {"notificationId", "responseDate", "sessionId"}) {
                rc.put(f, text(child(receipt, null, f)));
            }
            out.put("receipt", rc);
            st = call("getMessageStatus", statusRequest(responseId), null);
            responseStates.put("afterReceipt", text(child(st, null, "messageState")));
            mailbox.put("after", mailbox(responseId));
        }

        /** getMessages by serviceId alone: how many messages, and whether id is one of them. */
        Map<String, Object> mailbox(String id) throws Exception {
            Element r = call("getMessages", messagesRequest(null, null), null);
            int count = 0;
            boolean has = false;
            for (Element m : children(r)) {
                if ("messages".equals(m.getLocalName())) {
                    count++;
                    has |= id.equals(text(path(m, "messageInfo", "messageId")));
                }
            }
            Map<String, Object> box = new LinkedHashMap<String, Object>();
            box.put("count", count);
            box.put("hasResponse", has);
            return box;
        }

        /** Provokes each fault; whether every call was refused with one. */
        boolean provokeFaults(List<String> kinds) throws Exception {
            String id = get("fault-id", UUID.randomUUID().toString());
            List<String> answered = new ArrayList<String>();
            for (String kind : kinds) {
                try {
                    switch (kind) {
                    case "others-case":
                        call("sendMessage", sendMessageRequest(), kind);
                        break;
                    case "unknown-id":
                        call("getMessageStatus", statusRequest(id), kind);
                        break;
                    case "unknown-chain":
                        call("getMessages", messagesRequest(null, id), kind);
                        break;
                    default: // unknown-receipt
                        call("sendDeliveryNotification", notificationRequest(id), kind);
                    }
                    answered.add(kind);
                } catch (AsyncFault e) {
                    // expected
                }
            }
            if (!answered.isEmpty()) {
                out.put("error", "answered, not refused: " + String.join(", ", answered));
            }
            return answered.isEmpty();
        }

        /** A REQUEST, without messageId and correlationId as the contract says, carrying q:query. */
        String sendMessageRequest() throws UsageException {
            StringBuilder b = new StringBuilder("<messageInfo>");
            el(b, "serviceId", serviceId);
            el(b, "messageType", "REQUEST");
            el(b, "messageDate", now());
            b.append("<sender>");
            el(b, "senderId", sender);
            b.append("</sender></messageInfo><messageData><data>");
            appendQuery(b);
            b.append("</data></messageData>");
            return b.toString();
        }

        String statusRequest(String id) {
            StringBuilder b = new StringBuilder();
            el(b, "messageId", id);
            el(b, "requestDate", now());
            b.append("<sender>");
            el(b, "senderId", sender);
            b.append("</sender>");
            return b.toString();
        }

        String messagesRequest(String messageId, String correlationId) {
            StringBuilder b = new StringBuilder();
            el(b, "messageId", messageId);
            el(b, "correlationId", correlationId);
            el(b, "requestDate", now());
            el(b, "serviceId", serviceId);
            b.append("<sender>");
            el(b, "senderId", sender);
            b.append("</sender>");
            return b.toString();
        }

        String notificationRequest(String id) {
            StringBuilder b = new StringBuilder("<notification>");
            el(b, "messageId", id);
            el(b, "serviceId", serviceId);
            el(b, "notificationDate", now());
            b.append("<deliveryStatus>");
            el(b, "receiveStatus", "MESSAGE_ACCEPTED");
            el(b, "statusDate", now());
            el(b, "resendMessage", "NOT_RESEND");
            b.append("</deliveryStatus></notification>");
            el(b, "requestDate", now());
            b.append("<sender>");
            el(b, "senderId", sender);
            b.append("</sender>");
            return b.toString();
        }

        /**
         * One call: typ:OPERATION/request holding content, in a SOAP 1.1 envelope as CXF writes a
         * wrapped document/literal call, signed with WSS4J, posted; the answer verified with
         * WSSecurityEngine and recorded. Returns typ:OPERATIONResponse/response, or throws
         * AsyncFault for a SOAP fault.
         */
        Element call(String operation, String content, String provoked) throws Exception {
            Map<String, Object> c = new LinkedHashMap<String, Object>();
            c.put("operation", operation);
            c.put("httpStatus", null);
            c.put("fault", false);
            c.put("signed", null);
            c.put("signatureVerified", false);
            c.put("verifyError", null);
            c.put("bodySigned", null);
            c.put("keyReference", null);
            c.put("signedIds", new ArrayList<Object>());
            c.put("request", null);
            c.put("reply", null);
            calls.add(c);
            String prefix = String.format("%02d-%s-", calls.size(), operation);

            StringBuilder b = new StringBuilder();
            b.append("<soapenv:Envelope xmlns:soapenv=\"").append(SOAP11_NS).append("\">");
            b.append("<soapenv:Header/><soapenv:Body>");
            b.append("<typ:").append(operation).append(" xmlns:typ=\"").append(ASYNC_TYPES_NS).append("\"><request>");
            b.append(content);
            b.append("</request></typ:").append(operation).append("></soapenv:Body></soapenv:Envelope>");
            Document doc = parse(b.toString().getBytes(StandardCharsets.UTF_8));
            sign(doc, crypto, keyIdType, sigAlg, get("digest-alg", SHA256));
            byte[] request = serialize(doc);
            dump(c, "request", prefix + "request.xml", request);

            int[] status = new int[1];
            byte[] answer = post(request, status);
            c.put("httpStatus", status[0]);
            dump(c, "reply", prefix + "reply.xml", answer);

            Document reply;
            try {
                reply = parse(answer);
            } catch (Exception e) {
                throw new FlowError(operation + ": the answer is not XML (HTTP " + status[0] + ", " + answer.length + " bytes): " + describe(e));
            }
            Element env = reply.getDocumentElement();
            Element body = env == null ? null : child(env, SOAP11_NS, "Body");
            if (env == null || !SOAP11_NS.equals(env.getNamespaceURI()) || body == null) {
                throw new FlowError(operation + ": the answer is not a SOAP 1.1 envelope with a Body (HTTP " + status[0] + ")");
            }
            Element sec = WSSecurityUtil.getSecurityHeader(reply, null);
            c.put("signed", sec != null && child(sec, "http://www.w3.org/2000/09/xmldsig#", "Signature") != null);
            Verification v = verify(answer);
            c.put("signatureVerified", v.verified);
            c.put("verifyError", v.error);
            c.put("keyReference", v.referenceType);
            @SuppressWarnings("unchecked")
            List<Object> ids = (List<Object>) c.get("signedIds");
            boolean bodySigned = false;
            for (String sid : v.signedIds) {
                ids.add(sid);
                bodySigned |= sid.endsWith(" Body");
            }
            c.put("bodySigned", v.signedIds.isEmpty() ? null : bodySigned);

            Element fault = child(body, SOAP11_NS, "Fault");
            if (fault != null) {
                c.put("fault", true);
                Map<String, Object> f = new LinkedHashMap<String, Object>();
                f.put("operation", operation);
                f.put("provoked", provoked);
                f.put("faultcode", text(child(fault, null, "faultcode")));
                f.put("faultstring", text(child(fault, null, "faultstring")));
                f.put("errorCode", null);
                f.put("detailElement", null);
                f.put("detailNamespace", null);
                Element detail = child(fault, null, "detail");
                List<Element> ds = detail == null ? new ArrayList<Element>() : children(detail);
                if (!ds.isEmpty()) {
                    Element d = ds.get(0);
                    f.put("errorCode", text(child(d, null, "errorCode")));
                    f.put("detailElement", d.getLocalName());
                    f.put("detailNamespace", d.getNamespaceURI());
                }
                faults.add(f);
                System.err.println("wss4j client: " + operation + ": fault " + f.get("errorCode") + ": " + f.get("faultstring"));
                throw new AsyncFault(operation + ": fault " + f.get("errorCode"));
            }
            if (v.error != null) {
                System.err.println("wss4j client: " + operation + ": answer signature: " + v.error);
            }
            Element r = path(body, operation + "Response", "response");
            Element wrapper = child(body, ASYNC_TYPES_NS, operation + "Response");
            if (wrapper == null || r == null) {
                throw new FlowError(operation + ": the answer's Body holds no typ:" + operation + "Response/response");
            }
            return r;
        }

        void dump(Map<String, Object> c, String kind, String name, byte[] bytes) throws IOException {
            if (opt.containsKey("dump-dir")) {
                Files.write(Paths.get(opt.get("dump-dir"), name), bytes);
                c.put(kind, name);
            }
        }
    }

    /** JSON of maps, lists, strings, numbers, booleans and null. */
    static String json(Object o) {
        if (o == null) {
            return "null";
        }
        if (o instanceof String) {
            return js((String) o);
        }
        if (o instanceof Number || o instanceof Boolean) {
            return o.toString();
        }
        StringBuilder b = new StringBuilder();
        if (o instanceof Map) {
            b.append('{');
            for (Map.Entry<?, ?> e : ((Map<?, ?>) o).entrySet()) {
                if (b.length() > 1) {
                    b.append(',');
                }
                b.append(js(e.getKey().toString())).append(':').append(json(e.getValue()));
            }
            return b.append('}').toString();
        }
        if (o instanceof List) {
            b.append('[');
            for (Object e : (List<?>) o) {
                if (b.length() > 1) {
                    b.append(',');
                }
                b.append(json(e));
            }
            return b.append(']').toString();
        }
        return js(o.toString());
    }

    // ---------------------------------------------------------------- the reply

    int handleReply(byte[] reply, int httpStatus) throws Exception {
        Document doc;
        try {
            doc = parse(reply);
        } catch (Exception e) {
            String msg = "reply is not XML (HTTP " + httpStatus + ", " + reply.length + " bytes): " + describe(e);
            System.err.println("wss4j client: " + msg);
            System.out.println("{\"ok\":false,\"fault\":null,\"status\":null,\"services\":[],"
                + "\"replySignatureVerified\":false,\"verifyError\":null,\"httpStatus\":" + httpStatus
                + ",\"error\":" + js(msg) + "}");
            return 2;
        }
        Element env = doc.getDocumentElement();
        Element body = env == null ? null : child(env, SOAP11_NS, "Body");
        if (env == null || !SOAP11_NS.equals(env.getNamespaceURI()) || body == null) {
            String msg = "reply is not a SOAP 1.1 envelope with a Body (HTTP " + httpStatus + ")";
            System.out.println("{\"ok\":false,\"fault\":null,\"status\":null,\"services\":[],"
                + "\"replySignatureVerified\":false,\"verifyError\":null,\"httpStatus\":" + httpStatus
                + ",\"error\":" + js(msg) + "}");
            return 2;
        }

        // WSS4J verification on a fresh parse of the exact bytes
        Verification v = verify(reply);

        StringBuilder out = new StringBuilder();
        Element fault = child(body, SOAP11_NS, "Fault");
        boolean ok;
        int rc;
        String status = null;
        String services = "[]";
        if (fault != null) {
            String faultcode = text(child(fault, null, "faultcode"));
            String faultstring = text(child(fault, null, "faultstring"));
            String errorCode = null;
            Element detail = child(fault, null, "detail");
            if (detail != null) {
                for (Element d : children(detail)) {
                    Element ec = child(d, null, "errorCode");
                    if (ec != null) {
                        errorCode = text(ec);
                        break;
                    }
                }
            }
            out.append("{\"ok\":false,\"fault\":{\"faultcode\":").append(js(faultcode))
               .append(",\"faultstring\":").append(js(faultstring))
               .append(",\"errorCode\":").append(js(errorCode)).append('}');
            System.err.println("wss4j client: fault " + errorCode + ": " + faultstring);
            ok = false;
            rc = 1;
        } else {
            Element st = path(body, "SendMessageResponse", "response", "responseInfo", "status", "code");
            status = st == null ? null : text(st);
            StringBuilder sv = new StringBuilder("[");
            Element data = path(body, "SendMessageResponse", "response", "responseData", "data");
            Element result = data == null ? null : child(data, Q_NS, "result");
            if (result != null) {
                for (Element s : children(result)) {
                    if (Q_NS.equals(s.getNamespaceURI()) && "service".equals(s.getLocalName())) {
                        if (sv.length() > 1) {
                            sv.append(',');
                        }
                        String no = s.getAttribute("no");
                        sv.append("{\"no\":").append(no.matches("[0-9]{1,9}") ? no : js(no))
                          .append(",\"status\":").append(js(s.getAttribute("status")))
                          .append(",\"reason\":").append(js(s.hasAttribute("reason") ? s.getAttribute("reason") : null))
                          .append('}');
                    }
                }
            }
            services = sv.append(']').toString();
            ok = status != null && status.startsWith("SCSS") && v.verified;
            out.append("{\"ok\":").append(ok).append(",\"fault\":null");
            rc = 0;
        }
        out.append(",\"status\":").append(js(status))
           .append(",\"services\":").append(services)
           .append(",\"replySignatureVerified\":").append(v.verified)
           .append(",\"verifyError\":").append(js(v.error))
           .append(",\"httpStatus\":").append(httpStatus)
           .append(",\"replySigner\":").append(js(v.signer))
           .append(",\"replyKeyReference\":").append(js(v.referenceType))
           .append(",\"replySignedIds\":[");
        for (int i = 0; i < v.signedIds.size(); i++) {
            out.append(i == 0 ? "" : ",").append(js(v.signedIds.get(i)));
        }
        out.append("]}");
        if (v.error != null) {
            System.err.println("wss4j client: reply signature: " + v.error);
        }
        System.out.println(out);
        return rc;
    }

    static final class Verification {
        boolean verified;
        String error;
        String signer;
        String referenceType;
        List<String> signedIds = new ArrayList<String>();
    }

    /**
     * Verifies like CXF's WSS4JInInterceptor: WSSecurityEngine.processSecurityHeader on the
     * wsse:Security header with no actor, a Merlin sigCrypto (truststore = CA), then the actions
     * check (results against --in-action, in any order, BST results ignored) and the coverage
     * check that the soap:Body was among the signed elements.
     */
    Verification verify(byte[] bytes) {
        Verification v = new Verification();
        try {
            Document doc = parse(bytes);
            Element sec = WSSecurityUtil.getSecurityHeader(doc, null);
            if (sec == null) {
                v.error = "no wsse:Security header in the reply";
                return v;
            }
            WSSConfig cfg = WSSConfig.getNewInstance();
            cfg.setWsiBSPCompliant(!"false".equalsIgnoreCase(get("bsp", "true")));
            WSSecurityEngine engine = new WSSecurityEngine();
            engine.setWssConfig(cfg);
            RequestData rd = new RequestData();
            rd.setWssConfig(cfg);
            rd.setSigCrypto(verificationCrypto());
            rd.setEnableRevocation(opt.containsKey("crl"));
            List<WSSecurityEngineResult> results = engine.processSecurityHeader(sec, rd);

            Element body = WSSecurityUtil.findBodyElement(doc);
            boolean bodySigned = false;
            boolean signed = false;
            List<Integer> seen = new ArrayList<Integer>();
            for (WSSecurityEngineResult r : results) {
                int action = ((Integer) r.get(WSSecurityEngineResult.TAG_ACTION)).intValue();
                if (action != WSConstants.BST && action != WSConstants.SC) {
                    seen.add(action);
                }
                if (action != WSConstants.SIGN) {
                    continue;
                }
                signed = true;
                X509Certificate[] certs = (X509Certificate[]) r.get(WSSecurityEngineResult.TAG_X509_CERTIFICATES);
                if (certs != null && certs.length > 0 && certs[0] != null) {
                    v.signer = certs[0].getSubjectX500Principal().getName();
                }
                Object rt = r.get(WSSecurityEngineResult.TAG_X509_REFERENCE_TYPE);
                v.referenceType = rt == null ? null : rt.toString();
                @SuppressWarnings("unchecked")
                List<WSDataRef> refs = (List<WSDataRef>) r.get(WSSecurityEngineResult.TAG_DATA_REF_URIS);
                if (refs != null) {
                    for (WSDataRef ref : refs) {
                        Element pe = ref.getProtectedElement();
                        v.signedIds.add(ref.getWsuId() + (pe == null ? "" : " " + pe.getLocalName()));
                        if (pe != null && pe == body) {
                            bodySigned = true;
                        }
                    }
                }
            }
            if (!signed) {
                v.error = "WSS4J found no signature in the wsse:Security header";
                return v;
            }
            String inAction = get("in-action", "Signature");
            if (!"none".equalsIgnoreCase(inAction)) {
                List<Integer> expected = new ArrayList<Integer>();
                for (String a : inAction.trim().split("\\s+")) {
                    expected.add(actionNumber(a));
                }
                List<Integer> left = new ArrayList<Integer>(expected);
                boolean match = true;
                for (Integer a : seen) {
                    if (!left.remove(a)) {
                        match = false;
                    }
                }
                if (!match || !left.isEmpty()) {
                    v.error = "Security processing failed (actions mismatch): in-action \"" + inAction
                        + "\" but the header held " + actionNames(seen);
                    return v;
                }
            }
            if (!bodySigned) {
                v.error = "the soap:Body is not among the signed elements " + v.signedIds;
                return v;
            }
            v.verified = true;
        } catch (WSSecurityException e) {
            v.error = describe(e);
        } catch (Exception e) {
            v.error = describe(e);
        }
        return v;
    }

    static int actionNumber(String a) throws UsageException {
        switch (a) {
        case WSHandlerConstants.SIGNATURE: return WSConstants.SIGN;
        case WSHandlerConstants.TIMESTAMP: return WSConstants.TS;
        case WSHandlerConstants.ENCRYPT: return WSConstants.ENCR;
        case WSHandlerConstants.USERNAME_TOKEN: return WSConstants.UT;
        default: throw new UsageException("--in-action: unsupported action " + a);
        }
    }

    static String actionNames(List<Integer> acts) {
        List<String> n = new ArrayList<String>();
        for (Integer a : acts) {
            if (a == WSConstants.SIGN) n.add("Signature");
            else if (a == WSConstants.TS) n.add("Timestamp");
            else if (a == WSConstants.ENCR) n.add("Encrypt");
            else if (a == WSConstants.UT) n.add("UsernameToken");
            else n.add("action " + a);
        }
        return n.toString();
    }

    // ---------------------------------------------------------------- XML helpers

    static Document parse(byte[] bytes) throws Exception {
        DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
        f.setNamespaceAware(true);
        f.setFeature(XMLConstants.FEATURE_SECURE_PROCESSING, true);
        f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        f.setExpandEntityReferences(false);
        DocumentBuilder db = f.newDocumentBuilder();
        return db.parse(new ByteArrayInputStream(bytes));
    }

    /** The DOM as UTF-8 bytes, without an XML declaration (as CXF writes it). */
    static byte[] serialize(Document doc) throws Exception {
        Transformer t = TransformerFactory.newInstance().newTransformer();
        t.setOutputProperty(OutputKeys.OMIT_XML_DECLARATION, "yes");
        t.setOutputProperty(OutputKeys.ENCODING, "UTF-8");
        t.setOutputProperty(OutputKeys.INDENT, "no");
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        t.transform(new DOMSource(doc), new StreamResult(bos));
        return bos.toByteArray();
    }

    static List<Element> children(Element e) {
        List<Element> out = new ArrayList<Element>();
        for (Node n = e.getFirstChild(); n != null; n = n.getNextSibling()) {
            if (n.getNodeType() == Node.ELEMENT_NODE) {
                out.add((Element) n);
            }
        }
        return out;
    }

    /** The first child element with this local name and namespace (null ns: any namespace). */
    static Element child(Element e, String ns, String local) {
        for (Element c : children(e)) {
            if (local.equals(c.getLocalName()) && (ns == null || ns.equals(c.getNamespaceURI()))) {
                return c;
            }
        }
        return null;
    }

    static Element path(Element e, String... locals) {
        Element cur = e;
        for (String l : locals) {
            cur = child(cur, null, l);
            if (cur == null) {
                return null;
            }
        }
        return cur;
    }

    static String text(Element e) {
        return e == null ? null : e.getTextContent().trim();
    }

    static byte[] readAll(InputStream in) throws IOException {
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        byte[] buf = new byte[8192];
        int n;
        while ((n = in.read(buf)) > 0) {
            bos.write(buf, 0, n);
        }
        in.close();
        return bos.toByteArray();
    }

    static String describe(Throwable t) {
        StringBuilder b = new StringBuilder();
        String prev = null;
        for (Throwable c = t; c != null; c = c.getCause()) {
            String m = c.getMessage();
            String part = c.getClass().getSimpleName() + (m == null ? "" : ": " + m);
            if (m != null && prev != null && prev.contains(m)) {
                continue;
            }
            if (b.length() > 0) {
                b.append(" <- ");
            }
            b.append(part);
            prev = m;
            if (c.getCause() == c) {
                break;
            }
        }
        return b.toString();
    }

    /** A JSON string literal, or null. */
    static String js(String s) {
        if (s == null) {
            return "null";
        }
        StringBuilder b = new StringBuilder(s.length() + 2).append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
            case '"': b.append("\\\""); break;
            case '\\': b.append("\\\\"); break;
            case '\n': b.append("\\n"); break;
            case '\r': b.append("\\r"); break;
            case '\t': b.append("\\t"); break;
            default:
                if (c < 0x20 || c == 0x2028 || c == 0x2029) {
                    b.append(String.format("\\u%04x", (int) c));
                } else {
                    b.append(c);
                }
            }
        }
        return b.append('"').toString();
    }

}
