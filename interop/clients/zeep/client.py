#!/usr/bin/python3
"""A zeep (Python) interoperability client for the broker's SyncChannel v10 SendMessage, and for
its AsyncChannel v10 (--channel async, below).

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

AsyncChannel v10 (--channel async; --url is then the AsyncChannel endpoint, e.g.
http://127.0.0.1:8080/AsyncChannel/v10): the client loads that endpoint's WSDL (which imports
?wsdl=async-channel-v10-interface.wsdl and its XSDs) and runs the gateway's whole flow with zeep's
own operations, each call signed by zeep in --style and each answer verified with verify_envelope
against --broker-cert:

  sendMessage               messageInfo (serviceId, messageType REQUEST, no messageId or
                            correlationId, messageDate now, sender) and messageData/data: the q:query
                            as a zeep AnyObject of the WSDL's q:Query type (zeep writes
                            <data xsi:type="ns:Query">, the query's children in data)
  getMessageStatus          of the acknowledged id, every --poll-interval seconds until it is no
                            longer ON_DELIVERY (at most --poll-timeout seconds)
  getMessages               by correlationId = the acknowledged id: the chain's RESPONSE, whose
                            data (xsd:anyType, left as lxml by zeep) is parsed with the WSDL's
                            q:result element
  getMessages               by serviceId alone: the mailbox before the receipt
  getMessageStatus          of the RESPONSE's messageId (before the receipt)
  sendDeliveryNotification  MESSAGE_ACCEPTED / NOT_RESEND for the RESPONSE's messageId
  getMessageStatus          of the RESPONSE's messageId (after the receipt)
  getMessages               by serviceId alone: the mailbox after the receipt

--async-fault KIND[,KIND...] replaces the flow with the calls that provoke these faults, in order:
  others-case      sendMessage of the query as given: --case must be a case not the signer's
  unknown-id       getMessageStatus of --fault-id
  unknown-chain    getMessages by correlationId --fault-id
  unknown-receipt  sendDeliveryNotification (MESSAGE_ACCEPTED) of messageId --fault-id
--fault-id defaults to a fresh UUID, an id the broker never issued; another signer's id is
answered the same way.

--operation maintenance calls the broker's own operation GetMaintenanceWindows of the same WSDL
instead of SendMessage (the query flags are then not used): requestData/data holds
q:maintenanceQuery, built from the WSDL's element as a zeep AnyObject and signed by zeep; the
reply, verified with verify_envelope against --broker-cert, is deserialized by zeep's binding and
its windows listed in "windows": [{"number", "services", "start", "end", "reason", "announcedAt",
"emergency", "cancelled", "state"}], times as the broker wrote them (with their offset).

--dump-dir DIR writes each call's exact bytes as DIR/NN-OPERATION-request.xml and
DIR/NN-OPERATION-reply.xml (--dump-request and --dump-reply are for the sync mode).

Output, async: one JSON object on stdout:
  {"ok": bool, "channel": "async", "style": ..., "ack": {"messageId", "correlationId",
   "responseDate", "sessionId"} | null, "requestStates": ["ON_DELIVERY", "DELIVERED"] (the states
   the polls saw, in order, repeats left out), "polls": int, "chainMessages": int | null,
   "response": {"messageId", "correlationId", "serviceId", "messageType", "messageDate",
   "senderId"} | null, "result": {"requestMessageId", "signerIin"} | null, "services": [{"no",
   "status", "reason"}, ...], "parsedBy": "zeep" | "lxml" | null, "parseError": str | null,
   "responseStates": {"beforeReceipt", "afterReceipt"}, "receipt": {"notificationId",
   "responseDate", "sessionId"} | null, "mailbox": {"before": {"count", "hasResponse"} | null,
   "after": ...}, "calls": [{"operation", "httpStatus", "fault", "signed",
   "signatureVerified", "verifyError", "bodySigned", "request", "reply"}, ...] (request and
   reply: the dump files' names), "answersVerified": bool (every answer that is not a fault
   verified), "faults": [{"operation", "provoked", "faultcode", "faultstring", "errorCode",
   "detailElement", "detailNamespace"}, ...], "error": str | null}
ok is true when the flow ran to its end with every answer verified (with --async-fault: when
every provoked call was refused with a fault). Exit status: 0 the flow ran to its end; 1 a SOAP
fault ended it, or every provoked call was refused with a fault; 2 any other error.
"""

