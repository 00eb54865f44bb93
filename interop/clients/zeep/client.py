#!/usr/bin/python3
"""A zeep (Python) interoperability client for the broker's SyncChannel v10 SendMessage.

It behaves as a third-party system built on zeep would: it reads the broker's WSDL and XSDs with
zeep, builds the SendMessage request through zeep's binding, signs it with zeep's own WS-Security
signing (zeep.wsse.signature), posts it, verifies the reply's signature with zeep's own
verify_envelope against the broker's certificate, and deserializes the reply with zeep's binding.

Run it with Debian's Python, which has python3-zeep and python3-xmlsec:

    /usr/bin/python3 interop/clients/zeep/client.py --url http://127.0.0.1:8080/SyncChannel/v10 \
        --style binary --cert data/pki/users/750312300458.pem --key data/pki/users/750312300458.key \
        --broker-cert data/pki/broker.pem --basis 1 --case 261500031000123 --article 216 \
        --subject 810803325634 --services 1,5 --dump-request req.xml --dump-reply reply.xml

Styles (--style):
  binary     zeep.wsse.signature.BinarySignature: the certificate travels in a
             wsse:BinarySecurityToken, referenced from ds:KeyInfo/wsse:SecurityTokenReference/
             wsse:Reference.
  signature  zeep.wsse.signature.Signature (zeep's default): ds:KeyInfo/
             wsse:SecurityTokenReference/ds:X509Data holding X509IssuerSerial and X509Certificate.

Both sign with RSA-SHA256 and SHA-256 digests unless --zeep-default-algorithms is given (zeep's
defaults are RSA-SHA1 and SHA-1).

Verification: zeep calls wsse.verify(envelope) on every reply (fault or not) before it looks at
the Body. zeep's own Signature.verify checks the reply against the *client's own* certificate, so
this client wraps the signer in an object whose verify calls
zeep.wsse.signature.verify_envelope(envelope, --broker-cert) and records the outcome instead of
raising, so that faults and parse errors still surface. --verify-mode zeep-stock keeps zeep's own
verify instead (to show what an unmodified zeep client sees).

Output: one JSON object on stdout:
  {"ok": bool, "fault": {"faultcode", "faultstring", "errorCode"} | null, "status": "SCSS001" | ...,
   "services": [{"no": 1, "status": "ok"}, ...], "replySignatureVerified": bool,
   "verifyError": str | null, "replyBodySigned": bool | null, "parseError": str | null,
   "parsedBy": "zeep" | "lxml" | null, "style": ..., "messageId": ..., "httpStatus": int | null,
   "error": str | null}
ok is true exactly when the exit status is 0. replyBodySigned: whether the reply's WS-Security
signature has a Reference to the soap:Body's wsu:Id (verify_envelope itself does not require it).

Exit status: 0 a non-fault reply was received and its status read (by zeep's binding, or by lxml
when zeep's binding could not parse it: then parseError says why); the signature may still have
failed to verify (replySignatureVerified false, verifyError says why). 1 a SOAP fault. 2 any other
error (usage, WSDL, signing, network, an unreadable reply).
"""

import argparse
import datetime
import json
import sys
import traceback
import uuid

try:
    import xmlsec
    import zeep
    import zeep.exceptions
    import zeep.wsse.signature
    from lxml import etree
except ImportError as exc:  # not Debian's Python, or python3-zeep/python3-xmlsec missing
    print(json.dumps({"ok": False, "fault": None, "status": None, "services": [],
                      "replySignatureVerified": False, "verifyError": None, "parseError": None,
                      "parsedBy": None, "error": "import: %s (run with /usr/bin/python3)" % exc}))
    sys.exit(2)

NS_Q = "urn:kz:sio-pso:broker:v1"
NS_TYP = "http://bip.bee.kz/SyncChannel/v10/Types"
NS_SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
NS_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
NS_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"


