package routing

import (
	"context"
	"log/slog"
	"maps"
	"slices"

	"github.com/ThreeDotsLabs/watermill"
)

// WatermillLogger is watermill's logger over logger, as the broker and the adapter processes use
// it: watermill's Info lines (each of ninety-three handlers started, and the like) go out at
// Debug, where they do not drown the processes' own; and nothing is built for a line at a level
// logger does not take. watermill's own slog adapter made the attributes of every line before the
// level was looked at: the Trace lines of each message, 1.5 KB a request (issue 20). A line's
// fields are written in the order of their names.
func WatermillLogger(logger *slog.Logger) watermill.LoggerAdapter { return watermillLogger{logger} }

type watermillLogger struct{ logger *slog.Logger }

func (w watermillLogger) log(level slog.Level, msg string, fields watermill.LogFields, more ...any) {
	ctx := context.Background()
	if !w.logger.Enabled(ctx, level) {
		return
	}
	w.logger.Log(ctx, level, msg, append(attrsOf(fields), more...)...)
}

// attrsOf is fields as slog's alternating keys and values, in the order of their names.
func attrsOf(fields watermill.LogFields) []any {
	args := make([]any, 0, 2*len(fields)+2)
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		args = append(args, k, fields[k])
	}
	return args
}

func (w watermillLogger) Error(msg string, err error, fields watermill.LogFields) {
	w.log(slog.LevelError, msg, fields, "error", err)
}

func (w watermillLogger) Info(msg string, fields watermill.LogFields) {
	w.log(slog.LevelDebug, msg, fields)
}

func (w watermillLogger) Debug(msg string, fields watermill.LogFields) {
	w.log(slog.LevelDebug, msg, fields)
}

func (w watermillLogger) Trace(msg string, fields watermill.LogFields) {
	w.log(watermill.LevelTrace, msg, fields)
}

func (w watermillLogger) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return watermillLogger{w.logger.With(attrsOf(fields)...)}
}
