package control

import (
	"log/slog"

	"github.com/lambdad/lambdad/internal/store"
)

const slogInfo = slog.LevelInfo

func intAttr(key string, v *int) slog.Attr {
	if v == nil {
		return slog.String(key, "none")
	}
	return slog.Int(key, *v)
}

func auditAttrs(r *store.AuditRecord) []slog.Attr {
	return []slog.Attr{
		slog.String("audit", r.Operation),
		slog.String("request_id", r.RequestID),
		slog.String("caller", r.AccessKeyID),
		slog.String("principal", r.Principal),
		slog.String("source_ip", r.SourceIP),
		slog.String("function", r.Function),
		intAttr("old", r.Old),
		intAttr("new", r.New),
		slog.Uint64("seq", r.Seq),
	}
}