class RecordingTransport(zeep.Transport):
    """Keeps the exact bytes posted (after zeep's WS-Security signing) and the bytes received.

    zeep plugins cannot do this: egress plugins run before wsse.apply (they see the unsigned
    envelope), and ingress plugins run after wsse.verify (they never see a reply that fails it).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sent = None
        self.received = None
        self.status_code = None
        self.content_type = None

    def post(self, address, message, headers):
        self.sent = message if isinstance(message, bytes) else message.encode("utf-8")
        response = super().post(address, message, headers)
        self.received = response.content
        self.status_code = response.status_code
        self.content_type = response.headers.get("Content-Type")
        return response


class SignThenVerifyWithBrokerCert:
    """A zeep wsse object: signs with a zeep signer, verifies replies with the broker's cert.

    apply() is zeep's own signing; verify() is zeep's own verify_envelope(envelope, certfile).
    The verification outcome is recorded rather than raised, so that zeep goes on to raise the
    Fault or deserialize the Body.
    """

    def __init__(self, signer, broker_cert):
        self.signer = signer
        self.broker_cert = broker_cert
        self.verified = False
        self.error = "no reply was verified"
        self.body_signed = None

    def apply(self, envelope, headers):
        return self.signer.apply(envelope, headers)

    def verify(self, envelope):
        try:
            zeep.wsse.signature.verify_envelope(envelope, self.broker_cert)
        except Exception as exc:  # SignatureVerificationFailed, or what a missing node raises
            self.verified = False
            self.error = describe(exc)
        else:
            self.verified = True
            self.error = None
        self.body_signed = body_is_referenced(envelope)
        return envelope


class StockVerify:
    """Records the outcome of zeep's own wsse.verify (the signer's verify, with its cert)."""

    def __init__(self, signer):
        self.signer = signer
        self.verified = False
        self.error = "no reply was verified"
        self.body_signed = None

    def apply(self, envelope, headers):
        return self.signer.apply(envelope, headers)

    def verify(self, envelope):
        self.body_signed = body_is_referenced(envelope)
        try:
            self.signer.verify(envelope)
        except Exception as exc:
            self.verified = False
            self.error = describe(exc)
            raise
        self.verified = True
        self.error = None
        return envelope


def body_is_referenced(envelope):
    """Whether a Reference of the WS-Security signature names the soap:Body's wsu:Id.

    verify_envelope checks the References that the signature has, whatever they are: a signature
    over something else (a Timestamp alone) passes it with an unsigned Body. null: no signature.
    """
    signature = envelope.find("{%s}Header/{%s}Security/{%s}Signature" % (NS_SOAP11, NS_WSSE, NS_DS))
    body = envelope.find("{%s}Body" % NS_SOAP11)
    if signature is None or body is None:
        return None
    body_id = body.get("{%s}Id" % NS_WSU)
    uris = [ref.get("URI") for ref in signature.iterfind("{%s}SignedInfo/{%s}Reference" % (NS_DS, NS_DS))]
    return body_id is not None and ("#" + body_id) in uris


def describe(exc):
    text = str(exc)
    name = type(exc).__module__ + "." + type(exc).__name__
    if name.startswith("builtins."):
        name = type(exc).__name__
    return "%s: %s" % (name, text) if text else name


def parse_args(argv):
    p = argparse.ArgumentParser(description="zeep interop client for the siobroker SendMessage")
    p.add_argument("--url", required=True, help="SOAP endpoint; the WSDL is read from URL?wsdl")
    p.add_argument("--style", choices=("binary", "signature"), default="binary")
    p.add_argument("--cert", required=True, help="signer's certificate (PEM)")
    p.add_argument("--key", required=True, help="signer's private key (PEM)")
    p.add_argument("--key-password", default=None)
    p.add_argument("--broker-cert", required=True, help="the broker's reply-signing cert (PEM)")
    p.add_argument("--basis", required=True, type=int)
    p.add_argument("--case", required=True, help="case number")
    p.add_argument("--instruction-no")
    p.add_argument("--requesting-body")
    p.add_argument("--letter-no")
    p.add_argument("--year")
    p.add_argument("--court")
    p.add_argument("--article")
    p.add_argument("--subject", required=True, help="IIN (or BIN with --subject-kind bin)")
    p.add_argument("--subject-kind", choices=("iin", "bin"), default="iin")
    p.add_argument("--services", required=True, help="comma-separated, e.g. 1,5")
    p.add_argument("--purpose", default="проверка по материалам дела")
    p.add_argument("--sender", default="SIO_PSO_CLIENT")
    p.add_argument("--service-id", default="SIO_PSO_QUERY")
    p.add_argument("--data-mode", choices=("anyobject", "lxml"), default="anyobject",
                   help="how q:query is put in data: a zeep xsd.AnyObject built from the WSDL's "
                        "q:query element (default), or a hand-built lxml element as _value_1")
    p.add_argument("--zeep-default-algorithms", action="store_true",
                   help="leave zeep's defaults (RSA-SHA1, SHA-1) instead of RSA-SHA256/SHA-256")
    p.add_argument("--verify-mode", choices=("broker-cert", "zeep-stock"), default="broker-cert",
                   help="broker-cert: verify_envelope(reply, --broker-cert) (default); "
                        "zeep-stock: zeep's own wsse.verify, which uses --cert")
    p.add_argument("--dump-request", metavar="FILE", help="write the exact bytes posted")
    p.add_argument("--dump-reply", metavar="FILE", help="write the exact bytes received")
    p.add_argument("--timeout", type=float, default=60.0)
    return p.parse_args(argv)


def build_query_lxml(args):
    E = lambda tag: etree.Element("{%s}%s" % (NS_Q, tag), nsmap={"q": NS_Q})

    def sub(parent, tag, text=None):
        el = etree.SubElement(parent, "{%s}%s" % (NS_Q, tag))
        if text is not None:
            el.text = text
        return el

    query = E("query")
    sub(query, "basis", str(args.basis))
    case = sub(query, "case")
    sub(case, "number", args.case)
    for tag, value in (("instructionNo", args.instruction_no),
                       ("requestingBody", args.requesting_body),
                       ("coveringLetterNo", args.letter_no),
                       ("year", args.year), ("court", args.court)):
        if value:
            sub(case, tag, value)
    if args.article:
        sub(query, "article", args.article)
    subject = sub(query, "subject")
    sub(subject, args.subject_kind, args.subject)
    services = sub(query, "services")
    for no in service_numbers(args):
        sub(services, "service", str(no))
    sub(query, "purpose", args.purpose)
    return query


def build_query_anyobject(client, args):
    query_element = client.get_element("{%s}query" % NS_Q)
    case = {"number": args.case}
    for name, value in (("instructionNo", args.instruction_no),
                        ("requestingBody", args.requesting_body),
                        ("coveringLetterNo", args.letter_no),
                        ("year", args.year), ("court", args.court)):
        if value:
            case[name] = value
    value = query_element(
        basis=args.basis,
        case=case,
        article=args.article or None,
        subject={args.subject_kind: args.subject},
        services={"service": service_numbers(args)},
        purpose=args.purpose,
    )
    return zeep.xsd.AnyObject(query_element, value)


def service_numbers(args):
    return [int(s) for s in args.services.split(",") if s.strip()]


def fault_error_code(detail):
    """errorCode of detail/*/errorCode (the gateway's ErrorInfo is unqualified inside)."""
    if detail is None:
        return None
    for path in ("./*/errorCode", ".//{*}errorCode"):
        found = detail.find(path)
        if found is not None:
            return found.text
    return None


