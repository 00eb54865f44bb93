package soap

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
)

func acBody(t *testing.T, s string) *etree.Element {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromString(`<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"><soap-env:Body>` +
		s + `</soap-env:Body></soap-env:Envelope>`); err != nil {
		t.Fatal(err)
	}
	return Body(doc)
}

const acInfo = `<messageInfo><serviceId>SIO_PSO_QUERY</serviceId><messageType>REQUEST</messageType>` +
	`<messageDate>2026-12-06T21:56:38.301511+00:00</messageDate><sender><senderId>ZEEP</senderId><password>secret</password></sender></messageInfo>`

// TestACSendMessageData: the query as an element of data, and as data's own typed content (zeep),
// also when exclusive canonicalisation dropped the declaration of the type's prefix.
func TestACSendMessageData(t *testing.T) {
	const children = `<b:basis xmlns:b="urn:kz:sio-pso:broker:v1">1</b:basis><b:case xmlns:b="urn:kz:sio-pso:broker:v1"><b:number>261500031000123</b:number></b:case>` +
		`<b:subject xmlns:b="urn:kz:sio-pso:broker:v1"><b:iin>810803325634</b:iin></b:subject>` +
		`<b:services xmlns:b="urn:kz:sio-pso:broker:v1"><b:service>1</b:service></b:services><b:purpose xmlns:b="urn:kz:sio-pso:broker:v1">x</b:purpose>`
	for name, data := range map[string]string{
		"element":                                `<data><q:query xmlns:q="urn:kz:sio-pso:broker:v1">` + strings.ReplaceAll(children, "b:", "q:") + `</q:query></data>`,
		"typed":                                  `<data xmlns:ns6="urn:kz:sio-pso:broker:v1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="ns6:Query">` + children + `</data>`,
		"typed, type prefix dropped by exc-c14n": `<data xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="ns6:Query">` + children + `</data>`,
	} {
		t.Run(name, func(t *testing.T) {
			c, err := ParseACCall(acBody(t, `<ns0:sendMessage xmlns:ns0="http://bip.bee.kz/AsyncChannel/v10/Types"><request>`+acInfo+
				`<messageData>`+data+`</messageData></request></ns0:sendMessage>`))
			if err != nil {
				t.Fatal(err)
			}
			if c.Operation != ACSendMessage || c.Info.SenderID != "ZEEP" || c.Info.MessageType != ACRequest || c.Info.MessageID != "" {
				t.Errorf("call %+v", c)
			}
			q, err := ParseQuery(c.QueryElement())
			if err != nil {
				t.Fatal(err)
			}
			if q.Basis != 1 || q.Subject.IIN != "810803325634" || len(q.Services) != 1 {
				t.Errorf("query %+v", q)
			}
		})
	}
	t.Run("typed, with unqualified elements", func(t *testing.T) {
		c, err := ParseACCall(acBody(t, `<ns0:sendMessage xmlns:ns0="http://bip.bee.kz/AsyncChannel/v10/Types"><request>`+acInfo+
			`<messageData><data xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="ns6:Query"><basis>1</basis></data></messageData></request></ns0:sendMessage>`))
		if err != nil {
			t.Fatal(err)
		}
		_, err = ParseQuery(c.QueryElement())
		var e *siobroker.Error
		if !errors.As(err, &e) || e.Code != siobroker.CodeSchema || !strings.Contains(e.Message, "namespace") {
			t.Fatalf("err %v, want the unqualified element named", err)
		}
	})
	t.Run("typed as something else", func(t *testing.T) {
		_, err := ParseACCall(acBody(t, `<ns0:sendMessage xmlns:ns0="http://bip.bee.kz/AsyncChannel/v10/Types"><request>`+acInfo+
			`<messageData><data xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">text</data></messageData></request></ns0:sendMessage>`))
		if siobroker.ErrorCode(err) != siobroker.CodeSchema {
			t.Fatalf("err %v", err)
		}
	})
}

