// Package reqlog puts the identifiers of the request being handled on every log line written
// while it is handled: the client's requestInfo/messageId (message_id) and the broker's id of the
// request (correlation_id; on the lines about one service of a request, the correlation key
// "request/service" the transport carries). An operator finds everything about one request by
// either id, whichever side of the exchange they start from.
//
// The pipeline puts the ids in the context (With) once it knows them; Handler adds them to every
// line logged with that context. A line that names its own ids (Attrs) keeps them: the
// dispatcher and the adapters log per service, with the per-service correlation key.
package reqlog

import (
	"context"
	"log/slog"
)

// The attribute keys of the ids.
const (
	KeyMessageID     = "message_id"
	KeyCorrelationID = "correlation_id"
)

type idsKey struct{}

type ids struct{ messageID, correlationID string }

// With returns ctx carrying the ids of the request being handled. An empty messageID keeps the
// one ctx carries already (the broker's id is known before the client's messageId is read).
func With(ctx context.Context, messageID, correlationID string) context.Context {
	if messageID == "" {
		messageID, _ = IDs(ctx)
	}
	return context.WithValue(ctx, idsKey{}, ids{messageID: messageID, correlationID: correlationID})
}

// IDs returns the ids ctx carries; "" for those it does not.
func IDs(ctx context.Context) (messageID, correlationID string) {
	if ctx == nil {
		return "", ""
	}
	v, _ := ctx.Value(idsKey{}).(ids)
	return v.messageID, v.correlationID
}

// Attrs are the two id attributes, for a log call that names its ids itself.
func Attrs(messageID, correlationID string) []any {
	return []any{KeyMessageID, messageID, KeyCorrelationID, correlationID}
}

// Handler wraps h so that a record logged with a context carrying ids gets them, unless the
// record names them itself. Wrapping a Handler again returns it as it is.
func Handler(h slog.Handler) slog.Handler {
	if _, ok := h.(*handler); ok {
		return h
	}
	return &handler{next: h}
}

// Logger returns l with its handler wrapped by Handler.
func Logger(l *slog.Logger) *slog.Logger {
	h := Handler(l.Handler())
	if h == l.Handler() {
		return l
	}
	return slog.New(h)
}

type handler struct {
	next slog.Handler
	// The logger's own attributes (With) name the ids already.
	namedMessage, namedCorrelation bool
}

func (h *handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	messageID, correlationID := IDs(ctx)
	if messageID == "" && correlationID == "" {
		return h.next.Handle(ctx, r)
	}
	hasMessage, hasCorrelation := h.namedMessage, h.namedCorrelation
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case KeyMessageID:
			hasMessage = true
		case KeyCorrelationID:
			hasCorrelation = true
		}
		return !hasMessage || !hasCorrelation
	})
	if !hasMessage {
		r.AddAttrs(slog.String(KeyMessageID, messageID))
	}
	if !hasCorrelation {
		r.AddAttrs(slog.String(KeyCorrelationID, correlationID))
	}
	return h.next.Handle(ctx, r)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := &handler{next: h.next.WithAttrs(attrs), namedMessage: h.namedMessage, namedCorrelation: h.namedCorrelation}
	for _, a := range attrs {
		switch a.Key {
		case KeyMessageID:
			out.namedMessage = true
		case KeyCorrelationID:
			out.namedCorrelation = true
		}
	}
	return out
}

func (h *handler) WithGroup(name string) slog.Handler {
	// The ids of a line in a group land inside the group; no request path logs in a group.
	return &handler{next: h.next.WithGroup(name), namedMessage: h.namedMessage, namedCorrelation: h.namedCorrelation}
}