def fault_json(fault):
    return {
        "faultcode": fault.code,
        "faultstring": fault.message,
        "errorCode": fault_error_code(fault.detail),
    }


def process_offline(client, raw):
    """What zeep's binding does with a reply after wsse.verify: raise the Fault or deserialize."""
    binding = client.service._binding
    operation = binding.get("SendMessage")
    doc = etree.fromstring(raw)
    if doc.find("{%s}Body/{%s}Fault" % (NS_SOAP11, NS_SOAP11)) is not None:
        binding.process_error(doc, operation)  # raises zeep.exceptions.Fault
    return operation.process_reply(doc)


def lxml_fallback(raw):
    """status and services from the raw reply, for when zeep's binding cannot deserialize it."""
    doc = etree.fromstring(raw)
    code = doc.find(".//{*}responseInfo/{*}status/{*}code")
    services = []
    for svc in doc.iterfind(".//{%s}result/{%s}service" % (NS_Q, NS_Q)):
        services.append({"no": int(svc.get("no")), "status": svc.get("status")})
    return (code.text if code is not None else None), services


def from_zeep_result(result):
    """status and services from what zeep's binding returned for SendMessage."""
    response = result
    # zeep unwraps a single-child wrapper: SendMessageResponse -> response (SyncSendMessageResponse)
    if hasattr(response, "response") and not hasattr(response, "responseInfo"):
        response = response.response
    status = response.responseInfo.status.code
    services = []
    data = response.responseData.data if response.responseData is not None else None
    payload = getattr(data, "_value_1", None) if data is not None else None
    if payload is None:  # no q:result (nothing to list)
        return status, services, None
    if isinstance(payload, etree._Element):  # zeep did not know the element: kept as lxml
        return status, services, "zeep left data as a raw element %s" % payload.tag
    for svc in payload.service or []:
        services.append({"no": int(svc.no), "status": svc.status})
    return status, services, None