import argparse
import datetime
import json
import os
import sys
import time
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
        self.exchanges = 0  # posts made, for telling a call's own exchange from the previous one

    def post(self, address, message, headers):
        self.sent = message if isinstance(message, bytes) else message.encode("utf-8")
        self.received = self.status_code = self.content_type = None
        self.exchanges += 1
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
        self.reset()

    def reset(self):
        self.verified = False
        self.error = "no reply was verified"
        self.body_signed = None
        self.signed = None

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
        self.signed = envelope.find("{%s}Header/{%s}Security/{%s}Signature" % (NS_SOAP11, NS_WSSE, NS_DS)) is not None
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
    p.add_argument("--operation", choices=("send", "maintenance"), default="send",
                   help="send: SendMessage (default); maintenance: GetMaintenanceWindows, the "
                        "schedule of maintenance windows (sync channel only)")
    p.add_argument("--channel", choices=("sync", "async"), default="sync",
                   help="sync: SyncChannel v10 SendMessage (default); async: the AsyncChannel v10 "
                        "flow against --url (the AsyncChannel endpoint)")
    p.add_argument("--async-fault", metavar="KIND[,KIND...]",
                   help="async: instead of the flow, provoke these faults: others-case, "
                        "unknown-id, unknown-chain, unknown-receipt")
    p.add_argument("--fault-id", help="async: the id --async-fault asks about (default: a fresh UUID)")
    p.add_argument("--dump-dir", metavar="DIR", help="async: write every call's exact bytes here")
    p.add_argument("--poll-interval", type=float, default=0.2, help="async: seconds between polls")
    p.add_argument("--poll-timeout", type=float, default=20.0,
                   help="async: how long to poll getMessageStatus for the request's end state")
    args = p.parse_args(argv)
    if args.async_fault:
        kinds = [k.strip() for k in args.async_fault.split(",") if k.strip()]
        bad = [k for k in kinds if k not in ASYNC_FAULTS]
        if args.channel != "async" or not kinds or bad:
            p.error("--async-fault takes %s, with --channel async (got %r)" % (", ".join(ASYNC_FAULTS), args.async_fault))
        args.async_fault = kinds
    if args.channel == "async" and args.verify_mode != "broker-cert":
        p.error("--channel async verifies every answer with --broker-cert (--verify-mode broker-cert)")
    if args.operation == "maintenance" and (args.channel != "sync" or args.data_mode != "anyobject"):
        p.error("--operation maintenance is a call of the sync channel, its data an AnyObject")
    if args.channel == "async" and args.data_mode != "anyobject":
        p.error("--channel async puts q:query in the xsd:anyType data as an AnyObject (--data-mode anyobject)")
    return args


ASYNC_FAULTS = ("others-case", "unknown-id", "unknown-chain", "unknown-receipt")


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
    return zeep.xsd.AnyObject(query_element, query_value(query_element, args))


def query_value(query_element, args):
    """The q:query's value, built with the WSDL's q:query element (or its type)."""
    case = {"number": args.case}
    for name, value in (("instructionNo", args.instruction_no),
                        ("requestingBody", args.requesting_body),
                        ("coveringLetterNo", args.letter_no),
                        ("year", args.year), ("court", args.court)):
        if value:
            case[name] = value
    return query_element(
        basis=args.basis,
        case=case,
        article=args.article or None,
        subject={args.subject_kind: args.subject},
        services={"service": service_numbers(args)},
        purpose=args.purpose,
    )


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


def from_zeep_windows(result):
    """status and windows from what zeep's binding returned for GetMaintenanceWindows."""
    response = result
    if hasattr(response, "response") and not hasattr(response, "responseInfo"):
        response = response.response
    status = response.responseInfo.status.code
    data = response.responseData.data if response.responseData is not None else None
    payload = getattr(data, "_value_1", None) if data is not None else None
    if payload is None:
        return status, [], "no q:maintenanceWindows in the reply"
    if isinstance(payload, etree._Element):
        return status, [], "zeep left data as a raw element %s" % payload.tag
    windows = []
    for w in payload.window or []:
        windows.append({
            "number": int(w.number) if w.number is not None else None,
            "services": [int(n) for n in (w.service or [])],
            "start": text(w.start), "end": text(w.end), "reason": w.reason,
            "announcedAt": text(w.announcedAt), "emergency": bool(w.emergency),
            "cancelled": text(w.cancelled) if w.cancelled is not None else None, "state": w.state,
        })
    return status, windows, None


