package tokenguard

import (
	"strconv"
	"strings"
	"sync"
	"time"
)

// logLimiter lets one record per key through per logInterval, and counts
// the others, so an outage that fails thousands of requests a second logs
// a few lines that say how many, not thousands.
type logLimiter struct {
	mu      sync.Mutex
	windows map[string]*logWindow
}

type logWindow struct {
	start      time.Time
	suppressed int
}

const (
	logInterval = 10 * time.Second
	// maxLogKeys bounds the keys tracked; past it, every new key shares
	// one window, so no input can grow the map.
	maxLogKeys = 128
)

// warnOnce logs cause at Warn, at most once per key per interval.
func (g *Guard) warnOnce(key string, cause error) {
	l := g.cfg.Logger
	if l == nil {
		return
	}
	ok, suppressed := g.warnings.allow(key, g.now())
	if !ok {
		return
	}
	attrs := []any{"error", cause}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	l.Warn("tokenguard: configuration of the authorization server", attrs...)
}

// allow reports whether a record with key may be written at now, and how
// many records with it were left out since the last one written.
func (l *logLimiter) allow(key string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.windows == nil {
		l.windows = make(map[string]*logWindow)
	}
	w, ok := l.windows[key]
	if !ok {
		if len(l.windows) >= maxLogKeys {
			// Forget causes quiet for a whole interval with nothing left
			// to report, so new causes get windows of their own again.
			for k, old := range l.windows {
				if old.suppressed == 0 && now.Sub(old.start) >= logInterval {
					delete(l.windows, k)
				}
			}
		}
		if len(l.windows) >= maxLogKeys {
			key = "(other causes)"
			w = l.windows[key]
		}
		if w == nil {
			w = &logWindow{start: now}
			l.windows[key] = w
			return true, 0
		}
	}
	if now.Sub(w.start) < logInterval {
		w.suppressed++
		return false, 0
	}
	n := w.suppressed
	w.start, w.suppressed = now, 0
	return true, n
}

// logKey is what makes two failures "the same cause": the answer and the
// cause's text up to its first detail that varies per request (a quoted
// kid or issuer the token named, a number).
func logKey(e *Error) string {
	cause := ""
	if e.Err != nil {
		cause = e.Err.Error()
	}
	if i := strings.IndexAny(cause, `"0123456789`); i >= 0 {
		cause = cause[:i]
	}
	if len(cause) > 120 {
		cause = cause[:120]
	}
	return strconv.Itoa(e.Status) + "|" + e.Description + "|" + cause
}