def main(argv):
    args = parse_args(argv)
    out = {
        "ok": False, "fault": None, "status": None, "services": [],
        "replySignatureVerified": False, "verifyError": None, "replyBodySigned": None,
        "parseError": None, "parsedBy": None,
        "style": args.style, "messageId": None, "httpStatus": None, "error": None,
    }

    transport = RecordingTransport(timeout=args.timeout, operation_timeout=args.timeout)
    wsse = None
    code = 2
    try:
        algorithms = {}
        if not args.zeep_default_algorithms:
            algorithms = {"signature_method": xmlsec.Transform.RSA_SHA256,
                          "digest_method": xmlsec.Transform.SHA256}
        signer_class = {"binary": zeep.wsse.signature.BinarySignature,
                        "signature": zeep.wsse.signature.Signature}[args.style]
        signer = signer_class(args.key, args.cert, args.key_password, **algorithms)
        if args.verify_mode == "broker-cert":
            wsse = SignThenVerifyWithBrokerCert(signer, args.broker_cert)
        else:
            wsse = StockVerify(signer)

        client = zeep.Client(args.url + "?wsdl", transport=transport, wsse=wsse)

        message_id = str(uuid.uuid4())
        out["messageId"] = message_id
        now = datetime.datetime.now(datetime.timezone.utc).astimezone()
        if args.data_mode == "lxml":
            data = {"_value_1": build_query_lxml(args)}
        else:
            data = {"_value_1": build_query_anyobject(client, args)}
        request = {
            "requestInfo": {
                "messageId": message_id,
                "serviceId": args.service_id,
                "messageDate": now,
                "sender": {"senderId": args.sender},
            },
            "requestData": {"data": data},
        }

        result = None
        zeep_error = None
        try:
            result = client.service.SendMessage(request=request)
        except zeep.exceptions.Fault as fault:
            out["fault"] = fault_json(fault)
            code = 1
        except zeep.exceptions.SignatureVerificationFailed as exc:
            # Only with --verify-mode zeep-stock: zeep's own verify refused the reply before
            # looking at its Body. Go on as zeep would have, with its binding, on the same bytes.
            if transport.received is None:
                raise
            try:
                result = process_offline(client, transport.received)
            except zeep.exceptions.Fault as fault:
                out["fault"] = fault_json(fault)
                code = 1
            except Exception as exc2:
                zeep_error = exc2
        except Exception as exc:
            if transport.received is None:  # nothing came back: network, signing, request build
                raise
            zeep_error = exc
    except Exception as exc:
        out["error"] = describe(exc)
        sys.stderr.write(traceback.format_exc())
        code = 2
    else:
        if code != 1:
            if zeep_error is None:
                try:
                    status, services, problem = from_zeep_result(result)
                    out.update(status=status, services=services, parsedBy="zeep")
                    if problem:
                        out["parseError"] = problem
                except Exception as exc:
                    zeep_error = exc
            if zeep_error is not None:
                out["parseError"] = describe(zeep_error)
                sys.stderr.write("zeep could not deserialize the reply:\n")
                sys.stderr.write("".join(traceback.format_exception(zeep_error)))
                try:
                    status, services = lxml_fallback(transport.received)
                    out.update(status=status, services=services, parsedBy="lxml")
                except Exception as exc:
                    out["error"] = "reply unreadable: " + describe(exc)
            if out["status"] is not None:
                code = 0
            else:
                code = 2
                out["error"] = out["error"] or "no status in the reply"
    finally:
        if wsse is not None and transport.received is not None:
            out["replySignatureVerified"] = wsse.verified
            out["verifyError"] = wsse.error
            out["replyBodySigned"] = wsse.body_signed
        out["httpStatus"] = transport.status_code
        if args.dump_request and transport.sent is not None:
            with open(args.dump_request, "wb") as f:
                f.write(transport.sent)
        if args.dump_reply and transport.received is not None:
            with open(args.dump_reply, "wb") as f:
                f.write(transport.received)

    out["ok"] = code == 0
    print(json.dumps(out, ensure_ascii=False))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