def make_signer(args):
    """zeep's own signer in --style, RSA-SHA256/SHA-256 unless --zeep-default-algorithms."""
    algorithms = {}
    if not args.zeep_default_algorithms:
        algorithms = {"signature_method": xmlsec.Transform.RSA_SHA256,
                      "digest_method": xmlsec.Transform.SHA256}
    signer_class = {"binary": zeep.wsse.signature.BinarySignature,
                    "signature": zeep.wsse.signature.Signature}[args.style]
    return signer_class(args.key, args.cert, args.key_password, **algorithms)


def main(argv):
    args = parse_args(argv)
    if args.channel == "async":
        return main_async(args)
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
        signer = make_signer(args)
        if args.verify_mode == "broker-cert":
            wsse = SignThenVerifyWithBrokerCert(signer, args.broker_cert)
        else:
            wsse = StockVerify(signer)

        client = zeep.Client(args.url + "?wsdl", transport=transport, wsse=wsse)

        message_id = str(uuid.uuid4())
        out["messageId"] = message_id
        now = datetime.datetime.now(datetime.timezone.utc).astimezone()
        if args.operation == "maintenance":
            element = client.get_element("{%s}maintenanceQuery" % NS_Q)
            data = {"_value_1": zeep.xsd.AnyObject(element, element(issuedAt=now))}
        elif args.data_mode == "lxml":
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
            if args.operation == "maintenance":
                result = client.service.GetMaintenanceWindows(request=request)
            else:
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
                    if args.operation == "maintenance":
                        status, windows, problem = from_zeep_windows(result)
                        out.update(status=status, windows=windows, parsedBy="zeep")
                    else:
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


# ---------------------------------------------------------------- AsyncChannel v10


class AsyncFault(Exception):
    """A call of the flow was answered with a SOAP fault (recorded in out["faults"])."""

    def __init__(self, record):
        super().__init__("%s: fault %s" % (record["operation"], record["errorCode"]))
        self.record = record


class AsyncCalls:
    """Makes zeep's calls of the AsyncChannel v10 operations and records each one: its exact
    bytes (--dump-dir), the verification of its answer, and its fault, if any."""

    def __init__(self, client, transport, wsse, dump_dir, out):
        self.client = client
        self.transport = transport
        self.wsse = wsse
        self.dump_dir = dump_dir
        self.out = out

    def __call__(self, operation, provoked=None, **request):
        call = {"operation": operation, "httpStatus": None, "fault": False, "signed": None,
                "signatureVerified": False, "verifyError": None, "bodySigned": None,
                "request": None, "reply": None}
        self.out["calls"].append(call)
        n = len(self.out["calls"])
        self.wsse.reset()
        before = self.transport.exchanges
        try:
            return getattr(self.client.service, operation)(request=request)
        except zeep.exceptions.Fault as fault:
            record = {"operation": operation, "provoked": provoked}
            record.update(fault_json(fault))
            record.update(detail_element(fault.detail))
            self.out["faults"].append(record)
            call["fault"] = True
            raise AsyncFault(record)
        finally:
            if self.transport.exchanges > before:
                call["httpStatus"] = self.transport.status_code
                if self.transport.received is not None:
                    call.update(signed=self.wsse.signed, signatureVerified=self.wsse.verified,
                                verifyError=self.wsse.error, bodySigned=self.wsse.body_signed)
                if self.dump_dir:
                    for kind, raw in (("request", self.transport.sent), ("reply", self.transport.received)):
                        if raw is not None:
                            name = "%02d-%s-%s.xml" % (n, operation, kind)
                            with open(os.path.join(self.dump_dir, name), "wb") as f:
                                f.write(raw)
                            call[kind] = name


def detail_element(detail):
    """The name and namespace of the fault detail's element (the operation's own, by the WSDL)."""
    if detail is None:
        return {"detailElement": None, "detailNamespace": None}
    for child in detail:
        if isinstance(child.tag, str):
            q = etree.QName(child)
            return {"detailElement": q.localname, "detailNamespace": q.namespace}
    return {"detailElement": None, "detailNamespace": None}