// TestACCallRefusals: the published types' rules, each refused with the field named.
func TestACCallRefusals(t *testing.T) {
	const ns = `xmlns:ns0="http://bip.bee.kz/AsyncChannel/v10/Types"`
	for _, tc := range []struct{ name, body, field string }{
		{"an unknown messageType", `<ns0:sendMessage ` + ns + `><request>` + strings.Replace(acInfo, "REQUEST", "QUESTION", 1) +
			`<messageData><data><x/></data></messageData></request></ns0:sendMessage>`, "sendMessage/request/messageInfo/messageType"},
		{"a qualified child", `<ns0:getMessageStatus ` + ns + `><ns0:request/></ns0:getMessageStatus>`, "getMessageStatus/request"},
		{"getMessageStatus without a sender", `<ns0:getMessageStatus ` + ns + `><request><messageId>m</messageId>` +
			`<requestDate>2026-12-06T10:00:00Z</requestDate></request></ns0:getMessageStatus>`, "getMessageStatus/request/sender"},
		{"getMessages without a serviceId", `<ns0:getMessages ` + ns + `><request><requestDate>2026-12-06T10:00:00Z</requestDate></request></ns0:getMessages>`,
			"getMessages/request/serviceId"},
		{"a negative amount", `<ns0:getMessages ` + ns + `><request><serviceId>S</serviceId><amount>-1</amount></request></ns0:getMessages>`,
			"getMessages/request/amount"},
		{"a receipt spelt correctly, which the contract does not", `<ns0:sendDeliveryNotification ` + ns + `><request><notification><messageId>m</messageId>` +
			`<serviceId>S</serviceId><notificationDate>2026-12-06T10:00:00Z</notificationDate><deliveryStatus><receiveStatus>MESSAGE_NOT_ACCEPTED</receiveStatus>` +
			`<statusDate>2026-12-06T10:00:00Z</statusDate><resendMessage>RESEND</resendMessage></deliveryStatus></notification>` +
			`<requestDate>2026-12-06T10:00:00Z</requestDate></request></ns0:sendDeliveryNotification>`, "sendDeliveryNotification/request/notification/deliveryStatus/receiveStatus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseACCall(acBody(t, tc.body))
			var e *siobroker.Error
			if err == nil || siobroker.ErrorCode(err) != siobroker.CodeSchema {
				t.Fatalf("err %v, want SIO-SCHEMA", err)
			}
			if e, _ = err.(*siobroker.Error); e == nil || !strings.HasPrefix(e.Field, tc.field) {
				t.Fatalf("field %q, want %s (%v)", e.Field, tc.field, err)
			}
		})
	}
}

// TestACRoundTrip: what the builders write, ParseACCall reads back.
func TestACRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 6, 15, 0, 0, 0, siobroker.Astana)
	for _, doc := range []*etree.Document{
		NewACGetMessageStatus("id-1", "m-1", "S", at),
		NewACGetMessages("id-2", "SIO_PSO_QUERY", "", "chain-1", "S", 5, at),
		NewACSendDeliveryNotification("id-3", "m-2", "SIO_PSO_QUERY", "S", siobroker.AsyncReceipt{Resend: true}, at),
	} {
		c, err := ParseACCall(Body(doc))
		if err != nil {
			t.Fatal(err)
		}
		if !c.Date().Equal(at) {
			t.Errorf("%s: date %s", c.Operation, c.Date())
		}
		switch c.Operation {
		case ACGetMessages:
			if c.CorrelationID != "chain-1" || c.Amount != 5 || c.ServiceID != "SIO_PSO_QUERY" {
				t.Errorf("getMessages %+v", c)
			}
		case ACSendDeliveryNotification:
			if c.Notification.MessageID != "m-2" || c.Notification.Receipt.Accepted || !c.Notification.Receipt.Resend {
				t.Errorf("notification %+v", c.Notification)
			}
		}
	}
}