def now():
    return datetime.datetime.now(datetime.timezone.utc).astimezone()


def text(value):
    """A value zeep deserialized, for JSON: datetimes in ISO 8601, None kept."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return str(value)


def message_info_json(mi):
    return {
        "messageId": text(mi.messageId), "correlationId": text(mi.correlationId),
        "serviceId": text(mi.serviceId), "messageType": text(mi.messageType),
        "messageDate": text(mi.messageDate),
        "senderId": text(mi.sender.senderId) if mi.sender is not None else None,
    }


def result_element(data):
    """The q:result in a message's data: zeep leaves the content of an xsd:anyType without
    xsi:type as a list of lxml elements."""
    for el in data if isinstance(data, list) else [data]:
        if isinstance(el, etree._Element) and el.tag == "{%s}result" % NS_Q:
            return el
    return None


def read_result(client, data, out):
    """services of the q:result: parsed with the WSDL's q:result element (zeep), else by lxml."""
    el = result_element(data)
    if el is None:
        out["parseError"] = "no q:result in the message's data: %r" % (data,)
        return
    out["result"] = {"requestMessageId": el.findtext("{%s}requestMessageId" % NS_Q),
                     "signerIin": el.findtext("{%s}signerIin" % NS_Q)}
    try:
        value = client.get_element("{%s}result" % NS_Q).parse(el, client.wsdl.types)
        out["services"] = [{"no": int(svc.no), "status": svc.status, "reason": svc.reason}
                           for svc in value.service or []]
        out["parsedBy"] = "zeep"
    except Exception as exc:
        out["parseError"] = describe(exc)
        sys.stderr.write("zeep could not parse the q:result:\n" + traceback.format_exc())
        out["services"] = [{"no": int(svc.get("no")), "status": svc.get("status"), "reason": svc.get("reason")}
                           for svc in el.iterfind("{%s}service" % NS_Q)]
        out["parsedBy"] = "lxml"


def mailbox(call, args, sender, response_id):
    """getMessages by serviceId alone: how many messages, and whether the RESPONSE is one."""
    got = call("getMessages", serviceId=args.service_id, requestDate=now(), sender=sender)
    ids = [m.messageInfo.messageId for m in got.messages or []]
    return {"count": len(ids), "hasResponse": response_id in ids}


def async_flow(client, call, args, out):
    sender = {"senderId": args.sender}
    query_type = client.get_element("{%s}query" % NS_Q).type
    ack = call("sendMessage",
               messageInfo={"serviceId": args.service_id, "messageType": "REQUEST",
                            "messageDate": now(), "sender": sender},
               messageData={"data": zeep.xsd.AnyObject(query_type, query_value(query_type, args))})
    out["ack"] = {"messageId": text(ack.messageId), "correlationId": text(ack.correlationId),
                  "responseDate": text(ack.responseDate), "sessionId": text(ack.sessionId)}

    deadline = time.monotonic() + args.poll_timeout
    while True:
        status = call("getMessageStatus", messageId=ack.messageId, requestDate=now(), sender=sender)
        out["polls"] += 1
        state = status.messageState
        if not out["requestStates"] or out["requestStates"][-1] != state:
            out["requestStates"].append(state)
        if state != "ON_DELIVERY":
            break
        if time.monotonic() > deadline:
            raise RuntimeError("the request is still ON_DELIVERY after %gs" % args.poll_timeout)
        time.sleep(args.poll_interval)
    if state != "DELIVERED":
        raise RuntimeError("the request ended %s (%s: %s), not DELIVERED" %
                           (state, status.status.statusCode, status.status.statusMessage))

    chain = call("getMessages", serviceId=args.service_id, correlationId=ack.correlationId,
                 requestDate=now(), sender=sender)
    messages = chain.messages or []
    out["chainMessages"] = len(messages)
    responses = [m for m in messages if m.messageInfo.messageType == "RESPONSE"]
    if not responses:
        raise RuntimeError("getMessages by the chain %s returned no RESPONSE" % ack.correlationId)
    message = responses[0]
    out["response"] = message_info_json(message.messageInfo)
    read_result(client, message.messageData.data, out)
    response_id = message.messageInfo.messageId

    out["mailbox"]["before"] = mailbox(call, args, sender, response_id)
    st = call("getMessageStatus", messageId=response_id, requestDate=now(), sender=sender)
    out["responseStates"]["beforeReceipt"] = st.messageState
    receipt = call("sendDeliveryNotification",
                   notification={"messageId": response_id, "serviceId": args.service_id,
                                 "notificationDate": now(),
                                 "deliveryStatus": {"receiveStatus": "MESSAGE_ACCEPTED",
                                                    "statusDate": now(), "resendMessage": "NOT_RESEND"}},
                   requestDate=now(), sender=sender)
    out["receipt"] = {"notificationId": text(receipt.notificationId),
                      "responseDate": text(receipt.responseDate), "sessionId": text(receipt.sessionId)}
    st = call("getMessageStatus", messageId=response_id, requestDate=now(), sender=sender)
    out["responseStates"]["afterReceipt"] = st.messageState
    out["mailbox"]["after"] = mailbox(call, args, sender, response_id)


def async_faults(client, call, args, out):
    """The calls that provoke the faults asked for; returns whether every one was refused."""
    sender = {"senderId": args.sender}
    fault_id = args.fault_id or str(uuid.uuid4())
    query_type = client.get_element("{%s}query" % NS_Q).type
    calls = {
        "others-case": lambda: call(
            "sendMessage", provoked="others-case",
            messageInfo={"serviceId": args.service_id, "messageType": "REQUEST",
                         "messageDate": now(), "sender": sender},
            messageData={"data": zeep.xsd.AnyObject(query_type, query_value(query_type, args))}),
        "unknown-id": lambda: call("getMessageStatus", provoked="unknown-id",
                                   messageId=fault_id, requestDate=now(), sender=sender),
        "unknown-chain": lambda: call("getMessages", provoked="unknown-chain", serviceId=args.service_id,
                                      correlationId=fault_id, requestDate=now(), sender=sender),
        "unknown-receipt": lambda: call(
            "sendDeliveryNotification", provoked="unknown-receipt",
            notification={"messageId": fault_id, "serviceId": args.service_id, "notificationDate": now(),
                          "deliveryStatus": {"receiveStatus": "MESSAGE_ACCEPTED", "statusDate": now(),
                                             "resendMessage": "NOT_RESEND"}},
            requestDate=now(), sender=sender),
    }
    answered = []
    for kind in args.async_fault:
        try:
            calls[kind]()
        except AsyncFault:
            continue
        answered.append(kind)
    if answered:
        out["error"] = "answered, not refused: " + ", ".join(answered)
    return not answered


def main_async(args):
    out = {
        "ok": False, "channel": "async", "style": args.style, "ack": None, "requestStates": [],
        "polls": 0, "chainMessages": None, "response": None, "result": None, "services": [],
        "parsedBy": None, "parseError": None,
        "responseStates": {"beforeReceipt": None, "afterReceipt": None}, "receipt": None,
        "mailbox": {"before": None, "after": None}, "calls": [], "answersVerified": False,
        "faults": [], "error": None,
    }
    transport = RecordingTransport(timeout=args.timeout, operation_timeout=args.timeout)
    code = 2
    try:
        if args.dump_dir:
            os.makedirs(args.dump_dir, exist_ok=True)
        wsse = SignThenVerifyWithBrokerCert(make_signer(args), args.broker_cert)
        client = zeep.Client(args.url + "?wsdl", transport=transport, wsse=wsse)
        call = AsyncCalls(client, transport, wsse, args.dump_dir, out)
        if args.async_fault:
            code = 1 if async_faults(client, call, args, out) else 2
        else:
            async_flow(client, call, args, out)
            code = 0
    except AsyncFault as exc:
        code = 1 if not args.async_fault else 2
        out["error"] = str(exc)
    except Exception as exc:
        out["error"] = describe(exc)
        sys.stderr.write(traceback.format_exc())
        code = 2
    answers = [c for c in out["calls"] if not c["fault"] and c["httpStatus"] is not None]
    out["answersVerified"] = bool(answers) and all(c["signatureVerified"] for c in answers)
    if args.async_fault:
        out["ok"] = code == 1
    else:
        out["ok"] = code == 0 and out["answersVerified"]
    print(json.dumps(out, ensure_ascii=False))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
